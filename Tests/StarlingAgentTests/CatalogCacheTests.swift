@testable import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// The catalog cache (CatalogCache.swift): with the DDL counting event trigger, an apply runs the shape check and
/// its cursor statement's catalog reads only when DDL ran or a synced table's row changed since the last ones, and
/// still sees every schema change.
@Suite("Catalog cache", .serialized, .timeLimit(.minutes(2)))
struct CatalogCacheTests {
    static func entry(_ seq: Int64, _ id: Int64) -> LogEntry {
        LogEntry(
            seq: seq, origin: "x", id: "x:\(seq)", tx: "x:\(seq)", table: "public.items", op: .insert,
            key: ["id": .integer(id)], row: ["id": .integer(id), "qty": .integer(seq), "name": .string("n")],
            hlc: 1000 + seq, kind: .change, rewritten: false)
    }

    /// Past the compaction threshold, the events go but the newest, the epoch moves, and the key changes.
    static func compact(_ connection: PostgresConnection) throws {
        let key = { try connection.query(CatalogCache.keySQL)[0].string("key") }
        let before = try key()
        try CatalogCache.compact(connection: connection)
        #expect(try key() == before, "nothing to compact yet")
        try connection.execute("INSERT INTO starling.ddl_events SELECT FROM generate_series(1, $1)", [.int(CatalogCache.compactAbove)])
        let grown = try key()
        try CatalogCache.compact(connection: connection)
        #expect(try generation(connection) == 1)
        #expect(try connection.query("SELECT epoch FROM starling.ddl_epoch")[0].int64(0) == 1)
        #expect(try key() != grown && key() != before)
    }

    static func generation(_ connection: PostgresConnection) throws -> Int64 {
        try connection.query("SELECT count(*) FROM starling.ddl_events")[0].int64(0)
    }

    @Test("an apply checks once until DDL runs; an ALTER after a cached check is seen by the next apply")
    func checksOnlyAfterDDL() async throws {
        // Proves: applies reuse the last check while nothing changed; a temporary table does not count; an ALTER
        // TABLE does (the next apply holds the altered table's entry), and so does its revert (the held entry
        // resumes); a DROP counts; with the counting trigger disabled, every apply checks again.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: ShapeGuardTests.ddl, tables: ShapeGuardTests.tables)
            defer { connection.close() }
            #expect(try AgentTestSupport.schema().installSchemaCapture(connection: connection))
            // Trigger capture refuses an ALTER TABLE of a synced table (the schema trigger): this test alters one.
            try connection.execute("DROP EVENT TRIGGER \(AgentSchema.schemaEventTrigger)")
            let store = AgentStore(region: "r")
            var seq: Int64 = 0
            func apply() throws -> ApplySummary {
                seq += 1
                return try store.apply([Self.entry(seq, seq)], after: seq - 1, next: seq, connection: connection)
            }
            #expect(try apply().applied == 1)
            #expect(try apply().applied == 1)
            #expect(store.catalog.shapeChecks == 1, "the second apply reused the first one's check")
            #expect(store.catalog.applyCatalogReads == 1, "and its cursor statement's catalog reads")
            let before = try Self.generation(connection)
            try connection.execute("CREATE TEMPORARY TABLE scratch (x integer)")
            #expect(try Self.generation(connection) == before, "a temporary table is not counted")
            #expect(try apply().applied == 1)
            #expect(store.catalog.shapeChecks == 1 && store.catalog.applyCatalogReads == 1)

            try connection.execute("ALTER TABLE items ADD COLUMN note text")
            let altered = try apply()
            #expect(altered.held == 1 && altered.stoppedTables.keys.sorted() == ["public.items"])
            #expect(store.catalog.shapeChecks == 2 && store.catalog.applyCatalogReads == 2)
            try connection.execute("ALTER TABLE items DROP COLUMN note")
            let reverted = try apply()
            #expect(reverted.resumed == 1 && reverted.applied == 2 && reverted.stoppedTables.isEmpty)
            #expect(store.catalog.shapeChecks == 3 && store.catalog.applyCatalogReads == 3)
            // A trigger of the application's may write other rows: the apply reads that again too.
            try connection.executeScript(
                """
                CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
                CREATE TRIGGER audit AFTER UPDATE ON items FOR EACH ROW EXECUTE FUNCTION audit()
                """)
            #expect(try apply().applied == 1)
            #expect(store.catalog.applyCatalogReads == 4)

            let created = try Self.generation(connection)
            try connection.execute("CREATE TABLE gone (id integer PRIMARY KEY)")
            try connection.execute("DROP TABLE gone")
            #expect(try Self.generation(connection) == created + 2, "a CREATE and a DROP count")

            // Two DDL transactions in flight at once do not wait for each other on the count (a counter row
            // updated by both made the second wait, and an ALTER by hand and the agent's own deadlock).
            let other = try database.connect()
            defer { other.close() }
            try connection.execute("BEGIN")
            try connection.execute("ALTER TABLE other ADD COLUMN first_one integer")
            try other.execute("SET lock_timeout = '2s'")
            try other.transaction { try $0.execute("CREATE TABLE second_one (id integer PRIMARY KEY)") }
            try connection.execute("COMMIT")
            try connection.execute("ALTER TABLE other DROP COLUMN first_one")
            try Self.compact(connection)

            try connection.execute("ALTER EVENT TRIGGER \(AgentSchema.ddlCountTrigger) DISABLE")
            let (checks, reads) = (store.catalog.shapeChecks, store.catalog.applyCatalogReads)
            _ = try apply()
            _ = try apply()
            #expect(store.catalog.shapeChecks == checks + 2, "without the count every apply checks")
            #expect(store.catalog.applyCatalogReads == reads + 2, "and reads the catalog")
            // DDL while the count is off is not counted; the trigger enabled again is a new key all the same.
            _ = try apply()
            try connection.execute("ALTER EVENT TRIGGER \(AgentSchema.ddlCountTrigger) ENABLE ALWAYS")
            _ = try apply()
            try connection.execute("ALTER EVENT TRIGGER \(AgentSchema.ddlCountTrigger) DISABLE")
            try connection.execute("ALTER TABLE items ADD COLUMN unseen text")
            try connection.execute("ALTER EVENT TRIGGER \(AgentSchema.ddlCountTrigger) ENABLE ALWAYS")
            let unseen = try apply()
            #expect(unseen.held == 1 && unseen.stoppedTables.keys.sorted() == ["public.items"])
        }
    }
}
