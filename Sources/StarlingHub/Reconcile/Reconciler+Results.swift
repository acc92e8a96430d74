import StarlingCore
import StarlingIO
import StarlingPostgres

/// Finishing tables and runs, the run report, metrics and the schedule.
extension Reconciler {
    /// At most this many differing keys are stored and reported per region and table (all are counted).
    static let maxReportedKeys = 100

    /// Records one region's table result, counts it in metrics and moves the region to its next table.
    func finishTable(region: String, progress: TableProgress, status: String) async throws {
        let seconds = Double(clock.monotonicNanos() &- progress.startedNanos) / 1e9
        let keys: [JSONValue] = progress.differing.prefix(Self.maxReportedKeys).map { differing in
            let key = (try? JSONValue(parsing: Array(differing.key.utf8))) ?? .string(differing.key)
            return ["key": key, "difference": .string(differing.difference.rawValue)]
        }
        let task = progress.task
        let values: [PostgresValue] = [
            .int64(task.run), .text(region), .text(task.table), .text(status), .int64(progress.compared),
            .int64(Int64(progress.differing.count)), .int64(Int64(progress.repaired)), .int64(Int64(progress.skipped)),
            .double(seconds), .text(HubJSON.text(JSONValue.array(keys))),
        ]
        _ = try await pool.withConnection { connection in
            try connection.execute(
                "INSERT INTO starling_hub.reconcile_results (run_id, region, table_name, status, rows_compared, "
                    + "rows_differing, rows_repaired, rows_skipped, seconds, differing_keys) "
                    + "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
                values, name: "reconcile.result")
        }
        record(region: region, table: task.table, progress: progress, seconds: seconds)
        state.withLock { run in
            guard run?.id == task.run, var regionProgress = run?.regions[region] else { return }
            regionProgress.table = nil
            regionProgress.index += 1
            regionProgress.isBusy = false
            run?.regions[region] = regionProgress
        }
    }

    /// Ends the run when every region is done: marks it done (or failed when a table timed out).
    func finishIfComplete() async throws {
        let finished: Int64? = state.withLock { run in
            guard let current = run, current.regions.values.allSatisfy(\.isDone) else { return nil }
            run = nil
            return current.id
        }
        guard let id = finished else { return }
        let status = try await pool.withConnection { connection in
            try connection.query(
                """
                UPDATE starling_hub.reconcile_runs SET finished_at = now(), status = CASE WHEN EXISTS (
                    SELECT 1 FROM starling_hub.reconcile_results WHERE run_id = $1 AND status <> 'done')
                    THEN 'failed' ELSE 'done' END,
                    error = CASE WHEN EXISTS (SELECT 1 FROM starling_hub.reconcile_results WHERE run_id = $1
                        AND status <> 'done') THEN 'some regions did not answer in time' END
                WHERE id = $1 RETURNING status
                """, [.int64(id)], name: "reconcile.finish")[0].string(0)
        }
        _ = try await pool.withConnection { connection in
            try connection.execute(
                "INSERT INTO starling_hub.audit (actor, action, target, detail) VALUES ('reconcile', 'reconcile', $1, $2)",
                [.text(String(id)), .text(status)], name: "reconcile.audit")
        }
        metrics.registry.makeCounter(
            descriptor: HubMetrics.name("hub", "reconcile_runs", "total", "Finished reconciliation runs by outcome."),
            labels: [("outcome", status)]
        ).increment()
        logger.info("reconciliation finished", metadata: ["reconcile.run": "\(id)", "reconcile.status": "\(status)"])
    }

    /// Ends the active run's unfinished tables as `timed_out` once it is older than the timeout.
    func expireIfOverdue() async {
        let overdue: [(String, TableProgress)] = state.withLock { run in
            guard let current = run,
                clock.monotonicNanos() &- current.startedNanos > UInt64(settings.reconcile.timeout.components.seconds)
                    * 1_000_000_000
            else { return [] }
            var result: [(String, TableProgress)] = []
            for (region, progress) in current.regions where !progress.isDone {
                for index in progress.index..<progress.tables.count {
                    let task = progress.table?.task.table == progress.tables[index] ? progress.table?.task : nil
                    let placeholder = ReconcileTask(
                        run: current.id, table: progress.tables[index], step: 0, bits: 1, withinBits: 0, within: [],
                        listsKeys: false)
                    var table = TableProgress(task: task ?? placeholder, startedNanos: current.startedNanos)
                    if let partial = progress.table, task != nil { table = partial }
                    result.append((region, table))
                }
            }
            return result
        }
        guard !overdue.isEmpty else { return }
        do {
            for (region, progress) in overdue {
                try await finishTable(region: region, progress: progress, status: "timed_out")
            }
            try await finishIfComplete()
        } catch {
            logger.warning("finishing an overdue reconciliation failed", metadata: ["error": "\(error)"])
        }
    }

    /// Counters per region and table, and the inconsistency ratio of the last run.
    private func record(region: String, table: String, progress: TableProgress, seconds: Double) {
        let labels = [("region", region), ("table", table)]
        let registry = metrics.registry
        registry.makeCounter(
            descriptor: HubMetrics.name("hub", "reconcile_rows_compared", "total", "Rows compared by reconciliation."),
            labels: labels
        ).increment(by: progress.compared)
        registry.makeCounter(
            descriptor: HubMetrics.name(
                "hub", "reconcile_rows_differing", "total", "Rows reconciliation found differing from the hub."),
            labels: labels
        ).increment(by: Int64(progress.differing.count))
        registry.makeCounter(
            descriptor: HubMetrics.name("hub", "reconcile_rows_repaired", "total", "Repair entries reconciliation wrote."),
            labels: labels
        ).increment(by: Int64(progress.repaired))
        registry.makeGauge(
            descriptor: HubMetrics.name(
                "hub", "reconcile_inconsistency", "ratio", "Differing rows / compared rows in the last reconciliation."),
            labels: labels
        ).set(progress.compared > 0 ? Double(progress.differing.count) / Double(progress.compared) : 0)
        registry.makeGauge(
            descriptor: HubMetrics.name("hub", "reconcile_duration", "seconds", "Duration of the last reconciliation."),
            labels: labels
        ).set(seconds)
    }

    /// The run `id` (nil: the newest) as the API's JSON, nil when there is none.
    func report(id: Int64?) async throws -> JSONValue? {
        let rows = try await pool.withConnection { connection in
            let run = try connection.query(
                "SELECT id, trigger, status, to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
                    + "to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
                    + "extract(epoch FROM coalesce(finished_at, now()) - started_at)::float8, error "
                    + "FROM starling_hub.reconcile_runs WHERE ($1::bigint IS NULL OR id = $1) ORDER BY id DESC LIMIT 1",
                [id.map(PostgresValue.int64) ?? .null], name: "reconcile.run")
            guard let head = run.first else { return nil as (PostgresRow, [PostgresRow])? }
            let results = try connection.query(
                "SELECT region, table_name, status, rows_compared, rows_differing, rows_repaired, rows_skipped, seconds, "
                    + "differing_keys FROM starling_hub.reconcile_results WHERE run_id = $1 ORDER BY region, table_name",
                [.int64(try head.int64(0))], name: "reconcile.results")
            return (head, Array(results))
        }
        guard let (run, results) = rows else { return nil }
        var list: [JSONValue] = []
        for row in results {
            list.append([
                "region": .string(try row.string(0)), "table": .string(try row.string(1)),
                "status": .string(try row.string(2)), "rows_compared": .integer(try row.int64(3)),
                "rows_differing": .integer(try row.int64(4)), "rows_repaired": .integer(try row.int64(5)),
                "rows_skipped": .integer(try row.int64(6)), "seconds": .number(HubAPI.decimal(try row.double(7))),
                "differing_keys": (try? JSONValue(parsing: try row.string(8))) ?? .array([]),
            ])
        }
        let runID = try run.int64(0)
        list += pendingResults(runID: runID)
        return [
            "id": .integer(runID), "trigger": .string(try run.string(1)), "status": .string(try run.string(2)),
            "started_at": .string(try run.string(3)),
            "finished_at": try run.optionalString(4).map(JSONValue.string) ?? .null,
            "seconds": .number(HubAPI.decimal(try run.double(5))), "error": try run.optionalString(6).map(JSONValue.string) ?? .null,
            "results": .array(list),
        ]
    }

    /// Tables of the active run `runID` not finished yet (status `running` or `pending`).
    private func pendingResults(runID: Int64) -> [JSONValue] {
        state.withLock { run in
            guard let current = run, current.id == runID else { return [] }
            var list: [JSONValue] = []
            for (region, progress) in current.regions.sorted(by: { $0.key < $1.key }) where !progress.isDone {
                for index in progress.index..<progress.tables.count {
                    let isCurrent = index == progress.index && progress.table != nil
                    list.append([
                        "region": .string(region), "table": .string(progress.tables[index]),
                        "status": .string(isCurrent ? "running" : "pending"),
                    ])
                }
            }
            return list
        }
    }

    /// The schedule: starts a run every `interval` (none when off) and expires overdue runs, until
    /// `isStopped` says so (checked once a second).
    func run(isStopped: @Sendable () -> Bool, isActive: @Sendable () -> Bool) async {
        var last = clock.monotonicNanos()
        while !isStopped() {
            try? await Task.sleep(for: .seconds(1))
            await expireIfOverdue()
            // Only the active hub starts scheduled runs (a standby writes nothing).
            guard isActive(), let interval = settings.reconcile.interval else { continue }
            let every = UInt64(interval.components.seconds) * 1_000_000_000
            if clock.monotonicNanos() &- last >= every {
                last = clock.monotonicNanos()
                do {
                    _ = try await start(trigger: "schedule")
                } catch {
                    logger.warning("scheduled reconciliation failed to start", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
