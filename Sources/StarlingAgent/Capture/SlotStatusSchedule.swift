import StarlingPostgres

/// When the WAL stream's reader tells the slot its confirmable position (a standby status update): soon after the
/// position moves, but at most once per `minimumGap`, and once per `interval` when it does not move (the server's
/// `wal_sender_timeout` needs to hear from the reader). Each update wakes the WAL sender and is a send and a TCP
/// round of its own; with one after every push's verdicts, a region writing 3,500 transactions a second sent ~200
/// a second. A position confirmed up to `minimumGap` later only keeps that much more WAL: the slot may confirm a
/// position late, never early. Pure: the reader passes the clock's readings in.
struct SlotStatusSchedule {
    static let minimumGap = Duration.milliseconds(50)
    static let interval = Duration.seconds(1)

    private(set) var confirmedSent = LSN.invalid
    private var lastSent: ContinuousClock.Instant?

    /// Whether an update is due now, with the queue's confirmable position `confirmable`.
    func isDue(confirmable: LSN, now: ContinuousClock.Instant) -> Bool {
        guard let lastSent else { return true }
        let since = now - lastSent
        return since >= Self.interval || (confirmable > confirmedSent && since >= Self.minimumGap)
    }

    /// Records an update sent at `now` telling the slot `confirmable`.
    mutating func sent(confirmable: LSN, at now: ContinuousClock.Instant) {
        confirmedSent = max(confirmedSent, confirmable)
        lastSent = now
    }
}
