import Glibc
import StarlingPostgres
import StarlingTestSupport
import Testing

private let sampleMigrations = [
    PostgresMigration(
        version: 2, name: "add_qty",
        sql: """
            ALTER TABLE "app schema".items ADD COLUMN qty int NOT NULL DEFAULT 0;
            CREATE INDEX items_qty ON "app schema".items (qty);
            """),
    PostgresMigration(
        version: 1, name: "init",
        sql: """
            CREATE TABLE "app schema".items (id bigint PRIMARY KEY, name text);
            INSERT INTO "app schema".items VALUES (1, 'seed; with ''quotes''');
            """),
]

@Suite(.timeLimit(.minutes(2)))
struct PostgresMigratorTests {
    /// Proves migrations apply once in version order with their rows recorded, and a re-run changes nothing.
    @Test func migrationsApplyOnceInOrder() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            let migrator = try PostgresMigrator(schema: "app schema", migrations: sampleMigrations)
            #expect(migrator.latestVersion == 2)
            #expect(try migrator.currentVersion(connection) == 0)
            #expect(try migrator.migrate(connection) == [1, 2])
            #expect(try migrator.currentVersion(connection) == 2)
            #expect(try migrator.migrate(connection) == [])
            let recorded = try connection.query(
                """
                SELECT version, name, applied_at IS NOT NULL AS stamped
                FROM "app schema".schema_migrations ORDER BY 1
                """)
            #expect(try recorded.map { try $0.int32("version") } == [1, 2])
            #expect(try recorded.map { try $0.string("name") } == ["init", "add_qty"])
            #expect(try recorded.allSatisfy { try $0.bool("stamped") })
            let item = try connection.query("SELECT name, qty FROM \"app schema\".items")[0]
            #expect(try item.string("name") == "seed; with 'quotes'")
            #expect(try item.int32("qty") == 0)

            let next = try PostgresMigrator(
                schema: "app schema",
                migrations: sampleMigrations + [
                    PostgresMigration(
                        version: 3, name: "more", sql: "ALTER TABLE \"app schema\".items ADD COLUMN x int")
                ])
            #expect(try next.migrate(connection) == [3])
        }
    }

    /// Proves a database with a newer schema than the binary knows is refused with both versions named.
    @Test func newerSchemaIsRefused() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            let migrator = try PostgresMigrator(
                schema: "starling_hub",
                migrations: sampleMigrations.map {
                    PostgresMigration(
                        version: $0.version, name: $0.name,
                        sql: $0.sql.replacingOccurrences("\"app schema\"", "starling_hub"))
                })
            try migrator.migrate(connection)
            try connection.execute("INSERT INTO starling_hub.schema_migrations (version, name) VALUES (7, 'future')")
            let error = #expect(throws: PostgresError.self) { try migrator.migrate(connection) }
            #expect(error?.code == .schemaTooNew)
            #expect(error?.message.contains("version 7") == true)
            #expect(error?.message.contains("version 2") == true)
            #expect(error?.message.contains("starling_hub") == true)
            #expect(!connection.isInTransaction)
        }
    }

    /// Proves a failing migration rolls back completely (its statements and its record) and reports which one.
    @Test func failingMigrationRollsBack() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            let migrator = try PostgresMigrator(
                schema: "app schema",
                migrations: sampleMigrations + [
                    PostgresMigration(
                        version: 3, name: "broken",
                        sql: """
                            CREATE TABLE "app schema".half_done (id int);
                            SELECT * FROM no_such_table;
                            """)
                ])
            let error = #expect(throws: PostgresError.self) { try migrator.migrate(connection) }
            #expect(error?.code == .migrationFailed)
            #expect(error?.sqlState == PostgresError.SQLState.undefinedTable)
            #expect(error?.message.contains("0003_broken") == true)
            #expect(try migrator.currentVersion(connection) == 2)
            #expect(
                try connection.query("SELECT to_regclass('\"app schema\".half_done') IS NULL AS absent")[0]
                    .bool("absent"))
        }
    }

    /// Proves several processes migrating the same database at once are safe: each migration is applied once.
    @Test func concurrentMigratorsAreSafe() async throws {
        try await TestDatabase.with { db in
            let migrator = try PostgresMigrator(schema: "app schema", migrations: sampleMigrations)
            let workers = (0..<4).map { _ in PostgresWorker(url: db.url) }
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for worker in workers {
                    group.addTask { try await worker.withConnection { try migrator.migrate($0) } }
                }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            #expect(applied.sorted() == [1, 2])
            for worker in workers { await worker.shutdown() }
            let connection = try db.connect()
            #expect(
                try connection.query("SELECT count(*) AS n FROM \"app schema\".schema_migrations")[0].int64("n") == 2)
        }
    }

    /// Proves migrations load from a directory of NNNN_name.sql files and a misnamed .sql file is an error.
    @Test func migrationsLoadFromDirectory() throws {
        var template = Array("/tmp/starling-migrations-XXXXXX".utf8CString)
        let directory = try #require(
            template.withUnsafeMutableBufferPointer { buffer in
                buffer.baseAddress.flatMap { mkdtemp($0) }
            }
            .map { String(cString: $0) })
        defer { removeTree(directory) }
        try writeFile(directory + "/0002_second.sql", "SELECT 2;")
        try writeFile(directory + "/0001_first.sql", "SELECT 1;")
        try writeFile(directory + "/README.md", "not a migration")
        let migrations = try PostgresMigrator.loadMigrations(directory: directory)
        #expect(
            migrations == [
                PostgresMigration(version: 1, name: "first", sql: "SELECT 1;"),
                PostgresMigration(version: 2, name: "second", sql: "SELECT 2;"),
            ])
        try writeFile(directory + "/first.sql", "SELECT 3;")
        let error = #expect(throws: PostgresError.self) { try PostgresMigrator.loadMigrations(directory: directory) }
        #expect(error?.message.contains("first.sql") == true)
        let duplicate = #expect(throws: PostgresError.self) {
            try PostgresMigrator(schema: "s", migrations: [migrations[0], migrations[0]])
        }
        #expect(duplicate?.code == .migrationFailed)
    }
}

private func writeFile(_ path: String, _ text: String) throws {
    guard let file = fopen(path, "w") else { throw PostgresError(code: .init("io"), message: "fopen \(path)") }
    defer { fclose(file) }
    _ = fputs(text, file)
}

private func removeTree(_ directory: String) {
    guard let handle = opendir(directory) else { return }
    while let entry = readdir(handle) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { unlink(directory + "/" + name) }
    }
    closedir(handle)
    rmdir(directory)
}

extension String {
    fileprivate func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        var result = ""
        var rest = self[...]
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound] + replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
