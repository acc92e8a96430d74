public import Logging

/// One schema migration: version `NNNN`, a name, and SQL text (may hold several statements; no BEGIN/COMMIT).
public struct PostgresMigration: Sendable, Hashable {
    public var version: Int
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// A migration embedded in the binary (a SwiftPM resource): `file` is its `NNNN_name.sql` name and `bytes` its
    /// UTF-8 text. The name is a constant of the program, not input: a badly named one is a programmer error.
    public init(embeddedFile file: String, _ bytes: [UInt8]) {
        guard let (version, name) = PostgresMigrator.parseFileName(file) else {
            preconditionFailure("embedded migration \(file) is not named NNNN_name.sql")
        }
        self.init(version: version, name: name, sql: String(decoding: bytes, as: UTF8.self))
    }

    /// `0003_add_heads`, as in the file name.
    public var label: String {
        let digits = String(version)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits + "_" + name
    }
}

/// Applies numbered migrations to a schema, recording each in `<schema>.schema_migrations`.
///
/// Each migration runs in its own transaction together with the row that records it, so a crash leaves
/// every migration either fully applied and recorded or not at all. Every transaction first takes a
/// transaction-scoped advisory lock keyed on the schema name, so several processes starting at once apply
/// each migration exactly once (the others wait, then see it recorded). A database whose recorded version is
/// newer than the newest migration known here is refused with `schemaTooNew`: this binary is older than the
/// schema and must not write to it. Re-running is a no-op.
public struct PostgresMigrator: Sendable {
    /// The schema that holds `schema_migrations` (`starling_hub` for the hub, `starling` for agents).
    public let schema: String
    /// The known migrations, ascending by version.
    public let migrations: [PostgresMigration]
    private let logger: Logger

    /// The advisory lock class ID (`'ST'`) paired with `hashtext(schema)`.
    static let lockClass: Int32 = 0x5354

    /// Validates and sorts `migrations`: versions must be positive and unique.
    public init(schema: String, migrations: [PostgresMigration], logger: Logger = PostgresLogging.disabled)
        throws(PostgresError)
    {
        _ = try PostgresIdentifier.quoteName(schema)
        var seen = Set<Int>()
        for migration in migrations {
            guard migration.version > 0 else {
                throw PostgresError(
                    code: .migrationFailed, message: "migration \(migration.label): version must be > 0")
            }
            guard seen.insert(migration.version).inserted else {
                throw PostgresError(
                    code: .migrationFailed,
                    message: "two migrations have version \(migration.version) in schema \(schema)")
            }
        }
        self.schema = schema
        self.migrations = migrations.sorted { $0.version < $1.version }
        self.logger = logger
    }

    /// Loads `NNNN_name.sql` files from `directory` (see `loadMigrations(directory:)`).
    public init(schema: String, directory: String, logger: Logger = PostgresLogging.disabled) throws(PostgresError) {
        try self.init(schema: schema, migrations: Self.loadMigrations(directory: directory), logger: logger)
    }

    /// The newest version known to this binary (0 when there are no migrations).
    public var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Brings the database up to `latestVersion`; returns the versions applied by this call (empty when the
    /// database was already current). Throws `schemaTooNew` or `migrationFailed`.
    @discardableResult
    public func migrate(_ connection: PostgresConnection) throws(PostgresError) -> [Int] {
        let table = try migrationsTable()
        try inTransaction(connection, name: "migrations.bootstrap") { (connection) throws(PostgresError) in
            try lock(connection)
            try connection.executeScript("CREATE SCHEMA IF NOT EXISTS \(try PostgresIdentifier.quoteName(schema))")
            try connection.executeScript(
                """
                CREATE TABLE IF NOT EXISTS \(table) (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """)
            _ = try checkedAppliedVersions(connection, table: table)
        }
        var applied: [Int] = []
        for migration in migrations {
            let didApply = try inTransaction(connection, name: migration.label) {
                (connection) throws(PostgresError) -> Bool in
                try lock(connection)
                guard !(try checkedAppliedVersions(connection, table: table)).contains(migration.version) else {
                    return false
                }
                try apply(migration, connection, table: table)
                return true
            }
            if didApply {
                logger.debug("applied migration", metadata: [PostgresLogKey.migration: "\(schema)/\(migration.label)"])
                applied.append(migration.version)
            }
        }
        return applied
    }

    /// The highest recorded version, 0 when none (or when the table does not exist yet).
    public func currentVersion(_ connection: PostgresConnection) throws(PostgresError) -> Int {
        let exists = try connection.query(
            "SELECT to_regclass($1) IS NOT NULL AS present", [.text(try migrationsTable())],
            name: "migrations.exists")
        guard try exists[0].bool("present") else { return 0 }
        let result = try connection.query(
            "SELECT coalesce(max(version), 0)::bigint AS version FROM \(try migrationsTable())",
            name: "migrations.current")
        return Int(try result[0].int64("version"))
    }

    private func migrationsTable() throws(PostgresError) -> String {
        try PostgresIdentifier.quoteName(schema) + "." + PostgresIdentifier.quoteName("schema_migrations")
    }

    private func lock(_ connection: PostgresConnection) throws(PostgresError) {
        try connection.query(
            "SELECT pg_advisory_xact_lock($1, hashtext($2))", [.int32(Self.lockClass), .text(schema)],
            name: "migrations.lock")
    }

    /// The recorded versions; throws `schemaTooNew` when one is newer than `latestVersion`.
    private func checkedAppliedVersions(_ connection: PostgresConnection, table: String) throws(PostgresError)
        -> Set<Int>
    {
        let result = try connection.query("SELECT version::bigint AS version FROM \(table)", name: "migrations.list")
        var versions = Set<Int>()
        for row in result { versions.insert(Int(try row.int64("version"))) }
        if let newest = versions.max(), newest > latestVersion {
            throw PostgresError(
                code: .schemaTooNew,
                message: "database schema \(schema) is at version \(newest), but this starling binary only knows "
                    + "migrations up to version \(latestVersion): refusing to run an older binary against a newer "
                    + "schema; upgrade starling")
        }
        return versions
    }

    private func apply(_ migration: PostgresMigration, _ connection: PostgresConnection, table: String)
        throws(PostgresError)
    {
        do {
            try connection.executeScript(migration.sql, name: migration.label)
        } catch {
            var failure = error
            failure.code = .migrationFailed
            failure.message = "migration \(schema)/\(migration.label) failed: \(error.message)"
            throw failure
        }
        try connection.query(
            "INSERT INTO \(table) (version, name) VALUES ($1, $2)",
            [.int(migration.version), .text(migration.name)], name: "migrations.record")
    }

    /// `connection.transaction` with errors kept as `PostgresError`.
    private func inTransaction<T>(
        _ connection: PostgresConnection, name: String,
        _ body: (PostgresConnection) throws(PostgresError) -> T
    ) throws(PostgresError) -> T {
        do {
            return try connection.transaction(name: name) { connection in try body(connection) }
        } catch let error as PostgresError {
            throw error
        } catch {
            throw PostgresError(code: .migrationFailed, message: "\(error)", queryName: name)
        }
    }
}
