import Logging
import StarlingPostgres

/// Winning, checking and losing the sequencer lock (issue 7, "Hub failover").
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
    func tryAcquire() async throws -> Int64? {
        let writer = self.writer
        return try await worker.withConnection { connection -> Int64? in
            try writer.tryLock(connection) ? writer.head : nil
        }
    }

    /// True while the worker's session still holds the lock (one round trip). False when the session was
    /// lost or replaced, or Postgres does not answer with an error; the caller then calls ``lockLost()``.
    func checkLock() async -> Bool {
        let writer = self.writer
        do {
            return try await worker.withConnection { connection in try writer.isHolding(connection) }
        } catch {
            logger.warning("sequencer lock check failed", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Steps down: the role becomes standby, queued work fails with `standby` (agents retry at another hub),
    /// and the writer forgets its lock session (on its thread) so a later takeover reloads everything.
    /// Idempotent; callable from any thread.
    func lockLost() {
        let stepped = role.fenced()
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
