@testable import StarlingAgent
import StarlingCore
import StarlingPostgres
import Testing

/// A restart of the agent's tasks (``CaptureQueue/reset()``): the decoder starts again from the confirmed position,
/// and applies wait until it has read as far as before, so a local change whose verdict was not handled is pending
/// again before an apply asks (CI, 2026-12-07: an apply that ran first overwrote such a change with entries the hub
/// had sequenced after it, and its accepted verdict then wrote the change's older image back for good).
@Suite("CaptureQueue: restart of the agent's tasks")
struct CaptureQueueRestartTests {
    static let key = TableKey(table: "public.items", key: ["id": .integer(1)])

    /// A queue that has caught up at `through` with one local change of ``key`` decoded at 1000.
    static func caughtUpQueue(through: UInt64) throws -> CaptureQueue {
        let queue = CaptureQueue(arrived: WakeUp())
        queue.awaitCatchUp(to: LSN(500))
        queue.append([try CaptureQueueSpillTests.captured(1, commit: 1000)], commitEnd: LSN(1008))
        queue.decoded(through: LSN(through))
        #expect(queue.isCaughtUp)
        #expect(queue.pending(among: [key]) == [key])
        return queue
    }

    @Test("after a reset, applies wait until the decoder has read as far as before: the pending key is back by then")
    func applyWaitsForTheRedecode() throws {
        let queue = try Self.caughtUpQueue(through: 2000)
        queue.reset()
        // The change is forgotten until decoded again; an apply asking now would write its key.
        #expect(queue.pending(among: [Self.key]).isEmpty)
        #expect(!queue.isCaughtUp)
        #expect(queue.catchUpTarget == LSN(2000))
        queue.append([try CaptureQueueSpillTests.captured(1, commit: 1000)], commitEnd: LSN(1008))
        #expect(!queue.isCaughtUp)
        queue.decoded(through: LSN(2000))
        #expect(queue.isCaughtUp)
        #expect(queue.pending(among: [Self.key]) == [Self.key])
    }

    @Test("a second reset before the decoder read that far keeps the further position")
    func resetsKeepTheFurthestPosition() throws {
        let queue = try Self.caughtUpQueue(through: 2000)
        queue.reset()
        queue.decoded(through: LSN(1200))
        queue.reset()
        #expect(queue.catchUpTarget == LSN(2000))
        queue.decoded(through: LSN(1999))
        #expect(!queue.isCaughtUp)
        queue.decoded(through: LSN(2400))
        #expect(queue.isCaughtUp)
        // Once read again, a later reset waits for the new position only.
        queue.reset()
        #expect(queue.catchUpTarget == LSN(2400))
    }

    @Test("a database whose WAL ends before the decoder's old position (restored from a backup) does not stall applies")
    func restoredDatabaseLowersTheTarget() throws {
        let queue = try Self.caughtUpQueue(through: 5000)
        queue.reset()
        queue.limitRedecode(to: LSN(3000))
        #expect(queue.catchUpTarget == LSN(3000))
        queue.decoded(through: LSN(3000))
        #expect(queue.isCaughtUp)
        // Never raised by a later, further end.
        queue.limitRedecode(to: LSN(9000))
        #expect(queue.isCaughtUp)
    }

    @Test("before the process's first catch-up, the start's target still rules")
    func firstCatchUpStillRules() throws {
        let queue = CaptureQueue(arrived: WakeUp())
        queue.awaitCatchUp(to: LSN(4000))
        queue.decoded(through: LSN(1000))
        queue.reset()
        #expect(queue.catchUpTarget == LSN(4000))
        queue.decoded(through: LSN(3999))
        #expect(!queue.isCaughtUp)
        queue.decoded(through: LSN(4000))
        #expect(queue.isCaughtUp)
    }

    /// A queue holding one change (commit 1000) handed out for a push, with a checkpoint after it (resume 1008).
    static func queueWithCheckpoint() throws -> CaptureQueue {
        let queue = CaptureQueue(arrived: WakeUp())
        queue.append([try CaptureQueueSpillTests.captured(1, commit: 1000)], commitEnd: LSN(1008))
        queue.offer(resume: LSN(1008), ledger: CaptureLedger(cursor: 0), switching: false, hlc: 0)
        #expect(queue.completedCheckpoint() == nil)
        guard case .changes(let batch)? = queue.nextBatch(maxCount: 10, maxBytes: 1 << 20) else {
            Issue.record("no batch")
            return queue
        }
        #expect(batch.count == 1)
        return queue
    }

    @Test("verdicts committed on a session that ended since are not saved by a checkpoint on another session")
    func verdictsOfAnEndedSession() throws {
        // Verdict transactions commit asynchronously: a save's synchronous commit flushes them only on their own
        // session (a crash between them ends it and loses them). Saved on a new session, the slot would confirm a
        // position past changes whose verdicts are gone, and nothing would push them again.
        let queue = try Self.queueWithCheckpoint()
        queue.handled(session: 7)
        #expect(queue.completedCheckpoint() != nil)
        #expect(!queue.verdictsDurable(savingOn: 8))
        #expect(queue.verdictsDurable(savingOn: 7))
        // Once saved, the next verdicts may be on any session.
        queue.confirmed(LSN(1008))
        #expect(queue.verdictsDurable(savingOn: 8))
        // A restart of the tasks starts from the saved position: nothing before it is owed.
        queue.append([try CaptureQueueSpillTests.captured(2, commit: 2000)], commitEnd: LSN(2008))
        _ = queue.nextBatch(maxCount: 10, maxBytes: 1 << 20)
        queue.handled(session: 8)
        #expect(!queue.verdictsDurable(savingOn: 9))
        queue.reset()
        #expect(queue.verdictsDurable(savingOn: 9))
    }

    @Test("verdicts on two sessions since the last save are never durable by one save; synchronous ones never bind")
    func verdictsOnTwoSessions() throws {
        let queue = try Self.queueWithCheckpoint()
        queue.handled(session: 3)
        queue.append([try CaptureQueueSpillTests.captured(2, commit: 2000)], commitEnd: LSN(2008))
        _ = queue.nextBatch(maxCount: 10, maxBytes: 1 << 20)
        queue.handled(session: 4)
        #expect(!queue.verdictsDurable(savingOn: 3))
        #expect(!queue.verdictsDurable(savingOn: 4))
        // A schema change's handling commits synchronously (nil): it asks nothing of the save.
        let other = try Self.queueWithCheckpoint()
        other.handled(session: nil)
        #expect(other.verdictsDurable(savingOn: 12))
    }
}
