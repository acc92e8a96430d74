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

/// A rejected local change whose key already carries the winner's version must still get the winner's image.
@Suite("Rejected verdicts")
struct RejectedVerdictTests {
    @Test("a rejected insert is replaced by the winner's delete even when the key's version already equals it")
    func winnerAppliedAtEqualVersion() async throws {
        // Proves the end state of a race the fault suite found (seed 4838510339687742738, t_manual k=3): an entry
        // deleting key 1 at seq 6 applies while an application transaction inserts key 1 (the DELETE finds no
        // committed row and does not wait for the uncommitted one), so the region holds the application's row
        // with version 6; that insert, captured with base 0, is rejected with winner seq 6 (a delete). Skipping the
        // winner's image because the version is already 6 kept the rejected row for good.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: DeferredEntriesTests.items, tables: ["public.items"])
            let store = AgentStore(region: "eu")
            try connection.execute("INSERT INTO items VALUES (1, 1, 'local insert')")
            try connection.execute(
                "INSERT INTO starling.versions (table_name, key, seq, origin) VALUES ('public.items', '{\"id\": 1}', 6, 'us')")
            let changes = try store.prepare(try AgentTestSupport.outbox(connection), connection: connection)
            let verdict = Verdict(
                id: changes[0].id,
                outcome: .rejected(conflict: 1, winner: .init(seq: 6, origin: "us", row: nil)))
            let summary = try store.handleVerdicts([verdict], for: changes, connection: connection)
            #expect(summary.rejected == 1 && summary.imagesApplied == 1)
            #expect(try connection.query("SELECT count(*) FROM items")[0].int64(0) == 0)
            #expect(try connection.query("SELECT seq FROM starling.versions")[0].int64("seq") == 6)
        }
    }

    @Test("a rejected change keeps a newer version's row: the winner's image is older than what was applied")
    func newerVersionKept() async throws {
        // Proves the forced image is bounded: with version 9 (an entry newer than the winner applied since), the
        // winner at seq 6 is not written and version 9 stays.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: DeferredEntriesTests.items, tables: ["public.items"])
            let store = AgentStore(region: "eu")
            try connection.execute("INSERT INTO items VALUES (1, 1, 'local')")
            let changes = try store.prepare(try AgentTestSupport.outbox(connection), connection: connection)
            try connection.execute("UPDATE items SET qty = 9, name = 'newer entry' WHERE id = 1")
            try connection.execute("DELETE FROM starling.outbox WHERE id > \(changes[0].id.split(separator: ":")[1])")
            try connection.execute(
                "INSERT INTO starling.versions (table_name, key, seq, origin) VALUES ('public.items', '{\"id\": 1}', 9, 'us')")
            let verdict = Verdict(
                id: changes[0].id,
                outcome: .rejected(conflict: 1, winner: .init(seq: 6, origin: "us", row: ["id": 1, "qty": 6, "name": "w"])))
            _ = try store.handleVerdicts([verdict], for: changes, connection: connection)
            #expect(try connection.query("SELECT name FROM items WHERE id = 1")[0].string("name") == "newer entry")
            #expect(try connection.query("SELECT seq FROM starling.versions")[0].int64("seq") == 9)
        }
    }
}
