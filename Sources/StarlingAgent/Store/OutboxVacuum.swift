/// When the agent vacuums `starling.outbox` itself.
///
/// The outbox is a queue: every captured write inserts a row and every verdict deletes it. Until its dead rows
/// are vacuumed, the B-tree scan that reads the next batch (`ORDER BY id LIMIT n`) steps over every deleted
/// entry, and autovacuum visits at most once a minute (and, with the default 20% scale factor, late for a table
/// that is empty most of the time). After a bulk load of 30 000 rows, reading a batch of a few fresh rows took
/// 12 ms instead of 0.1 ms until then. So the agent runs `VACUUM starling.outbox` after it removed
/// `rowsPerVacuum` rows, at most once per `minimumInterval`. Pure: the caller runs the statement.
package struct OutboxVacuum: Sendable {
    package let rowsPerVacuum: Int
    package let minimumInterval: Duration
    private var removedSinceVacuum = 0
    private var lastVacuum: ContinuousClock.Instant?

    package init(rowsPerVacuum: Int = 5000, minimumInterval: Duration = .seconds(5)) {
        self.rowsPerVacuum = rowsPerVacuum
        self.minimumInterval = minimumInterval
    }

    /// Records `count` rows removed from the outbox; true when a vacuum is due now (the caller then runs it
    /// and calls ``vacuumed(at:)``).
    package mutating func removed(_ count: Int, now: ContinuousClock.Instant) -> Bool {
        removedSinceVacuum += count
        guard removedSinceVacuum >= rowsPerVacuum else { return false }
        if let lastVacuum, now - lastVacuum < minimumInterval { return false }
        return true
    }

    /// Records a vacuum that ran (or was attempted) at `now`.
    package mutating func vacuumed(at now: ContinuousClock.Instant) {
        removedSinceVacuum = 0
        lastVacuum = now
    }

    /// The statement. It cannot run inside a transaction block; it leaves rows still visible to a snapshot. Not
    /// SKIP_LOCKED: when autovacuum holds the table, this waits for it to cancel itself (it yields to a waiting
    /// lock after deadlock_timeout) instead of silently skipping.
    package static let sql = "VACUUM starling.outbox"
}
