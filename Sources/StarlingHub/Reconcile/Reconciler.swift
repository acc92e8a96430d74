import Logging
import StarlingCore
import StarlingHTTP2
import StarlingIO
import StarlingPostgres
import Synchronization

/// Runs reconciliations (DESIGN.md "Beyond the log"): compares every region's synced tables with the
/// hub's heads and repairs the differences with `repair` entries meant for that region only.
///
/// The hub never connects to agents, so a run is a conversation the agents drive: each agent polls
/// `GET /v1/reconcile/task` (region token); while a run is active it gets a ``ReconcileTask`` for its current
/// table, computes it in one snapshot of its database and posts the ``ReconcileAnswer`` to
/// `POST /v1/reconcile/answer`, whose response is its next task (or none). Per table:
/// ```
///  summary(12 bits, all rows) ──equal──▶ done
///        │ differing buckets
///        ├─ few rows ──▶ keys(chunk 1) … keys(chunk n) ──▶ repairs ──▶ done
///        └─ many rows ─▶ summary(+8 bits, within them) ──▶ … (at most 32 bits)
/// ```
/// The hub computes the same summaries over its heads with the same SQL (``ReconcileSQL``), so a converged
/// table costs one scan per side and 4096 summaries on the wire. Key steps skip keys in flight
/// (``ReconcileBuckets/compareKeys(region:pending:cursor:heads:)``) and repair only real differences.
///
/// One run at a time; it ends when every region finished every table, or at the timeout (remaining tables
/// `timed_out`). Results go to `starling_hub.reconcile_runs`/`reconcile_results`, the audit log and metrics.
/// Threads: handlers call in from any task; the in-memory state is one `Mutex` (never held across a wait).
final class Reconciler: Sendable {
    /// The active run.
    struct Run {
        var id: Int64
        var startedNanos: UInt64
        var regions: [String: RegionProgress]
        var nextStep: Int64 = 1
    }

    /// One region's walk through the tables.
    struct RegionProgress {
        var tables: [String]
        var index = 0
        var table: TableProgress?
        var isBusy = false
        var isDone: Bool { index >= tables.count }
    }

    /// One table in progress for one region.
    struct TableProgress {
        var task: ReconcileTask
        var startedNanos: UInt64
        var compared: Int64 = 0
        var differing: [ReconcileBuckets.KeyComparison.Differing] = []
        var skipped = 0
        var repaired = 0
        /// Key-step chunks still to ask for, and their bits.
        var chunks: [[Int64]] = []
        var keyBits = 0
    }

    let settings: HubSettings
    let pool: PostgresPool
    let sequencer: Sequencer
    let metrics: HubMetrics
    let logger: Logger
    let state = Mutex<Run?>(nil)
    /// Serializes starting runs (the insert of the run row happens outside the state lock).
    private let starting = Mutex(false)

    /// Where run and task durations and timeouts are read.
    let clock: TimeSource

    init(
        settings: HubSettings, pool: PostgresPool, sequencer: Sequencer, metrics: HubMetrics, clock: TimeSource,
        logger: Logger
    ) {
        self.settings = settings
        self.clock = clock
        self.pool = pool
        self.sequencer = sequencer
        self.metrics = metrics
        self.logger = logger
    }

    /// The id of the active run, if any.
    var activeRunID: Int64? { state.withLock { $0?.id } }

    /// Starts a run (or returns the active one: `isNew` false).
    func start(trigger: String) async throws -> (id: Int64, isNew: Bool) {
        if let id = activeRunID { return (id, false) }
        guard starting.withLock({ flag in defer { flag = true }; return !flag }) else {
            throw HubError(code: .overloaded, message: "a reconciliation is being started; retry")
        }
        defer { starting.withLock { $0 = false } }
        if let id = activeRunID { return (id, false) }
        let id = try await pool.withConnection { connection in
            try connection.query(
                "INSERT INTO starling_hub.reconcile_runs (trigger, status) VALUES ($1, 'running') RETURNING id",
                [.text(trigger)], name: "reconcile.start")[0].int64(0)
        }
        let tables = settings.tables.map(\.name)
        var regions: [String: RegionProgress] = [:]
        for region in settings.regions { regions[region.name] = RegionProgress(tables: tables) }
        state.withLock { $0 = Run(id: id, startedNanos: clock.monotonicNanos(), regions: regions) }
        logger.info("reconciliation started", metadata: ["reconcile.run": "\(id)", "reconcile.trigger": "\(trigger)"])
        try await finishIfComplete()
        return (id, true)
    }

    /// The current task of `region`, nil when there is none.
    func task(region: String) -> ReconcileTask? {
        state.withLock { run in
            guard var current = run, var progress = current.regions[region], !progress.isDone else { return nil }
            if progress.table == nil {
                let task = ReconcileTask(
                    run: current.id, table: progress.tables[progress.index], step: current.nextStep,
                    bits: ReconcileBuckets.firstBits, withinBits: 0, within: [], listsKeys: false)
                current.nextStep += 1
                progress.table = TableProgress(task: task, startedNanos: clock.monotonicNanos())
                current.regions[region] = progress
                run = current
            }
            return progress.table?.task
        }
    }

    /// Takes `region`'s answer to its current task; returns its next task.
    func answer(region: String, _ answer: ReconcileAnswer) async throws -> ReconcileTask? {
        let task: ReconcileTask = try state.withLock { run throws(HTTPError) in
            guard let current = run, current.id == answer.run, var progress = current.regions[region],
                let table = progress.table, table.task.step == answer.step, table.task.table == answer.table,
                table.task.listsKeys == answer.listsKeys
            else {
                throw HTTPError(409, code: "stale_task", "the answer is not for this region's current reconcile task")
            }
            guard !progress.isBusy else {
                throw HTTPError(409, code: "stale_task", "an answer for this task is being processed")
            }
            progress.isBusy = true
            run?.regions[region] = progress
            return table.task
        }
        do {
            let next = try await process(region: region, task: task, answer: answer)
            try await finishIfComplete()
            return next
        } catch {
            state.withLock { run in run?.regions[region]?.isBusy = false }
            throw error
        }
    }

    /// Compares one answer with the hub's side and moves the region's table on.
    private func process(region: String, task: ReconcileTask, answer: ReconcileAnswer) async throws -> ReconcileTask? {
        guard var progress = state.withLock({ $0?.regions[region]?.table }) else { return nil }
        if task.listsKeys {
            let heads = try await headHashes(task)
            let comparison = ReconcileBuckets.compareKeys(
                region: answer.keys, pending: Set(answer.pending), cursor: answer.cursor, heads: heads.hashes)
            progress.differing += comparison.differing
            progress.skipped += comparison.skipped
            progress.repaired += try await repair(region: region, task: task, comparison, canonical: heads.canonical)
        } else {
            let hub = try await summaries(task)
            if task.withinBits == 0 {
                progress.compared = max(answer.buckets.reduce(0) { $0 + $1.count }, hub.reduce(0) { $0 + $1.count })
            }
            switch ReconcileBuckets.plan(
                bits: task.bits, region: answer.buckets, hub: hub, maxKeyRows: settings.reconcile.maxKeyRows)
            {
            case .done: break
            case .refine(let bits, let within):
                return advance(region: region, progress: progress) { step in
                    ReconcileTask(
                        run: task.run, table: task.table, step: step, bits: bits, withinBits: task.bits, within: within,
                        listsKeys: false)
                }
            case .keys(let bits, let chunks):
                progress.chunks = chunks
                progress.keyBits = bits
            }
        }
        if !progress.chunks.isEmpty {
            let chunk = progress.chunks.removeFirst()
            let bits = progress.keyBits
            return advance(region: region, progress: progress) { step in
                ReconcileTask(
                    run: task.run, table: task.table, step: step, bits: bits, withinBits: bits, within: chunk,
                    listsKeys: true)
            }
        }
        try await finishTable(region: region, progress: progress, status: "done")
        return self.task(region: region)
    }

    /// Stores `progress` with a new task made by `make(step)`; returns that task.
    private func advance(region: String, progress: TableProgress, _ make: (Int64) -> ReconcileTask) -> ReconcileTask? {
        state.withLock { run in
            guard var current = run, current.regions[region] != nil else { return nil }
            var progress = progress
            progress.task = make(current.nextStep)
            current.nextStep += 1
            current.regions[region]?.table = progress
            current.regions[region]?.isBusy = false
            run = current
            return progress.task
        }
    }
}

// MARK: - Hub-side hashing and repairs

extension Reconciler {
    /// The heads of a table as a ``ReconcileSQL`` source (live rows only).
    static let headSource =
        "(SELECT key::jsonb::text AS k, row::jsonb::text AS r FROM starling_hub.heads "
        + "WHERE table_name = $1 AND row IS NOT NULL)"

    /// The hub's bucket summaries for `task`.
    func summaries(_ task: ReconcileTask) async throws -> [ReconcileBuckets.Summary] {
        let sql = ReconcileSQL.summaries(source: Self.headSource, task: task, parameter: "$2::bigint[]")
        var parameters: [PostgresValue] = [.text(task.table)]
        if task.withinBits > 0 { parameters.append(.int64Array(task.within.map { $0 })) }
        let bound = parameters
        return try await pool.withConnection { connection in
            try connection.query(sql, bound, name: "reconcile.summaries").map { row in
                ReconcileBuckets.Summary(
                    bucket: try row.int64(0), count: try row.int64(1), sumHigh: try row.int64(2), sumLow: try row.int64(3))
            }
        }
    }

    /// The hub's heads (tombstones too) in the task's buckets, and the stored key text of each.
    /// Each head counts as no older than the table's last schema change (its image was rewritten to that shape
    /// then): a region that has not applied the change yet still has the old shape, and its keys are skipped, not
    /// repaired.
    func headHashes(_ task: ReconcileTask) async throws -> (hashes: [ReconcileBuckets.HeadHash], canonical: [String: String]) {
        let sql = """
            SELECT s.k, s.key, CASE WHEN s.row IS NULL THEN NULL ELSE md5(s.k || s.row::jsonb::text) END,
                   greatest(s.seq, (SELECT coalesce(max(c.seq), 0) FROM starling_hub.schema_changes c
                                    WHERE c.table_name = $1))
            FROM (SELECT key::jsonb::text AS k, key, row, seq FROM starling_hub.heads WHERE table_name = $1) s
            \(ReconcileSQL.bucketFilter(task, parameter: "$2::bigint[]"))
            """
        let within = task.within
        return try await pool.withConnection { connection in
            var hashes: [ReconcileBuckets.HeadHash] = []
            var canonical: [String: String] = [:]
            for row in try connection.query(sql, [.text(task.table), .int64Array(within.map { $0 })], name: "reconcile.heads") {
                let key = try row.string(0)
                hashes.append(.init(key: key, hash: try row.optionalString(2), seq: try row.int64(3)))
                canonical[key] = try row.string(1)
            }
            return (hashes, canonical)
        }
    }

    /// Queues the repairs of `comparison` through the sequencer, in chunks; returns how many were written.
    func repair(
        region: String, task: ReconcileTask, _ comparison: ReconcileBuckets.KeyComparison, canonical: [String: String]
    ) async throws -> Int {
        var keys: [String] = []
        for differing in comparison.differing {
            if let stored = canonical[differing.key] {
                keys.append(stored)
            } else if let object = try? JSONValue(parsing: Array(differing.key.utf8)).objectValue {
                keys.append(HubJSON.text(object))
            }
        }
        var repaired = 0
        var start = 0
        while start < keys.count {
            let chunk = Array(keys[start..<min(keys.count, start + 5000)])
            repaired += try await sequencer.repair(
                RepairRequest(run: task.run, region: region, table: task.table, keys: chunk)
            ).count
            start += chunk.count
        }
        if repaired > 0 {
            logger.warning(
                "reconciliation repaired rows",
                metadata: ["region": "\(region)", "table": "\(task.table)", "reconcile.repaired": "\(repaired)"])
        }
        return repaired
    }
}
