@testable import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// The shape check's cache (ShapeCache.swift): with the DDL counting event trigger, an apply runs the catalog check
/// only when DDL ran or a synced table's row changed since the last one, and still sees every schema change.
@Suite("Shape check cache", .serialized, .timeLimit(.minutes(2)))
struct ShapeCacheTests {
    static func entry(_ seq: Int64, _ id: Int64) -> LogEntry {
        LogEntry(
            seq: seq, origin: "x", id: "x:\(seq)", tx: "x:\(seq)", table: "public.items", op: .insert,
            key: ["id": .integer(id)], row: ["id": .integer(id), "qty": .integer(seq), "name": .string("n")],
            hlc: 1000 + seq, kind: .change, rewritten: false)
    }

    static func generation(_ connection: PostgresConnection) throws -> Int64 {
        try connection.query("SELECT generation FROM starling.ddl_generation")[0].int64(0)
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
            #expect(store.shapes.checkCount == 1, "the second apply reused the first one's check")
            let before = try Self.generation(connection)
            try connection.execute("CREATE TEMPORARY TABLE scratch (x integer)")
            #expect(try Self.generation(connection) == before, "a temporary table is not counted")
            #expect(try apply().applied == 1)
            #expect(store.shapes.checkCount == 1)

            try connection.execute("ALTER TABLE items ADD COLUMN note text")
            let altered = try apply()
            #expect(altered.held == 1 && altered.stoppedTables.keys.sorted() == ["public.items"])
            #expect(store.shapes.checkCount == 2)
            try connection.execute("ALTER TABLE items DROP COLUMN note")
            let reverted = try apply()
            #expect(reverted.resumed == 1 && reverted.applied == 2 && reverted.stoppedTables.isEmpty)
            #expect(store.shapes.checkCount == 3)

            let created = try Self.generation(connection)
            try connection.execute("CREATE TABLE gone (id integer PRIMARY KEY)")
            try connection.execute("DROP TABLE gone")
            #expect(try Self.generation(connection) == created + 2, "a CREATE and a DROP count")

            try connection.execute("ALTER EVENT TRIGGER \(AgentSchema.ddlCountTrigger) DISABLE")
            let checks = store.shapes.checkCount
            _ = try apply()
            _ = try apply()
            #expect(store.shapes.checkCount == checks + 2, "without the count every apply checks")
        }
    }
}
