import Logging
import StarlingIO

/// The failover loop: a standby polls for the sequencer lock and takes over; the active hub checks its lock
/// session and steps down when it is lost (roles in ``HubRole``).
///
/// Why step down rather than exit: a hub whose lock session died (Postgres restart, network cut,
/// `pg_terminate_backend`) may have stale counters and heads in memory, and another hub may already sequence.
/// Stepping down to standby drops all of it (queued work fails with `standby`; the writer forgets its session)
/// and the next takeover reloads from the database, exactly as a fresh process would, without depending on a
/// supervisor to restart it. Two writers are impossible either way: a batch commits only on the lock session.
extension Hub {
    /// How often a standby tries the lock (`pg_try_advisory_lock`): the bulk of the takeover time once the old
    /// hub's session is gone.
    static let lockPollInterval = Duration.milliseconds(200)
    /// How often the active hub asks Postgres whether its session still holds the lock. Between checks a lost
    /// session is still caught by the next batch (it runs on that session only), so this bounds how long a
    /// hub with nothing to write keeps claiming to be active.
    static let lockCheckInterval = Duration.milliseconds(500)
    /// How long a lock check may go unanswered before the hub steps down anyway (a network cut leaves the
    /// query hanging). Longer than any legitimate group commit, which the check waits behind.
    static let lockCheckTimeout = Duration.seconds(10)

    /// True while this hub is the sequencer (false: standby).
    public var isActive: Bool { role.isActive }

    /// Runs until cancelled: poll for the lock while standby, check it while active.
    func runFailover() async {
        while !Task.isCancelled && !stopped.withLock({ $0 }) {
            if role.isActive {
                try? await Task.sleep(for: Self.lockCheckInterval)
                if Task.isCancelled || stopped.withLock({ $0 }) { return }
                if sequencer.pollLock(timeout: Self.lockCheckTimeout) { sequencer.lockLost() }
            } else {
                try? await Task.sleep(for: Self.lockPollInterval)
                if Task.isCancelled || stopped.withLock({ $0 }) { return }
                do {
                    if try await takeOver() {
                        let snapshot = role.snapshot
                        logger.warning(
                            "took over as the active hub",
                            metadata: [
                                "seq": "\(notifier.head)",
                                "takeover.seconds": "\(snapshot.lastTakeoverSeconds ?? 0)",
                            ])
                    }
                } catch {
                    logger.warning("taking over failed; retrying", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// One takeover attempt: wins the lock (or returns false), then re-reads everything the sequencer and
    /// the API hold in memory (next seq and conflict id in the writer, the head, region cursors and status,
    /// table shapes) before the role turns active and the route table lets writes in. A failure after the lock was
    /// won leaves the hub standby holding the lock; the next attempt resumes from the reload.
    func takeOver() async throws -> Bool {
        let started = clock.monotonicNanos()
        guard let head = try await sequencer.tryAcquire() else { return false }
        notifier.publish(head: head)
        let regions = try await pool.withConnection { try HubStore.loadRegions($0) }
        for (name, entry) in regions { activity.load(name, entry) }
        try await refreshShapes()
        try await pool.withConnection { [retention] in try retention.load(connection: $0) }
        role.becameActive(takeoverSeconds: Double(clock.monotonicNanos() - started) / 1e9)
        return true
    }
}
