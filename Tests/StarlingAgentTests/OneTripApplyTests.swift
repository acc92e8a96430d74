@testable import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// The one-round-trip apply (AgentStore+OneTripApply.swift): once the catalog is read for a page's tables, an apply
/// under WAL capture goes to the database in one pipeline, and every check the full apply makes first is made on the
/// server, where a failing one undoes the whole transaction and the page is applied the full way.
@Suite("One-trip apply", .serialized, .timeLimit(.minutes(2)))
struct OneTripApplyTests {
    static func entry(_ seq: Int64, _ id: Int64, name: String? = nil) -> LogEntry {
        LogEntry(
            seq: seq, origin: "x", id: "x:\(seq)", tx: "x:\(seq)", table: "public.items", op: .insert,
            key: ["id": .integer(id)], row: ["id": .integer(id), "qty": .integer(seq), "name": .string(name ?? "n\(seq)")],
            hlc: 1000 + seq, kind: .change, rewritten: false)
    }

    @Test("a page goes in one trip once the catalog is known; a stale page, DDL and a failing row are refused")
    func refusals() async throws {
        // Proves: the second apply goes in one trip and writes what the full one would (rows, cursor, WAL position,
        // deferred entries); a page applied again is stale; an ALTER the cache has not seen yet is refused on the
        // server (the key after the locks) and the full apply then holds the entry; a row failing in its table's
        // batch is refused too, and the full apply dead-letters that row alone; a table dropped since the catalog was
        // read fails the one trip's lock, and the full apply holds its entry.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: ShapeGuardTests.ddl + "CREATE UNIQUE INDEX items_name ON items (name);",
                tables: ShapeGuardTests.tables)
            defer { connection.close() }
            #expect(try AgentTestSupport.schema().installSchemaCapture(connection: connection))
            try connection.execute("DROP EVENT TRIGGER \(AgentSchema.schemaEventTrigger)")
            let store = AgentStore(region: "r")
            var cursor: Int64 = 0
            func apply(_ entries: [LogEntry], pending: Set<TableKey> = []) throws -> ApplySummary {
                let next = entries.map(\.seq).max() ?? cursor
                let summary = try store.apply(
                    entries, after: cursor, next: next, wal: WALApply(pendingKeys: pending, versions: [:]),
                    connection: connection)
                if !summary.isStale { cursor = next }
                return summary
            }
            func stored() throws -> Int64 { try connection.query("SELECT cursor FROM starling.state")[0].int64(0) }

            let first = try apply([Self.entry(1, 1)])
            #expect(first.applied == 1 && !first.inOneTrip, "the first apply reads the catalog")
            let second = try apply([Self.entry(2, 2), Self.entry(3, 2), Self.entry(4, 3)], pending: [
                TableKey(table: "public.items", key: ["id": .integer(3)])
            ])
            #expect(second.inOneTrip && second.applied == 2 && second.skippedPending == 1)
            #expect(second.position != nil)
            #expect(try stored() == 4)
            #expect(try connection.query("SELECT qty FROM items WHERE id = 2")[0].int64(0) == 3, "the newest image")
            #expect(try connection.query("SELECT count(*) FROM starling.deferred_entries")[0].int64(0) == 1)

            let again = try store.apply(
                [Self.entry(5, 5)], after: 2, next: 5, wal: WALApply(pendingKeys: [], versions: [:]),
                connection: connection)
            #expect(again.isStale && !again.inOneTrip && again.refusedOneTrip)
            #expect(try stored() == 4 && connection.query("SELECT count(*) FROM items WHERE id = 5")[0].int64(0) == 0)

            // The cache still holds the old key: the one trip is tried and refused after the locks.
            try connection.execute("ALTER TABLE items ADD COLUMN note text")
            let altered = try apply([Self.entry(6, 6)])
            #expect(!altered.inOneTrip && altered.refusedOneTrip && altered.held == 1 && altered.stoppedTables.keys.sorted() == ["public.items"])
            try connection.execute("ALTER TABLE items DROP COLUMN note")
            #expect(try apply([Self.entry(7, 7)]).resumed == 1)
            // The resuming apply kept nothing (entries were held when it read): the next one reads the catalog again.
            let reread = try apply([Self.entry(8, 8)])
            #expect(!reread.inOneTrip && !reread.refusedOneTrip)
            #expect(try apply([Self.entry(9, 9)]).inOneTrip)

            // Row 10 takes the name row 1 holds: its batch raises, the one trip is refused, the full apply writes row
            // 11 and dead-letters row 10.
            let clash = try apply([Self.entry(10, 10, name: "n1"), Self.entry(11, 11)])
            #expect(!clash.inOneTrip && clash.refusedOneTrip && clash.applied == 1 && clash.deadLettered == 1)
            #expect(try stored() == 11)
            #expect(try connection.query("SELECT count(*) FROM items WHERE id IN (10, 11)")[0].int64(0) == 1)
            #expect(try apply([Self.entry(12, 12)]).inOneTrip)

            // A table dropped since the catalog was read: its lock fails, and the full apply holds the entry.
            func other(_ seq: Int64) -> LogEntry {
                var entry = Self.entry(seq, seq)
                entry.table = "public.other"
                entry.row = ["id": .integer(seq), "v": .string("v")]
                return entry
            }
            _ = try apply([other(13)])
            #expect(try apply([other(14)]).inOneTrip)
            try connection.execute("DROP TABLE other")
            let dropped = try apply([other(15)])
            #expect(!dropped.inOneTrip && dropped.refusedOneTrip && dropped.held == 1)
            #expect(try dropped.stoppedTables.keys.sorted() == ["public.other"] && stored() == 15)
            #expect(!connection.isInTransaction)
        }
    }
}
