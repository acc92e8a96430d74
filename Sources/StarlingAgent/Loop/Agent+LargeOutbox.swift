import Logging
import StarlingCore

/// What the push read from the outbox: a batch of changes (stamped), or a transaction too large to read at once.
enum OutboxRead: Sendable {
    case changes([Change], bytes: Int)
    case large(OutboxTransaction)
}

/// A large outbox transaction's rows, read and stamped a chunk at a time (``AgentStore/prepare(_:connection:)``
/// persists the stamps, so a re-sent chunk is the same).
struct OutboxChanges: ChunkSource {
    let transaction: OutboxTransaction
    let read: @Sendable (ArraySlice<Int64>) async throws(AgentError) -> [Change]

    var count: Int { transaction.ids.count }
    var sizes: [Int] { transaction.sizes }
    func changes(_ range: Range<Int>) async throws(AgentError) -> [Change] {
        let changes = try await read(transaction.ids[range])
        guard changes.count == range.count else {
            throw AgentError(
                code: .database,
                message: "outbox rows of transaction \(transaction.tx) vanished while it was pushed", isRetryable: true)
        }
        return changes
    }
}

extension Agent {
    /// Pushes a large outbox transaction (trigger capture) in chunks read from the outbox and handles its
    /// verdicts a slice at a time (``AgentStore/handleOutboxTransactionVerdicts(_:for:wal:connection:)``); false
    /// when the push did not complete (the outbox still holds it).
    func pushOutboxTransaction(_ transaction: OutboxTransaction, readAt: Int) async throws(AgentError) -> Bool {
        let store = self.store
        let source = OutboxChanges(transaction: transaction) { [self] ids async throws(AgentError) in
            try await db { connection in
                try store.prepare(try store.outboxRows(ids: ids, connection: connection), connection: connection)
            }
        }
        let tx = ChangeID(origin: configuration.region, number: transaction.tx).description
        let pushing = "push of a large transaction (\(transaction.ids.count) changes, read from the outbox) to the hub"
        let started = ContinuousClock.now
        guard let verdicts = try await track("push", pushing, { await pushChunked(source, tx: tx, readAt: readAt) })
        else { return false }
        let pushed = ContinuousClock.now
        let outboxMarker = capture.withLock { $0.mode } == .wal
        let queue = captureQueue
        let summary = try await track("push", "applying the verdicts of \(transaction.ids.count) changes") {
            () async throws(AgentError) in
            try await db { [self] connection in
                let (summary, reasserted) = try store.handleOutboxTransactionVerdicts(
                    verdicts, for: transaction,
                    wal: outboxMarker
                        ? WALVerdicts(handledThrough: nil, overwritten: [], stillPending: [], versionRows: true) : nil,
                    connection: connection)
                queue.recordVersions(summary.versions)
                if !reasserted.isEmpty { reassertPending.withLock { $0.subtract(reasserted) } }
                return summary
            }
        }
        countedLarge(transaction.ids.count, summary, from: "the outbox", started: started, answered: pushed)
        await vacuumOutboxIfDue(removed: transaction.ids.count)
        return true
    }
}
