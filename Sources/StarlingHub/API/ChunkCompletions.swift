import StarlingCore
import Synchronization

/// The staged transactions whose last chunk is being completed (assembled and sequenced) now, so a re-sent last
/// chunk (the agent timed out waiting for the answer) joins the running completion instead of assembling and
/// sequencing the whole transaction a second time; both get its verdicts.
///
/// Each completion runs in a task owned by this table until it ends, awaited by every request that asked for it;
/// the first to finish waiting removes it. Shared by the API's handlers (a mutex).
final class ChunkCompletions: Sendable {
    private let running = Mutex<[Sequencer.StagedKey: Task<TransactionVerdicts, any Error>]>([:])

    /// The verdicts of completing `key`: a completion already running for it, or `body` run now.
    func complete(_ key: Sequencer.StagedKey, _ body: @escaping @Sendable () async throws -> TransactionVerdicts)
        async throws -> TransactionVerdicts
    {
        let task = running.withLock { table in
            if let task = table[key] { return task }
            let task = Task { try await body() }
            table[key] = task
            return task
        }
        let result = await task.result
        running.withLock { table in
            if table[key] == task { table[key] = nil }
        }
        return try result.get()
    }
}
