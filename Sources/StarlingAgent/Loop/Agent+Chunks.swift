import Logging
import StarlingCore

extension Agent {
    /// Whether `changes` is one origin transaction too large for one push: more changes than ``pushBatch``'s count
    /// (`tuning.batch.max_count` within the hub's `max_push_changes`), or more bytes than its byte limit (a few
    /// wide rows). It goes in chunks (``pushChunked(_:tx:readAt:)``). The batch readers never split a transaction and
    /// measure what they read (`approximateBytes`, the same measure they cap batches by), so a batch over either
    /// limit holds exactly one, and nothing is serialized to decide.
    func chunkedTransaction(_ changes: [Change], approximateBytes: Int) -> String? {
        let batch = pushBatch
        guard changes.count > batch.maxCount || (changes.count > 1 && approximateBytes > batch.maxBytes),
            let tx = changes.first?.tx, changes.allSatisfy({ $0.tx == tx })
        else { return nil }
        return tx
    }

    /// Counts a large transaction's handled push (`from`: where its chunks were read) in the agent's progress and
    /// logs it with the time until the hub's answer (`started` → `answered`) and the verdicts' time since.
    func countedLarge(
        _ changes: Int, _ summary: VerdictSummary, from: String, started: ContinuousClock.Instant,
        answered: ContinuousClock.Instant
    ) {
        shared.withLock {
            $0.progress.pushedChanges += changes
            $0.progress.deadLetters += summary.deadLettered
            $0.progress.largeTransactions += 1
        }
        logger.info(
            "large transaction pushed from \(from)",
            metadata: [
                AgentLogKey.changes: "\(changes)", AgentLogKey.rejected: "\(summary.rejected)",
                AgentLogKey.hubMs: "\(Self.ms(answered - started))",
                AgentLogKey.dbMs: "\(Self.ms(ContinuousClock.now - answered))",
            ])
    }

    /// Pushes one origin transaction in chunks until the last chunk's answer gives the verdicts of all of it
    /// (compacted); nil when stopped first. Each chunk is retried (with backoff) until staged; re-sends are
    /// harmless. A chunk at 0 learns what the hub holds already (after a restart) and skips it; `chunks_missing`
    /// (the hub deleted the chunks when a previous last chunk completed the transaction and its answer was lost)
    /// starts over at 0, and the completed changes are then answered from their stored verdicts.
    ///
    /// Memory: each chunk's changes are taken from `source` (in memory, or read back from a spill) and its body
    /// built and sent one at a time.
    /// `readAt`: as ``pushUntilVerdicts(_:approximateBytes:readAt:reimagesRefused:)``: a rewind since the read ends
    /// it with nil. `reimagesRefused` (WAL capture): a chunk the hub refuses with 400 marks its tables for
    /// ``reimagingMisfits(_:)`` and is read again at once; every chunk of a marked table is read so.
    func pushChunked(_ source: some ChunkSource, tx: String, readAt: Int, reimagesRefused: Bool = false) async
        -> TransactionVerdicts?
    {
        let batch = pushBatch
        let plan = ChunkPlan(sizes: source.sizes, maxCount: batch.maxCount, maxBytes: batch.maxBytes)
        var backoff = RetryBackoff(configuration.tuning.backoff)
        var position = 0
        logger.info(
            "pushing a large transaction in chunks",
            metadata: [AgentLogKey.changes: "\(source.count)", "agent.chunks": "\(plan.ranges.count)"])
        while !isStopped, rewinds.load(ordering: .acquiring) == readAt {
            let range = plan.ranges[position]
            let isLast = position == plan.ranges.count - 1
            var chunkTables: [String] = []
            do throws(AgentError) {
                let read = try await source.changes(range)
                chunkTables = read.map(\.table)
                let changes = reimagesRefused ? try await reimagingMisfits(read) : read
                switch try await hub.pushChunk(changes[...], tx: tx, first: range.lowerBound, isLast: isLast) {
                case .staged(let through):
                    position = plan.next(after: position, through: through)
                case .completed(let verdicts):
                    guard verdicts.count == source.count, verdicts.tx == tx else {
                        throw AgentError(
                            code: .invalidResponse,
                            message: "the hub answered \(verdicts.count) verdicts of transaction \(verdicts.tx) for \(tx) of \(source.count) changes",
                            isRetryable: true)
                    }
                    return verdicts
                }
                backoff.reset()
            } catch where error.code == .logDiverged {
                // The pull task rewinds, which lowers the changes' bases: the transaction is read again afterwards.
                note(error, during: "push")
                await sleep(ms: backoff.nextMs())
                return nil
            } catch where error.code == .chunksMissing {
                logger.info("the hub lacks chunks of the transaction: re-sending it", metadata: ["agent.tx": "\(tx)"])
                position = 0
            } catch where reimagesRefused && error.httpStatus == 400 && markForReimage(chunkTables) {
                note(error, during: "push")
            } catch {
                note(error, during: "push")
                await sleep(ms: backoff.nextMs())
            }
        }
        return nil
    }
}

/// The changes of one origin transaction that goes in chunks (``Agent/pushChunked(_:tx:readAt:)``).
protocol ChunkSource: Sendable {
    var count: Int { get }
    /// Each change's serialized size, in order (what ``ChunkPlan`` cuts by).
    var sizes: [Int] { get }
    /// The changes at ordinals `range`.
    func changes(_ range: Range<Int>) async throws(AgentError) -> [Change]
}

/// A transaction held in memory (read from the outbox, or decoded and not spilled).
struct ChangesInMemory: ChunkSource {
    let all: [Change]

    var count: Int { all.count }
    var sizes: [Int] { all.map { $0.json.serialized().count } }
    func changes(_ range: Range<Int>) throws(AgentError) -> [Change] { Array(all[range]) }
}

/// A spilled transaction (``SpilledTransaction``), read back a chunk at a time; bases lowered to `baseCeiling`
/// when a rewind happened after it was decoded.
struct SpilledChanges: ChunkSource {
    let transaction: SpilledTransaction
    let baseCeiling: Int64?

    var count: Int { transaction.count }
    var sizes: [Int] { transaction.sizes }
    func changes(_ range: Range<Int>) throws(AgentError) -> [Change] {
        let changes = try transaction.changes(range)
        guard let baseCeiling else { return changes }
        return changes.map { $0.rebased(atMost: baseCeiling) }
    }
}
