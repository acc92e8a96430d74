public import Logging
public import StarlingCore
public import StarlingPostgres

/// The agent's side of reconciliation: polls the hub for a ``ReconcileTask`` and answers it from
/// the region's database, task after task, until the hub has no more.
///
/// Each answer is computed in one `REPEATABLE READ READ ONLY` transaction, so the rows, the pull cursor and
/// the outbox it reports are one snapshot (the hub skips keys newer than that cursor or pending in that
/// outbox). Rows are hashed with ``ReconcileSQL`` over the same jsonb images the capture trigger builds
/// (``TableSQL/imageExpression(record:)`` under the capture functions' settings), which is what makes them
/// comparable with the hub's heads. It runs on its own database connection, so a long scan never stalls
/// the push/pull loop.
///
/// Threads: ``run(isStopped:)`` is one task of the agent; the database work runs on this type's worker thread.
public final class ReconcileHasher: Sendable {
    private let hub: any HubLink
    private let database: PostgresWorker
    private let pollInterval: Duration
    private let logger: Logger

    /// The worker connects lazily and is shut down when ``run(isStopped:)`` returns.
    public init(configuration: AgentConfiguration, hub: any HubLink, logger: Logger) {
        self.hub = hub
        self.pollInterval = .milliseconds(configuration.tuning.statusIntervalMs)
        self.logger = logger
        self.database = PostgresWorker(
            url: configuration.database, applicationName: "starling-agent-\(configuration.region)-reconcile",
            threadName: "starling-reconcile", logger: logger)
    }

    /// Polls every status interval until `isStopped`; failures are logged and retried at the next poll (the
    /// hub keeps the task until answered or the run times out). The owner calls ``shutdown()`` afterwards.
    public func run(isStopped: @escaping @Sendable () -> Bool) async {
        while !isStopped() {
            var waited = Duration.zero
            while waited < pollInterval && !isStopped() {
                try? await Task.sleep(for: .milliseconds(50))
                waited += .milliseconds(50)
            }
            if isStopped() { break }
            do throws(AgentError) {
                var task = try await hub.reconcileTask()
                while let current = task, !isStopped() {
                    let answer = try await answer(current)
                    task = try await hub.reconcileAnswer(answer)
                }
            } catch {
                logger.debug("reconcile poll failed", metadata: [AgentLogKey.error: "\(error)"])
            }
        }
    }

    /// Closes the database connection and its thread.
    public func shutdown() async {
        await database.shutdown()
    }

    /// Computes the answer to `task` in one snapshot.
    public func answer(_ task: ReconcileTask) async throws(AgentError) -> ReconcileAnswer {
        do {
            return try await database.withConnection { connection in try Self.answer(task, connection: connection) }
        } catch {
            throw AgentError.database(error, during: "reconcile")
        }
    }

    /// The answer to `task` from `connection` (opens and ends its own transaction).
    public static func answer(_ task: ReconcileTask, connection: PostgresConnection) throws -> ReconcileAnswer {
        let sql = try TableSQL(shape: try TableShape.load(table: task.table, connection: connection))
        let source = "(SELECT (\(try sql.keyExpression(record: "t")))::text AS k, "
            + "(\(try sql.imageExpression(record: "t")))::text AS r FROM \(sql.table) t)"
        let within: [PostgresValue] = task.withinBits > 0 ? [.int64Array(task.within.map { $0 })] : []
        return try connection.transaction(isolation: .repeatableRead, name: "agent.reconcile") { connection in
            try connection.executeScript(Self.settings, name: "agent.reconcile.settings")
            let cursor = try connection.query("SELECT cursor FROM starling.state", name: "agent.reconcile.cursor")[0]
                .int64(0)
            var answer = ReconcileAnswer(
                run: task.run, table: task.table, step: task.step, cursor: cursor, listsKeys: task.listsKeys)
            if task.listsKeys {
                let rows = try connection.query(
                    ReconcileSQL.keys(source: source, task: task, parameter: "$1::bigint[]"), within,
                    name: "agent.reconcile.keys")
                answer.keys = try rows.map { row in .init(key: try row.string(0), hash: try row.string(1)) }
                let pendingSource = "(SELECT DISTINCT key::text AS k FROM starling.outbox WHERE table_name = "
                    + TableSQL.literal(task.table) + ")"
                let pending = try connection.query(
                    "SELECT s.k FROM \(pendingSource) s \(ReconcileSQL.bucketFilter(task, parameter: "$1::bigint[]"))",
                    within, name: "agent.reconcile.pending")
                answer.pending = try pending.map { row in try row.string(0) }
            } else {
                let rows = try connection.query(
                    ReconcileSQL.summaries(source: source, task: task, parameter: "$1::bigint[]"), within,
                    name: "agent.reconcile.summaries")
                answer.buckets = try rows.map { row in
                    .init(bucket: try row.int64(0), count: try row.int64(1), sumHigh: try row.int64(2), sumLow: try row.int64(3))
                }
            }
            return answer
        }
    }

    /// The capture functions' settings (``TableSQL/settings``) for this transaction, so images match.
    static let settings = """
        SET TRANSACTION READ ONLY;
        SET LOCAL search_path = pg_catalog, pg_temp;
        SET LOCAL extra_float_digits = 1;
        SET LOCAL bytea_output = 'hex';
        SET LOCAL DateStyle = 'ISO, YMD';
        SET LOCAL IntervalStyle = 'postgres';
        SET LOCAL TimeZone = 'UTC'
        """
}
