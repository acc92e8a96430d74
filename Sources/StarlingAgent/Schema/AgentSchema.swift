public import StarlingCore
public import StarlingPostgres

/// Installs and removes the regional `starling` schema: `Migrations/agent` (embedded, ``AgentMigrations``) through
/// `PostgresMigrator` (schema `starling`), then per synced table the generated capture/apply functions and the capture
/// trigger (``TableSQL``). Installing is idempotent (`CREATE OR REPLACE`, recorded in
/// `starling.synced_tables`) and drops the key-lock trigger and function of earlier versions; tables no
/// longer synced lose their triggers and their local sync state (``TableLifecycle/forget(table:connection:)``). Uninstalling drops the triggers
/// and the schema and never touches user rows. Blocking: runs on the caller's connection thread.
public struct AgentSchema: Sendable {
    /// The schema name (fixed by DESIGN.md).
    public static let schema = "starling"

    /// The migrations to apply: ``AgentMigrations/all`` (embedded in the binary) unless a test passes others.
    public let migrations: [PostgresMigration]

    public init(migrations: [PostgresMigration] = AgentMigrations.all) {
        self.migrations = migrations
    }

    /// Applies the migrations, then installs functions and triggers for exactly `tables`, in one transaction,
    /// recording each table's ``TableSignature``. A bootstrapped table whose recorded signature differs from its
    /// shape now (altered while the agent was down) keeps the functions it has — its stream stays stopped, see
    /// ``ShapeGuard`` — and is returned with the reason; the others are (re)installed.
    ///
    /// Without `captureTriggers` (WAL capture) the capture triggers are dropped and not created.
    @discardableResult
    public func install(tables: [TableShape], captureTriggers: Bool = true, connection: PostgresConnection) throws
        -> ShapeGuard.Drift
    {
        try PostgresMigrator(schema: Self.schema, migrations: migrations).migrate(connection)
        return try connection.transaction(name: "agent.install") { connection in
            try connection.query(
                "SELECT pg_advisory_xact_lock(hashtextextended('starling.install', 0))", name: "agent.install.lock")
            let installed = try connection.query(
                "SELECT table_name, shape, bootstrapped_at IS NOT NULL AS bootstrapped FROM starling.synced_tables",
                name: "agent.install.list")
            let wanted = Set(tables.map(\.name))
            var recorded: [String: TableSignature] = [:]
            for row in installed {
                let table = try row.string("table_name")
                guard wanted.contains(table) else {
                    // The table left the synced set: capture off, its sync state forgotten (TableLifecycle).
                    try removeTable(table, connection: connection)
                    try TableLifecycle.forget(table: table, connection: connection)
                    continue
                }
                // A table not bootstrapped yet syncs nothing yet: it is installed for the shape it has now.
                if try row.bool("bootstrapped"), let text = try row.optionalString("shape") {
                    recorded[table] = try TableSignature(json: try JSONValue(parsing: text), what: table)
                }
            }
            var drift: ShapeGuard.Drift = [:]
            for shape in tables {
                if let signature = recorded[shape.name] {
                    let changes = signature.differences(to: TableSignature(shape))
                    if !changes.isEmpty {
                        drift[shape.name] = ShapeGuard.message(table: shape.name, changes: changes)
                        // Its functions stay those of its recorded shape; one installed by an earlier version
                        // gets the current batch apply as a shim, so its held entries apply once the shape is back.
                        try connection.executeScript(
                            try TableSQL(shape: shape).walRowsShimSQL(), name: "agent.install.walRowsShim")
                        continue
                    }
                }
                try installTable(shape, captureTriggers: captureTriggers, connection: connection)
            }
            return drift
        }
    }

    /// Generates and installs `shape`'s capture and apply functions (and its capture trigger unless
    /// `captureTriggers` is false), and records the table with its signature and the column names in its history;
    /// inside the caller's transaction. Used by install and by a schema change (AgentStore+Schema.swift).
    func installTable(_ shape: TableShape, captureTriggers: Bool, connection: PostgresConnection) throws {
        let sql = try TableSQL(shape: shape)
        // The old trigger goes first: it calls the old function, which the new triggers do not need.
        for statement in try sql.legacyLockSQL() {
            try connection.executeScript(statement, name: "agent.install.dropLegacyLock")
        }
        try connection.executeScript(try sql.captureFunctionSQL(), name: "agent.install.captureFunction")
        try connection.executeScript(try sql.applyFunctionSQL(), name: "agent.install.applyFunction")
        try connection.executeScript(try sql.applyBatchFunctionSQL(), name: "agent.install.applyBatchFunction")
        try connection.executeScript(try sql.applyWALFunctionSQL(), name: "agent.install.applyWALFunction")
        try connection.executeScript(sql.legacyWALBatchFunctionSQL(), name: "agent.install.dropLegacyWALBatch")
        try connection.executeScript(try sql.applyWALRowsFunctionSQL(), name: "agent.install.applyWALRowsFunction")
        try connection.executeScript(try sql.truncateGuardSQL(), name: "agent.install.truncateGuard")
        if captureTriggers {
            for statement in try sql.triggerSQL() {
                try connection.executeScript(statement, name: "agent.install.trigger")
            }
        } else {
            try connection.executeScript(
                "DROP TRIGGER IF EXISTS \(try PostgresIdentifier.quoteName(TableSQL.captureTrigger)) ON \(sql.table)",
                name: "agent.install.dropTrigger")
        }
        try connection.query(
            """
            -- lock_function is kept empty: no key-lock function is installed any more.
            INSERT INTO starling.synced_tables
                (table_name, relation_oid, capture_function, lock_function, apply_function, shape, column_history)
            VALUES ($1, to_regclass($2)::oid, $3, $4, $5, $6, jsonb_build_array($7::jsonb))
            ON CONFLICT (table_name) DO UPDATE SET relation_oid = EXCLUDED.relation_oid,
                capture_function = EXCLUDED.capture_function, lock_function = EXCLUDED.lock_function,
                apply_function = EXCLUDED.apply_function, shape = EXCLUDED.shape, installed_at = now(),
                column_history = CASE WHEN starling.synced_tables.column_history @> jsonb_build_array($7::jsonb)
                                      THEN starling.synced_tables.column_history
                                      ELSE starling.synced_tables.column_history || jsonb_build_array($7::jsonb) END
            """,
            [
                .text(shape.name), .text(sql.table), .text(sql.captureFunction), .text(""),
                .text(sql.applyFunction), .text(TableSignature(shape).json.canonicalText),
                .text(JSONValue.array(shape.decodedColumnNames.map(JSONValue.string)).canonicalText),
            ], name: "agent.install.record")
    }

    /// The event trigger that announces (WAL capture) or refuses (trigger capture) an `ALTER TABLE` of a synced table
    /// run in this region (`starling.capture_schema_change`, Migrations/agent/0010). Returns false, creating
    /// nothing, when the role may not create event triggers (a superuser's privilege): schema changes made in
    /// the region then stop the changed table's stream (``ShapeGuard``) and must be given to the hub instead.
    ///
    /// With it goes the DDL counter's event trigger (`starling.count_ddl`, Migrations/agent/0012), enabled ALWAYS so
    /// that a session in `session_replication_role = replica` counts too: applies then check the shapes only when
    /// DDL ran (``CatalogCache``).
    public func installSchemaCapture(connection: PostgresConnection) throws -> Bool {
        try connection.transaction(name: "agent.install.schemaCapture") { connection in
            let rows = try connection.query(
                """
                SELECT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = $1) AS present,
                       EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = $2 AND evtenabled = 'A') AS counting,
                       (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) AS allowed
                """, [.text(Self.schemaEventTrigger), .text(Self.ddlCountTrigger)],
                name: "agent.install.schemaCapture.check")
            let (present, counting) = (try rows[0].bool("present"), try rows[0].bool("counting"))
            if present && counting { return true }
            guard try rows[0].bool("allowed") else { return present }
            if !present {
                try connection.executeScript(
                    "CREATE EVENT TRIGGER \(try PostgresIdentifier.quoteName(Self.schemaEventTrigger)) ON ddl_command_end "
                        + "WHEN TAG IN ('ALTER TABLE') EXECUTE FUNCTION starling.capture_schema_change()",
                    name: "agent.install.schemaCapture.create")
            }
            if !counting {
                let name = try PostgresIdentifier.quoteName(Self.ddlCountTrigger)
                try connection.executeScript(
                    """
                    DROP EVENT TRIGGER IF EXISTS \(name);
                    CREATE EVENT TRIGGER \(name) ON ddl_command_end EXECUTE FUNCTION starling.count_ddl();
                    ALTER EVENT TRIGGER \(name) ENABLE ALWAYS
                    """, name: "agent.install.ddlCount.create")
            }
            return true
        }
    }

    /// The event triggers' names (``installSchemaCapture(connection:)``).
    public static let schemaEventTrigger = "starling_schema_change"
    public static let ddlCountTrigger = "starling_ddl_count"

    /// Drops every installed trigger and the `starling` schema (outbox, versions, cursor, dead letters,
    /// functions). User tables and their rows stay. A database without the schema is left as it is.
    public func uninstall(connection: PostgresConnection) throws {
        try connection.transaction(name: "agent.uninstall") { connection in
            let present = try connection.query(
                "SELECT to_regclass('starling.synced_tables') IS NOT NULL AS present", name: "agent.uninstall.check")
            if try present[0].bool("present") {
                let installed = try connection.query(
                    "SELECT table_name FROM starling.synced_tables", name: "agent.uninstall.list")
                for row in installed { try removeTable(try row.string("table_name"), connection: connection) }
            }
            // WAL capture's slot would keep WAL forever once nobody reads it: it goes with the schema.
            let wal = try connection.query(
                "SELECT to_regclass('starling.wal_state') IS NOT NULL AS present", name: "agent.uninstall.walCheck")
            if try wal[0].bool("present") {
                for row in try connection.query("SELECT slot FROM starling.wal_state", name: "agent.uninstall.wal") {
                    try WALSetup.remove(name: try row.string("slot"), connection: connection)
                }
            }
            try connection.executeScript("DROP SCHEMA IF EXISTS starling CASCADE", name: "agent.uninstall.schema")
        }
    }

    /// Drops `table`'s triggers (when the table still exists) and generated functions, and forgets it.
    private func removeTable(_ table: String, connection: PostgresConnection) throws {
        let sql = try TableSQL(shape: TableShape(name: table, columns: [], key: []))
        let exists = try connection.query(
            "SELECT to_regclass($1) IS NOT NULL AS present", [.text(sql.table)], name: "agent.remove.check")
        if try exists[0].bool("present") {
            for trigger in [TableSQL.legacyLockTrigger, TableSQL.captureTrigger, TableSQL.truncateGuard] {
                try connection.executeScript(
                    "DROP TRIGGER IF EXISTS \(try PostgresIdentifier.quoteName(trigger)) ON \(sql.table)",
                    name: "agent.remove.trigger")
            }
        }
        try connection.executeScript(
            "DROP FUNCTION IF EXISTS \(sql.captureFunction)(), \(sql.legacyLockFunction)(), "
                + "\(sql.applyFunction)(jsonb, jsonb, bigint, text), \(sql.applyBatchFunction)(jsonb), "
                + "\(sql.applyWALFunction)(jsonb, jsonb), \(sql.applyWALBatchFunction)(jsonb), "
                + "\(sql.applyWALBatchFunction)(jsonb, jsonb), \(sql.applyWALRowsFunction)(jsonb, jsonb)",
            name: "agent.remove.functions")
        try connection.query(
            "DELETE FROM starling.synced_tables WHERE table_name = $1", [.text(table)], name: "agent.remove.record")
    }
}
