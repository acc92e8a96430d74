/// Group commit for WAL-captured pushes: while the region writes fast, the next push waits a few milliseconds
/// for more changes, so one push cycle carries more of them.
///
/// Each push cycle costs about the same whatever it carries: the request, the hub's sequencer transaction, the
/// verdicts' transaction here, and at every other region a pull and an apply transaction. Measured on the two-core
/// benchmark machine (2026-12-07, `ops/bench/capture-overhead`: pgbench of one-row transactions at ~3,500 a second
/// in the synced region), pushes left about 200 times a second with ~20 changes each, and the hub's CPU stayed at
/// ~3 s in 8 s whatever the rate: cost per cycle, not per change. A push waits only when the last one carried
/// `busyBatch` changes or more (a stream at light load, W2's, pushes each change at once, as before) and fewer than
/// `fullBatch` are queued, and at most until `window` after the last push ended; and never after a push that took
/// `slowCycle` or longer (a hub 100 ms away): there the round trip batches the changes already. Measured against a
/// minimum interval of 10 ms between push starts instead: the hub spent 2.50 / 2.64 s in 8 s against 2.26 / 2.30
/// with this rule (two alternated pairs, 2026-12-07). Pure: the loop passes the clock in.
struct PushPacing {
    static let window = Duration.milliseconds(5)
    static let slowCycle = Duration.milliseconds(20)
    static let busyBatch = 8
    static let fullBatch = 256

    private var lastCount = 0
    private var lastEnded: ContinuousClock.Instant?
    private var lastTook = Duration.zero

    /// How long the next push waits with `queued` changes queued at `now`; nil when it goes at once.
    func pause(queued: Int, now: ContinuousClock.Instant) -> Duration? {
        guard queued > 0, queued < Self.fullBatch, lastCount >= Self.busyBatch, lastTook < Self.slowCycle,
            let lastEnded
        else { return nil }
        let until = lastEnded + Self.window
        return until > now ? until - now : nil
    }

    /// Records a push of `count` changes that started at `started` and ended at `ended`.
    mutating func pushed(_ count: Int, startedAt started: ContinuousClock.Instant, endedAt ended: ContinuousClock.Instant) {
        lastCount = count
        lastEnded = ended
        lastTook = ended - started
    }
}
