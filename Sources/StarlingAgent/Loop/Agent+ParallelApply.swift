import StarlingCore
import StarlingPostgres
import Synchronization

/// Parallel apply (``ApplyPlan``, AgentStore+Parallel.swift; README "Apply"): under WAL capture, a page's
/// key-disjoint parts apply at once, part 0 on the agent's database connection and the others on the apply
/// workers' (each session with a replication origin of its own), before the cursor's transaction applies the
/// serial rest on the database connection.
///
/// ```
///  page ─▶ plan ─▶ part 0 (database) ┐
///               ├▶ part 1 (worker 1) ├─▶ all committed? ─▶ cursor's transaction: serial rest + parts that
///               └▶ part n (worker n) ┘                      went serial, cursor move, part records deleted
/// ```
/// A part that fails leaves the others committed: the loop backs off, reads the cursor and the part records
/// again (``partsDone``) and pulls the page again, skipping what the parts recorded.
extension Agent {
    /// The seqs parts applied above `after` before a cursor move that did not happen (read with the cursor when
    /// the pull pipeline starts; AgentStore+Parallel.swift).
    struct PartsDone: Sendable {
        var after: Int64
        var seqs: Set<Int64>
    }

    /// Tables of the synced set that must apply in commit order, as last read, and when.
    struct SerialTables: Sendable {
        var checked: Set<String> = []
        var serial: Set<String> = []
        var at = ContinuousClock.now
    }

    /// How long the serial-tables answer is trusted for planning (each part checks again under its locks).
    static let serialTablesTTL = Duration.seconds(10)

    /// Applies `batch` (from `after`) in parts when the plan cuts it in two or more; returns the merged summary of
    /// the parts (`isStale` when the cursor moved meanwhile) and the indices the cursor's transaction applies.
    /// Nil when the page applies in one transaction.
    func applyInParts(_ batch: [LogEntry], after: Int64, queue: CaptureQueue) async throws(AgentError)
        -> (summary: ApplySummary, rest: [Int])?
    {
        let settings = configuration.tuning.apply
        let workers = min(settings.workers, applyWorkers.count + 1)
        guard workers > 1, batch.count >= settings.minParallelEntries else { return nil }
        let serialTables = try await serialTables(among: Set(batch.map(\.table)))
        let plan = ApplyPlan.make(
            batch, workers: workers, minEntries: settings.minParallelEntries, serialTables: serialTables)
        guard !plan.parts.isEmpty else { return nil }
        let store = self.store
        let outcomes = await withTaskGroup(of: (Int, Result<AgentStore.PartOutcome, AgentError>).self) { group in
            for (index, part) in plan.parts.enumerated() {
                let worker = index == 0 ? database : applyWorkers[index - 1]
                let entries = part.map { batch[$0] }
                group.addTask { [self] in
                    let result: Result<AgentStore.PartOutcome, AgentError>
                    do throws(AgentError) {
                        result = .success(try await worker.run(during: "apply") { [self] connection in
                            let keys = entries.map { TableKey(table: $0.table, key: $0.key) }
                            let pending = queue.pendingSnapshot(among: keys)
                            let wal = WALApply(
                                pendingKeys: pending.keys.union(reasserting(among: keys)),
                                versions: queue.versions(of: keys, above: after), deferredThrough: pending.through)
                            let outcome = try store.applyPart(entries, after: after, wal: wal, connection: connection)
                            if case .applied(let summary) = outcome, summary.applied > 0 {
                                queue.wrote(keys, at: try AgentStore.walInsertPosition(connection: connection))
                            }
                            return outcome
                        })
                    } catch {
                        result = .failure(error)
                    }
                    return (index, result)
                }
            }
            var outcomes: [(Int, Result<AgentStore.PartOutcome, AgentError>)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes
        }
        var summary = ApplySummary()
        var rest = plan.serial
        for (index, result) in outcomes.sorted(by: { $0.0 < $1.0 }) {
            switch result {
            case .failure(let error):
                throw error
            case .success(.stale):
                summary.isStale = true
            case .success(.serial(let reason)):
                logger.info("part applied serially", metadata: ["agent.reason": "\(reason)"])
                rest += plan.parts[index]
                self.serialTables.withLock { $0 = SerialTables() }
            case .success(.applied(let part)):
                summary.add(part)
                summary.parts += 1
            }
        }
        // Counted as they commit: the cursor's transaction may fail and the page come again without them.
        shared.withLock { $0.progress.parallelParts += summary.parts }
        return (summary, rest.sorted())
    }

    /// The tables among `tables` that must apply in commit order: from the last answer while it is fresh and
    /// covers them, else asked on the database connection.
    private func serialTables(among tables: Set<String>) async throws(AgentError) -> Set<String> {
        let cached = serialTables.withLock { $0 }
        if tables.isSubset(of: cached.checked), ContinuousClock.now - cached.at < Self.serialTablesTTL {
            return cached.serial
        }
        let asked = tables.union(cached.checked).sorted()
        let serial = try await db { connection in try AgentStore.serialTables(among: asked, connection: connection) }
        serialTables.withLock { $0 = SerialTables(checked: Set(asked), serial: serial, at: .now) }
        return serial
    }
}

extension ApplySummary {
    /// Adds the counts of another part of the same page.
    mutating func add(_ other: ApplySummary) {
        isStale = isStale || other.isStale
        applied += other.applied
        skippedOwn += other.skippedOwn
        skippedVersion += other.skippedVersion
        skippedPending += other.skippedPending
        deadLettered += other.deadLettered
        batchFallbacks += other.batchFallbacks
        held += other.held
        resumed += other.resumed
        parts += other.parts
        stoppedTables.merge(other.stoppedTables) { _, later in later }
        spilledKeys += other.spilledKeys
    }
}
