import Logging
import StarlingIO
import StarlingPostgres
import Synchronization

/// Winning, checking and losing the sequencer lock: the one lock that makes one active hub per database.
///
/// All three run as jobs on the sequencer's worker thread, so they are ordered with the batches: the lock
/// session is the worker's connection, and a batch never runs on any other session (see
/// ``SequencerWriter/verifyHeld(_:)``).
extension Sequencer {
    /// The error of work refused while this hub is a standby.
    static let standbyError = HubError(
        code: .standby, message: "this hub is a standby: another hub holds the sequencer lock")

    /// The error of a batch whose lock session was lost.
    static let lockLostError = HubError(
        code: .standby, message: "this hub lost its sequencer lock session and stepped down to standby")

    /// One attempt to become the sequencer: takes the lock without waiting and loads the counters. Returns
    /// the committed head, or nil while another hub holds the lock. Throws when Postgres cannot be reached.
    ///
    /// On success the lock watch starts afresh: checks queued before this job (same thread) have finished,
    /// and their verdicts concern the session this hub had before.
    func tryAcquire() async throws -> Int64? {
        try await worker.withConnection { [self] connection -> Int64? in
            guard try writer.tryLock(connection) else { return nil }
            lockCheck.withLock { $0 = LockCheck() }
            let opened = writer.terms
            terms.withLock { $0 = opened }
            return writer.head
        }
    }

    /// The state of the asynchronous lock check (``pollLock(timeout:)``); guarded by ``lockCheck``.
    struct LockCheck: Sendable {
        /// When the running check was queued (monotonic nanoseconds); nil when none runs.
        var startedNanos: UInt64?
        /// The last finished check found the lock not held (or failed); consumed by the next poll.
        var failed = false
        /// The allowance of every batch the running check waits behind (``lockCheckAllowance(runningChanges:)``):
        /// the one running when it was queued, and each the drain loop started since.
        var allowance = Duration.zero
    }

    /// A batch of `changes` changes starts: a check under way waits for it too.
    func batchStarted(changes: Int) {
        lockCheck.withLock { check in
            if check.startedNanos != nil { check.allowance += Self.lockCheckAllowance(runningChanges: changes) }
        }
    }

    /// One tick of the active hub's watch on its lock session; true when the hub must step down.
    ///
    /// Starts a check (one round trip on the worker's session, after any running batch) unless one is under
    /// way, and reports what is known: the last check found the lock not held or failed, or the check under
    /// way has not come back within `timeout`. The wait is not awaited because a network cut leaves a libpq
    /// query hanging until TCP gives up (minutes without keepalives): a hub that cannot reach its lock session
    /// must stop accepting writes long before that, so agents move to a hub that can. `timeout` must exceed
    /// the longest legitimate group commit, which the check queues behind, plus the running batch's allowance.
    func pollLock(timeout: Duration) -> Bool {
        let now = clock.monotonicNanos()
        let running = Self.lockCheckAllowance(runningChanges: state.withLock { $0.runningChanges })
        func nanos(_ duration: Duration) -> UInt64 {
            UInt64(duration.components.seconds) * 1_000_000_000
                + UInt64(duration.components.attoseconds / 1_000_000_000)
        }
        let (start, failed, stuck) = lockCheck.withLock { check -> (Bool, Bool, Bool) in
            if check.failed {
                check.failed = false
                return (false, true, false)
            }
            if let started = check.startedNanos {
                return (false, false, now - started > nanos(timeout + check.allowance))
            }
            check.startedNanos = now
            check.allowance = running
            return (true, false, false)
        }
        if start { submitLockCheck() }
        if stuck {
            logger.error("sequencer lock check did not answer in time", metadata: ["timeout": "\(timeout)"])
        }
        return failed || stuck
    }

    /// The time a lock check may additionally wait behind a running batch of `runningChanges` changes: 200 µs
    /// per change (a group commit of `max_batch_changes` adds 4 s; a staged transaction of a million changes,
    /// sequenced in one batch, 200 s). Without it, a staged transaction whose batch outlasted the check's
    /// timeout stepped the hub down in the middle, and every retry did the same (a 150 000-change transaction
    /// never committed in the end-to-end test). Only the step-down after a lost session waits longer; a batch on
    /// a lost session still cannot commit (``SequencerWriter/verifyHeld(_:)``, the session lock).
    static func lockCheckAllowance(runningChanges: Int) -> Duration {
        .microseconds(200 * Int64(runningChanges))
    }

    private func submitLockCheck() {
        let writer = self.writer
        let logger = self.logger
        do {
            try worker.submit { [self] connection in
                var isHeld = false
                do {
                    isHeld = try writer.isHolding(connection.get())
                } catch {
                    logger.warning("sequencer lock check failed", metadata: ["error": "\(error)"])
                }
                lockCheck.withLock { check in
                    check.startedNanos = nil
                    if !isHeld { check.failed = true }
                }
            }
        } catch {
            // Shutting down, or the worker's queue is full of batches: the next tick tries again.
            lockCheck.withLock { $0.startedNanos = nil }
        }
    }

    /// Steps down: the role becomes standby, queued work fails with `standby` (agents retry at another hub),
    /// and the writer forgets its lock session (on its thread) so a later takeover reloads everything.
    /// Idempotent; callable from any thread.
    func lockLost() {
        let stepped = role.fenced()
        logCache.reset()
        let pending = state.withLock { state in
            defer {
                state.items.removeAll()
                state.queuedChanges = 0
            }
            return state.items
        }
        for item in pending { Self.fail(item, Self.lockLostError) }
        let writer = self.writer
        do {
            try worker.submit { _ in writer.forgetLock() }
        } catch {
            // Shutting down, or its queue is full. Harmless: a new session is never taken for the lock holder
            // (tryLock locks it anew), and a still-live old session still holds the lock, so nothing is stale.
        }
        if stepped {
            logger.error("sequencer lock session lost: stepped down to standby; no writes until the lock is won again")
        }
    }
}
