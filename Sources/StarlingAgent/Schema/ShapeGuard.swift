public import StarlingCore
public import StarlingPostgres

/// Finds the synced tables whose shape changed since their capture and apply functions were installed
/// (``TableSignature``), in one catalog query, or whose stream a schema change from the log stopped
/// (`synced_tables.stopped`, AgentStore+Schema.swift). A shape changed here without being replicated (a schema
/// change is replicated when given to the hub, or made here under WAL capture with the event trigger) stops the
/// table's stream: its local changes stay in `starling.outbox` (not pushed), pulled entries for it wait
/// in `starling.held_entries` (not applied), and the agent reports why; when the table has its installed
/// shape again (the change reverted), the stream resumes where it stopped. Nothing is lost either way.
///
/// Why checking is enough to be race-free: the push reads its outbox batch *before* checking, and an
/// application write made after an `ALTER TABLE` committed after it (the ALTER holds an access-exclusive lock
/// to its commit), so a batch holding such a write always sees the new shape. The apply takes a
/// row-exclusive lock on the batch's tables before checking, so no ALTER can commit between check and write.
/// Blocking: runs on the caller's connection.
public struct ShapeGuard: Sendable {
    /// A table whose stream is stopped and the sentence saying why.
    public typealias Drift = [String: String]

    public init() {}

    /// The drifted tables among those installed (empty when all agree). A table whose stored signature is
    /// missing (installed by an older agent) is compared with nothing and never drifts.
    /// The query runs as a prepared statement: an apply checks before every batch, and planning this catalog
    /// query cost several times more than running it.
    public func check(connection: PostgresConnection) throws -> Drift {
        try drift(try connection.query(Self.checkSQL, name: "agent.shape.check", prepared: true))
    }

    /// ``check(connection:)`` after `statements` (trusted constant SQL without parameters, say a lock): the
    /// statements and the cache's key in one round trip (one pipeline), the catalog query only when `cache` holds
    /// no result at that key.
    func check(after statements: [String], cache: CatalogCache, connection: PostgresConnection) throws -> Drift {
        let results = try connection.pipeline(
            statements.map { PostgresStatement($0, name: "agent.shape.lock") }
                + [PostgresStatement(CatalogCache.keySQL, name: "agent.shape.key", prepared: true)])
        let key = try results.last?.first?.optionalString("key")
        if let drift = cache.drift(at: key) { return drift }
        let drift = try check(connection: connection)
        cache.keep(drift, at: key)
        return drift
    }

    /// Every installed table's recorded shape, stop reason, presence and catalog columns and key.
    static let checkSQL = """
            SELECT s.table_name, s.shape, s.stopped, c.oid IS NOT NULL AS present,
                (SELECT coalesce(json_agg(json_build_object('name', a.attname::text,
                        'type', format_type(a.atttypid, a.atttypmod), 'generated', a.attgenerated <> '')
                        ORDER BY a.attnum), '[]')
                 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped)::text
                    AS columns,
                (SELECT coalesce(json_agg(a.attname::text ORDER BY k.ordinality), '[]')
                 FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ordinality)
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                 WHERE i.indexrelid = \(TableShape.keyIndexSQL(relation: "c.oid")))::text AS key
            FROM starling.synced_tables s LEFT JOIN pg_class c ON c.oid = s.relation_oid
            WHERE s.shape IS NOT NULL OR s.stopped IS NOT NULL
            """

    private func drift(_ rows: PostgresResult) throws -> Drift {
        var drift: Drift = [:]
        for row in rows {
            if let stopped = try row.optionalString("stopped") { drift[try row.string("table_name")] = stopped }
        }
        for row in rows where try row.optionalString("shape") != nil {
            let table = try row.string("table_name")
            let installed = try TableSignature(json: try JSONValue(parsing: try row.string("shape")), what: table)
            guard try row.bool("present") else {
                drift[table] =
                    "table \(table) was dropped or replaced since its capture was installed: its stream is stopped "
                    + "(local changes wait in starling.outbox, pulled entries in starling.held_entries); create it "
                    + "again with the same columns and restart the agent, which installs its capture anew"
                continue
            }
            let current = try TableSignature(
                json: .object([
                    "columns": try JSONValue(parsing: try row.string("columns")),
                    "key": try JSONValue(parsing: try row.string("key")),
                ]), what: table)
            let changes = installed.differences(to: current)
            if !changes.isEmpty { drift[table] = Self.message(table: table, changes: changes) }
        }
        return drift
    }

    /// The operator's sentence for a drifted table.
    static func message(table: String, changes: [String]) -> String {
        "table \(table) changed shape since its capture was installed (\(changes.joined(separator: "; "))): its "
            + "stream is stopped — local changes wait in starling.outbox and pulled entries in starling.held_entries. "
            + "A schema change made here is replicated only under WAL capture with the event trigger "
            + "\(AgentSchema.schemaEventTrigger); revert it (the stream resumes where it stopped) and give it to the "
            + "hub instead (starling admin ddl), which replicates it to every region"
    }
}
