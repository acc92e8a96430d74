/// When the WAL reader naps before waiting on its socket: while transactions arrive less than `busyGap` apart,
/// it sleeps `napMicroseconds` once the buffered messages are read, instead of waking for every transaction.
///
/// The WAL sender sends each transaction as it commits. A region committing 5,000 one-row transactions a second
/// woke the reader 4,200 times a second (2026-12-07, `ops/bench/capture-overhead`), and those wake-ups were about a
/// third of its CPU; napping a millisecond lets several transactions arrive per wake-up. A stream slower than one
/// transaction per `busyGap` (W2's 200 updates a second) is read as it comes, with no added latency. Pure: the
/// reader passes the clock in.
struct StreamReadPacing {
    static let busyGap = Duration.microseconds(1000)
    /// The nap, in microseconds (`usleep`).
    static let napMicroseconds: UInt32 = 1000

    private var lastCommit: ContinuousClock.Instant?
    /// Whether the last two commits arrived less than `busyGap` apart.
    private(set) var isBusy = false

    /// Records a transaction's commit read at `now`.
    mutating func committed(at now: ContinuousClock.Instant) {
        isBusy = lastCommit.map { now - $0 < Self.busyGap } ?? false
        lastCommit = now
    }

    /// The stream was idle for a whole wait: the next transaction is read as it comes.
    mutating func idled() {
        isBusy = false
        lastCommit = nil
    }
}
