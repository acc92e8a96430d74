public import StarlingCore
public import StarlingPostgres

/// Schema changes from the log (README "Schema changes"): an entry of kind `schema` is applied alone, in its own
/// local transaction at its place in the order (the pull splits a page around it), so every image before it is
/// applied to the old shape and every image after it to the new one.
///
/// In that transaction: the cursor moves past the entry; the table is locked (the `ALTER TABLE` takes an
/// access-exclusive lock); the canonical statements of the change (``TableSQL/schemaStatements(table:actions:)``)
/// run unless the table has the new shape already (the operator ran the same statement here first: a rolling
/// migration); the table's capture and apply functions are generated again for its new shape, its signature and
/// its renamed columns recorded. Under WAL capture the transaction announces the new columns to the decoder
/// (a `starling.schema` message of the agent's own origin). When the statements fail here (or the table has a
/// third shape), nothing of them stays: the entry becomes a dead letter (an open conflict at the hub, with the
/// statement and the error), it waits first among the table's held entries, and the table's stream stops with
/// the reason (`synced_tables.stopped`, ``ShapeGuard``); every later apply tries it again, so once the operator
/// has made it possible the stream resumes where it stopped. The other tables' streams go on.
extension AgentStore {
    /// What applying a schema entry did.
    public enum SchemaOutcome: Sendable, Hashable {
        /// The stored cursor was not the entry's `after`: nothing done.
        case stale
        /// The table is not synced here: only the cursor moved.
        case notSynced
        /// Applied; the table's shape now (`executed` false: it had the shape already).
        case applied(TableShape, executed: Bool)
        /// Not applicable here: dead-lettered, held, the table's stream stopped with this reason.
        case stopped(String)
    }

    /// How a region runs a schema change.
    public struct SchemaApply: Sendable {
        /// Install capture triggers with the new functions (trigger capture, or WAL capture still switching).
        public var captureTriggers: Bool
        /// Announce the new columns to the WAL decoder (WAL capture).
        public var announce: Bool
        /// Tables with a schema change made here that the hub has not answered yet (``CaptureQueue``): a log entry
        /// of one of them that finds a third shape may be the same statement run here ahead of it (a rolling
        /// migration) and waits for the answer, which records it (`made_here_through`), before it becomes a dead
        /// letter.
        public var awaitingAnswer: Set<String>

        public init(captureTriggers: Bool, announce: Bool, awaitingAnswer: Set<String> = []) {
            self.captureTriggers = captureTriggers
            self.announce = announce
            self.awaitingAnswer = awaitingAnswer
        }
    }

    /// The prefix of the logical messages announcing a synced table's columns after a schema change (the event
    /// trigger's for a change made here, the agent's own for one applied from the log).
    public static let schemaMessagePrefix = "starling.schema"

    /// Applies the schema entry `entry` (the page's entries before it are applied) in its own transaction and moves
    /// the cursor from `after` to `entry.seq`.
    public func applySchema(
        _ entry: LogEntry, after: Int64, how: SchemaApply, connection: PostgresConnection
    ) throws -> SchemaOutcome {
        try connection.transaction(name: "agent.schema") { connection in
            let moved = try connection.query(
                """
                UPDATE starling.state SET cursor = $1, last_hlc = greatest(last_hlc, $2), updated_at = now()
                WHERE cursor = $3 RETURNING cursor
                """, [.int64(entry.seq), .int64(entry.hlc), .int64(after)], name: "agent.schema.cursor")
            guard !moved.isEmpty else { return .stale }
            try saveHistory(
                emitting: how.announce ? CaptureLedger.Marker(cursor: entry.seq) : nil, connection: connection)
            let stopped = try connection.query(
                "SELECT stopped FROM starling.synced_tables WHERE table_name = $1 FOR UPDATE", [.text(entry.table)],
                name: "agent.schema.table")
            guard let row = stopped.first else { return .notSynced }
            if let reason = try row.optionalString("stopped") {
                // An earlier schema change of the table waits: this one waits behind it.
                try hold([entry], connection: connection)
                return .stopped(reason)
            }
            return try applySchemaEntry(entry, how: how, connection: connection)
        }
    }

    /// Applies a schema entry inside the caller's transaction (the table row of `starling.synced_tables` locked):
    /// see the type. A failure is rolled back to a savepoint and held, and recorded as a dead letter once (none is
    /// while the table waits for the hub's answer to a change made here, `how.awaitingAnswer`).
    func applySchemaEntry(_ entry: LogEntry, how: SchemaApply, connection: PostgresConnection) throws
        -> SchemaOutcome
    {
        let schema: SchemaEntry
        do {
            schema = try SchemaEntry(entry: entry)
        } catch {
            return try stop(entry, reason: "schema change at seq \(entry.seq) is malformed: \(error.message)", connection: connection)
        }
        let table = entry.table
        if entry.origin == region && !entry.rewritten {
            // Captured here: the table has the shape; its functions were installed with the verdict.
            return .applied(try TableShape.load(table: table, connection: connection), executed: false)
        }
        let madeHere = try connection.query(
            "SELECT made_here_through FROM starling.synced_tables WHERE table_name = $1", [.text(table)],
            name: "agent.schema.madeHere").first?.int64("made_here_through") ?? 0
        if entry.seq <= madeHere {
            // The same statement was run here too and answered with this seq or a later one (a rolling migration): the
            // table went through it, and its functions were installed when the hub answered. Its renames come from
            // this entry (a change the log had already records none from here).
            let shape = try TableShape.load(table: table, connection: connection)
            try recordRenames(schema.change, shape: shape, connection: connection)
            return .applied(shape, executed: false)
        }
        try connection.execute("SET LOCAL starling.schema_apply = 'on'", name: "agent.schema.flag")
        try connection.execute("SAVEPOINT starling_schema", name: "agent.schema.savepoint")
        let executed: Bool
        do {
            // Locked before the table's shape is read: an operator's ALTER of it (the same statement run here by
            // hand) commits before or after this change, never between the read and the statements.
            try connection.execute("SET LOCAL lock_timeout = '\(TableSQL.applyLockTimeout)'")
            try connection.execute("LOCK TABLE \(try PostgresIdentifier.quote(table)) IN ACCESS EXCLUSIVE MODE")
            try connection.execute("SET LOCAL lock_timeout = DEFAULT")
            let installed = try connection.query(
                "SELECT shape FROM starling.synced_tables WHERE table_name = $1", [.text(table)],
                name: "agent.schema.installed")
            let signature = try installed.first.flatMap { try $0.optionalString("shape") }.map { text throws in
                try TableSignature(json: try JSONValue(parsing: text), what: table)
            }
            let local = try TableShape.load(table: table, connection: connection)
            let indexes = schema.change.actions.filter { if case .index = $0 { true } else { false } }
            let columnActions = schema.change.actions.filter { if case .index = $0 { false } else { true } }
            if TableShape.sameColumns(local.columns, schema.shape.columns) {
                executed = false
            } else if signature == nil || signature.map({ $0.differences(to: TableSignature(local)).isEmpty }) == true {
                for statement in try TableSQL.schemaStatements(table: table, actions: columnActions) {
                    try connection.execute(statement, name: "agent.schema.statement")
                }
                executed = true
            } else {
                let now = local.columns.map { "\($0.name) \($0.type)" }.joined(separator: ", ")
                throw AgentError(
                    code: .invalidTable,
                    message: "table \(table) here has columns (\(now)), neither the shape before the change nor after it",
                    key: table)
            }
            for statement in try TableSQL.schemaStatements(table: table, actions: indexes) {
                try Self.checkDroppedIndex(statement, table: table, connection: connection)
                try connection.execute(statement, name: "agent.schema.index")
            }
            let shape = try TableShape.load(table: table, connection: connection)
            guard TableShape.sameColumns(shape.columns, schema.shape.columns) else {
                throw AgentError(
                    code: .invalidTable,
                    message: "after the change, table \(table) here has columns ("
                        + shape.columns.map { "\($0.name) \($0.type)" }.joined(separator: ", ")
                        + "), not version \(schema.version)'s", key: table)
            }
            try AgentSchema().installTable(shape, captureTriggers: how.captureTriggers, connection: connection)
            try recordRenames(schema.change, shape: shape, connection: connection)
            if how.announce { try announce(table: table, connection: connection) }
            try connection.execute("RELEASE SAVEPOINT starling_schema", name: "agent.schema.release")
            return .applied(shape, executed: executed)
        } catch {
            try connection.execute("ROLLBACK TO SAVEPOINT starling_schema", name: "agent.schema.rollback")
            let sqlState = (error as? PostgresError)?.sqlState
            let message = (error as? PostgresError)?.message ?? "\(error)"
            if how.awaitingAnswer.contains(table) {
                return try stop(
                    entry,
                    reason: "table \(table): the schema change at seq \(entry.seq) (version \(schema.version)) finds "
                        + "another shape here (\(message)) while a change of the table made here waits for the hub's "
                        + "answer: the same statement run here ahead of the log (a rolling migration) needs nothing "
                        + "once answered. Its stream waits (pulled entries in starling.held_entries)",
                    connection: connection)
            }
            if try !hasDeadLetter(entry, connection: connection) {
                try recordDeadLetter(
                    entry.json, seq: entry.seq, table: table, sqlState: sqlState,
                    error: "schema change \(schema.change.statement.isEmpty ? "" : "(\(schema.change.statement)) ")"
                        + "could not be applied: \(message)", connection: connection)
            }
            return try stop(
                entry,
                reason: "table \(table): the schema change at seq \(entry.seq) (version \(schema.version)) could not be "
                    + "applied here: \(message). Its stream is stopped (pulled entries wait in starling.held_entries, "
                    + "the change is an open conflict at the hub); make the change possible, or apply it by hand, and "
                    + "the stream resumes at the next apply", connection: connection)
        }
    }

    /// Whether `entry` is a dead letter here already (a schema change tried again): the same seq, table and entry
    /// (after a rewind of the log another change may have the seq).
    private func hasDeadLetter(_ entry: LogEntry, connection: PostgresConnection) throws -> Bool {
        try !connection.query(
            "SELECT 1 FROM starling.dead_letters WHERE seq = $1 AND table_name = $2 AND entry::jsonb = $3::jsonb LIMIT 1",
            [.int64(entry.seq), .text(entry.table), .text(entry.json.canonicalText)], name: "agent.schema.deadLettered"
        ).isEmpty
    }

    /// Holds `entry` and stops its table's stream with `reason`.
    private func stop(_ entry: LogEntry, reason: String, connection: PostgresConnection) throws -> SchemaOutcome {
        try hold([entry], connection: connection)
        try connection.execute(
            "UPDATE starling.synced_tables SET stopped = $2 WHERE table_name = $1", [.text(entry.table), .text(reason)],
            name: "agent.schema.stop")
        return .stopped(reason)
    }

    /// Tries again, inside the caller's transaction, the schema entry each stopped table waits on (the first of its
    /// held entries): applied, it leaves the held entries and the table's stream resumes; failing again, it stays
    /// (one dead letter: recorded the first time it fails with no change of the table made here awaiting the hub).
    func retryStoppedSchemas(how: SchemaApply, connection: PostgresConnection) throws {
        let waiting = try connection.query(
            """
            SELECT h.seq, h.entry FROM starling.synced_tables s
            CROSS JOIN LATERAL (SELECT seq, entry FROM starling.held_entries WHERE table_name = s.table_name
                                AND entry::jsonb ->> 'kind' = 'schema' ORDER BY seq LIMIT 1) h
            WHERE s.stopped IS NOT NULL
            ORDER BY h.seq
            """, name: "agent.schema.waiting")
        guard !waiting.isEmpty else { return }
        // Behind a long application transaction the ALTER gives up (and stays stopped) instead of holding every
        // table's apply behind its lock request.
        try connection.execute("SET LOCAL lock_timeout = '\(TableSQL.applyLockTimeout)'")
        defer { try? connection.execute("SET LOCAL lock_timeout = DEFAULT") }
        for row in waiting {
            let entry = try LogEntry(json: try JSONValue(parsing: try row.string("entry")))
            guard entry.kind == .schema else { continue }
            try connection.execute(
                "DELETE FROM starling.held_entries WHERE seq = $1", [.int64(try row.int64("seq"))],
                name: "agent.schema.unhold")
            try connection.execute(
                "UPDATE starling.synced_tables SET stopped = NULL WHERE table_name = $1", [.text(entry.table)],
                name: "agent.schema.resume")
            _ = try applySchemaEntry(entry, how: how, connection: connection)
        }
    }

    /// A schema change made here was accepted by the hub (a new version, or the one in force): the table's
    /// functions are generated again for its columns now (WAL capture: no capture trigger), its signature and
    /// renames recorded, so the pulled entries held meanwhile (``ShapeGuard``) apply to the new shape. One
    /// transaction. Returns the table's shape.
    /// `seq`: the log's seq of the change (the hub's answer), recorded as made here (Migrations/agent/0014).
    public func acceptedSchema(
        _ change: SchemaChange, seq: Int64? = nil, recordsRenames: Bool, connection: PostgresConnection
    ) throws -> TableShape? {
        try connection.transaction(name: "agent.schema.accepted") { connection in
            let found = try connection.query(
                """
                UPDATE starling.synced_tables SET made_here_through = greatest(made_here_through, coalesce($2, 0))
                WHERE table_name = $1 RETURNING 1
                """, [.text(change.table), seq.map { .int64($0) } ?? .null], name: "agent.schema.acceptedTable")
            guard !found.isEmpty else { return nil }
            let shape = try TableShape.load(table: change.table, connection: connection)
            try AgentSchema().installTable(shape, captureTriggers: false, connection: connection)
            try recordRenames(
                recordsRenames ? change : SchemaChange(table: change.table, actions: [], statement: ""), shape: shape,
                connection: connection)
            return shape
        }
    }

    /// Adds the change's renames to the table's map (an image written before the rename is read with the new
    /// name), following chains (`a → b` then `b → c` makes `a → c`), then drops what no image may be read with:
    /// a name the table has now (renamed back, or added again: its members are the live column's) and a name
    /// mapped to itself.
    private func recordRenames(_ change: SchemaChange, shape: TableShape, connection: PostgresConnection) throws {
        for case .renameColumn(let from, let to) in change.actions {
            try connection.execute(
                """
                UPDATE starling.synced_tables
                SET renamed = (SELECT coalesce(jsonb_object_agg(k, CASE WHEN v = to_jsonb($2::text) THEN to_jsonb($3::text)
                                                                          ELSE v END), '{}')
                               FROM jsonb_each(renamed) AS e(k, v)) || jsonb_build_object($2::text, $3::text)
                WHERE table_name = $1
                """, [.text(change.table), .text(from), .text(to)], name: "agent.schema.renamed")
        }
        try connection.execute(
            """
            UPDATE starling.synced_tables
            SET renamed = (SELECT coalesce(jsonb_object_agg(k, v), '{}') FROM jsonb_each(renamed) AS e(k, v)
                           WHERE k <> ALL($2::text[]) AND v <> to_jsonb(k))
            WHERE table_name = $1 AND renamed <> '{}'
            """, [.text(change.table), .textArray(shape.columns.map(\.name))], name: "agent.schema.renamedLive")
    }

    /// A `DROP INDEX` must drop an index of `table` (or none), never its key's.
    private static func checkDroppedIndex(_ statement: String, table: String, connection: PostgresConnection) throws {
        let prefix = "DROP INDEX IF EXISTS "
        guard statement.hasPrefix(prefix) else { return }
        let name = String(statement.dropFirst(prefix.count))
        let rows = try connection.query(
            """
            SELECT i.indrelid = to_regclass($2) AS own,
                   i.indexrelid = \(TableShape.keyIndexSQL(relation: "to_regclass($2)")) AS key
            FROM pg_index i WHERE i.indexrelid = to_regclass($1)
            """, [.text(name), .text(try PostgresIdentifier.quote(table))], name: "agent.schema.droppedIndex")
        guard let row = rows.first else { return }
        guard try row.bool("own") else {
            throw AgentError(code: .invalidTable, message: "index \(name) is not an index of \(table)", key: table)
        }
        guard try !(row.optionalBool("key") ?? false) else {
            throw AgentError(code: .invalidTable, message: "index \(name) is the key of \(table)", key: table)
        }
    }

    /// The seq of each table's first held entry (tables whose stream is stopped).
    public static func heldFloors(connection: PostgresConnection) throws -> [String: Int64] {
        var floors: [String: Int64] = [:]
        for row in try connection.query(
            "SELECT table_name, min(seq) AS seq FROM starling.held_entries GROUP BY table_name", name: "agent.held.floors")
        {
            floors[try row.string("table_name")] = try row.int64("seq")
        }
        return floors
    }

    /// Tells the WAL decoder the table's columns from here on (a message of the agent's own origin).
    private func announce(table: String, connection: PostgresConnection) throws {
        try connection.query(
            """
            SELECT pg_logical_emit_message(true, $2, json_build_object('table', s.table_name,
                       'columns', starling.table_columns(s.relation_oid))::text)::text AS lsn
            FROM starling.synced_tables s WHERE s.table_name = $1
            """, [.text(table), .text(Self.schemaMessagePrefix)], name: "agent.schema.announce")
    }

}
