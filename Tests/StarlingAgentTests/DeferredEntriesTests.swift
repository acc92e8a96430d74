import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Entries skipped because a local change of their key waits for its verdict are deferred, not dropped: the
/// transaction handling the key's last verdict applies them, so an entry newer than that verdict survives a
/// push and an apply that overlap (engine v2's pipelined loop).
@Suite("Deferred entries")
struct DeferredEntriesTests {
    static let items = "CREATE TABLE items (id integer PRIMARY KEY, qty integer, name text)"

    static func entry(_ seq: Int64, key: Int64, qty: Int64, origin: String = "us") -> LogEntry {
        LogEntry(
            seq: seq, origin: origin, id: "\(origin):\(seq)", tx: "\(origin):tx\(seq)", table: "public.items",
            op: .update, key: ["id": .integer(key)], row: ["id": .integer(key), "qty": .integer(qty), "name": "x"],
            hlc: 1000 + seq, kind: .change, rewritten: false)
    }

    @Test("an entry newer than a pending verdict is applied when the verdict is handled")
    func newerEntryAppliedAfterVerdict() async throws {
        // Proves: the local change is accepted at seq 5, another region's change at seq 6 (which saw 5) is
        // pulled and applied before the verdict is handled: it is deferred, and handling the verdict applies
        // it (row and version 6). Dropping it, as a plain pending skip did, left the region at 5 for good.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.items, tables: ["public.items"])
            let store = AgentStore(region: "eu")
            try connection.execute("INSERT INTO items VALUES (1, 1, 'local')")
            let changes = try store.prepare(try AgentTestSupport.outbox(connection), connection: connection)
            let applied = try store.apply([Self.entry(6, key: 1, qty: 66)], after: 0, next: 6, connection: connection)
            #expect(applied.skippedPending == 1 && applied.applied == 0)
            #expect(try connection.query("SELECT count(*) FROM starling.deferred_entries")[0].int64(0) == 1)
            let summary = try store.handleVerdicts(
                [Verdict(id: changes[0].id, outcome: .accepted(seq: 5))], for: changes, connection: connection)
            #expect(summary.accepted == 1 && summary.deferredApplied == 1)
            #expect(try connection.query("SELECT qty FROM items WHERE id = 1")[0].int64("qty") == 66)
            #expect(try connection.query("SELECT seq FROM starling.versions")[0].int64("seq") == 6)
            #expect(try connection.query("SELECT count(*) FROM starling.deferred_entries")[0].int64(0) == 0)
        }
    }

    @Test("a deferred entry older than the verdict is skipped by version, and one stays while a change waits")
    func olderEntrySkippedAndLaterChangeKeepsIt() async throws {
        // Proves: with two local changes of the key, handling the first verdict keeps the deferred entries
        // (the second change still waits); handling the second applies none older than its seq 9, and the
        // row keeps the local image.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.items, tables: ["public.items"])
            let store = AgentStore(region: "eu")
            try connection.execute("INSERT INTO items VALUES (1, 1, 'local')")
            try connection.execute("UPDATE items SET qty = 2 WHERE id = 1")
            let changes = try store.prepare(try AgentTestSupport.outbox(connection), connection: connection)
            #expect(changes.count == 2)
            let applied = try store.apply(
                [Self.entry(4, key: 1, qty: 44), Self.entry(7, key: 1, qty: 77)], after: 0, next: 7,
                connection: connection)
            #expect(applied.skippedPending == 2)
            let first = try store.handleVerdicts(
                [Verdict(id: changes[0].id, outcome: .accepted(seq: 5))], for: [changes[0]], connection: connection)
            #expect(first.deferredApplied == 0)
            #expect(try connection.query("SELECT count(*) FROM starling.deferred_entries")[0].int64(0) == 2)
            let second = try store.handleVerdicts(
                [Verdict(id: changes[1].id, outcome: .accepted(seq: 9))], for: [changes[1]], connection: connection)
            #expect(second.deferredApplied == 0)
            #expect(try connection.query("SELECT qty FROM items WHERE id = 1")[0].int64("qty") == 2)
            #expect(try connection.query("SELECT seq FROM starling.versions")[0].int64("seq") == 9)
            #expect(try connection.query("SELECT count(*) FROM starling.deferred_entries")[0].int64(0) == 0)
        }
    }
}
