import StarlingCore
import StarlingPostgres
import Synchronization

/// Applying a pulled page (README "Apply"): in one transaction with the cursor's move, or under WAL capture in
/// parallel (``ApplyPlan``, AgentStore+Parallel.swift): the page's key-disjoint parts apply at once, part 0 on the
/// agent's database connection and the others on the apply workers' (each session with a replication origin of
/// its own), before the cursor's transaction applies the serial rest on the database connection.
///
/// ```
///  page ─▶ pending keys (one snapshot) ─▶ plan ─▶ part 0 (database) ┐
///                                              ├▶ part 1 (worker 1) ├─▶ cursor's transaction: serial rest (pending
///                                              └▶ part n (worker n) ┘   keys, serial tables, parts that went serial)
/// ```
/// Keys with a local change waiting for its verdict go to the serial rest, whose deferral runs on the database
/// thread in order with the verdict jobs (a part deferring an entry while a verdict job on another connection
/// released its key would leave the entry deferred for good). A part that fails leaves the others committed: the
/// loop backs off, reads the cursor and the part records again (``partsDone``) and pulls the page again, skipping
/// what the parts recorded.
extension Agent {
    /// The seqs parts applied above `after` before a cursor move that did not happen (read with the cursor when
    /// the pull pipeline starts; AgentStore+Parallel.swift).
    struct PartsDone: Sendable {
        var after: Int64
        var seqs: Set<Int64>
    }

    /// Tables of the synced set that must apply in commit order, as last read, and when.
    struct SerialTablesCache: Sendable {
        var checked: Set<String> = []
        var serial: Set<String> = []
        var at = ContinuousClock.now
    }

    /// How long the serial-tables answer is trusted for planning (each part checks again under its locks).
    static let serialTablesTTL = Duration.seconds(10)

    /// Applies `page` (from `after` to `next`): its parts first when the plan cuts it (WAL capture switched over,
    /// nothing spilled), then the rest with the cursor's move. `clearsParts`: part records of this page exist.
    func applyPage(
        _ page: [LogEntry], after: Int64, next: Int64, spill: AgentStore.Spill?, queue: CaptureQueue?,
        switching: Bool, clearsParts: Bool
    ) async throws(AgentError) -> ApplySummary {
        var rest = page
        var parts: ApplySummary?
        if let queue, !switching, spill == nil,
            let (summary, serial) = try await applyParts(page, after: after, queue: queue)
        {
            guard !summary.isStale else { return summary }
            parts = summary
            rest = serial.map { page[$0] }
        }
        let store = self.store
        let clears = clearsParts || parts != nil
        let serial = rest
        var summary = try await db { [self] connection in
            guard let queue else {
                return try store.apply(
                    serial, after: after, next: next, spill: spill, clearsParts: clears, connection: connection)
            }
            let keys = serial.map { TableKey(table: $0.table, key: $0.key) }
            let pending = queue.pendingSnapshot(among: keys)
            let wal = WALApply(
                pendingKeys: pending.keys.union(reasserting(among: keys)),
                versions: switching ? nil : queue.versions(of: keys, above: after), deferredThrough: pending.through,
                keys: keys)
            let summary = try store.apply(
                serial, after: after, next: next, wal: wal, spill: spill, clearsParts: clears, connection: connection)
            if summary.applied > 0 {
                queue.wrote(
                    keys + summary.spilledKeys,
                    at: try summary.position ?? AgentStore.walInsertPosition(connection: connection))
            }
            return summary
        }
        if let parts, !summary.isStale { summary.add(parts) }
        return summary
    }

    /// Applies the parts of `batch` (from `after`) when the plan cuts it in two or more; returns their merged
    /// summary (`isStale` when the cursor moved meanwhile) and the indices the cursor's transaction applies.
    /// Nil when the page applies in one transaction.
    private func applyParts(_ batch: [LogEntry], after: Int64, queue: CaptureQueue) async throws(AgentError)
        -> (summary: ApplySummary, rest: [Int])?
    {
        let settings = configuration.tuning.apply
        // At most `tuning.apply.workers`, fewer when the cluster's origin slots are taken (``ActiveCapture``).
        let (workers, stopped) = (
            capture.withLock { $0.applyWorkers }, shared.withLock { !$0.progress.stoppedTables.isEmpty })
        // A stopped table holds its entries in the cursor's transaction: every part would find them and go serial.
        guard workers > 1, !stopped, batch.count >= settings.minParallelEntries else { return nil }
        let keys = batch.map { TableKey(table: $0.table, key: $0.key) }
        let pending = queue.pendingSnapshot(among: keys)
        let plan = ApplyPlan.make(
            batch, workers: workers, minEntries: settings.minParallelEntries,
            serialTables: try await tablesApplyingInOrder(among: Set(batch.map(\.table))),
            serialKeys: pending.keys.union(reasserting(among: keys)))
        guard !plan.parts.isEmpty else { return nil }
        let outcomes = await withTaskGroup(of: (Int, Result<AgentStore.PartOutcome, AgentError>).self) { group in
            for (index, part) in plan.parts.enumerated() {
                let worker = index == 0 ? database : applyWorkers[index - 1]
                let entries = part.map { batch[$0] }
                group.addTask { [self] in
                    (index, await applyPart(entries, after: after, through: pending.through, on: worker, queue: queue))
                }
            }
            var outcomes: [(Int, Result<AgentStore.PartOutcome, AgentError>)] = []
            for await outcome in group { outcomes.append(outcome) }
            return outcomes.sorted { $0.0 < $1.0 }
        }
        var summary = ApplySummary()
        var rest = plan.serial
        for (index, result) in outcomes {
            switch result {
            case .failure(let error):
                throw error
            case .success(.stale):
                summary.isStale = true
            case .success(.serial(let reason, let dueToTables)):
                logger.debug("part applied serially", metadata: [AgentLogKey.reason: "\(reason)"])
                rest += plan.parts[index]
                if dueToTables { serialTablesCache.withLock { $0 = SerialTablesCache() } }
            case .success(.applied(let part)):
                summary.add(part)
                summary.parts += 1
            }
        }
        // Counted as they commit: the cursor's transaction may fail and the page come again without them.
        shared.withLock { $0.progress.parallelParts += summary.parts }
        return (summary, rest.sorted())
    }

    /// One part on `worker`'s connection. Its keys have no pending local change as of `through` (the plan sent
    /// those to the serial rest): the part defers nothing and promises so (``CaptureLedger/Marker/deferredThrough``).
    private func applyPart(
        _ entries: [LogEntry], after: Int64, through: StreamPosition?, on worker: PostgresWorker, queue: CaptureQueue
    ) async -> Result<AgentStore.PartOutcome, AgentError> {
        let store = self.store
        do throws(AgentError) {
            return .success(try await worker.run(during: "apply") { connection in
                let keys = entries.map { TableKey(table: $0.table, key: $0.key) }
                let wal = WALApply(
                    pendingKeys: [], versions: queue.versions(of: keys, above: after), deferredThrough: through)
                let outcome = try store.applyPart(entries, after: after, wal: wal, connection: connection)
                if case .applied(let summary) = outcome, summary.applied > 0 {
                    queue.wrote(keys, at: try AgentStore.walInsertPosition(connection: connection))
                }
                return outcome
            })
        } catch {
            return .failure(error)
        }
    }

    /// The tables among `tables` that must apply in commit order: from the last answer while it is fresh and
    /// covers them, else asked on the database connection.
    private func tablesApplyingInOrder(among tables: Set<String>) async throws(AgentError) -> Set<String> {
        let cached = serialTablesCache.withLock { $0 }
        if tables.isSubset(of: cached.checked), ContinuousClock.now - cached.at < Self.serialTablesTTL {
            return cached.serial
        }
        let asked = tables.union(cached.checked).sorted()
        let serial = try await db { connection in try AgentStore.serialTables(among: asked, connection: connection) }
        serialTablesCache.withLock { $0 = SerialTablesCache(checked: Set(asked), serial: serial, at: .now) }
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
