import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

@Suite("Set-wise apply and verdicts")
struct BatchApplyTests {
    static func entry(
        _ seq: Int64, origin: String = "us", key: Int64, row: JSONObject?, rewritten: Bool = false
    ) -> LogEntry {
        ApplyTests.entry(seq, origin: origin, key: key, row: row, rewritten: rewritten)
    }

    /// Rows and versions of `items`, as text: equal means same contents and same sync metadata.
    static func state(_ connection: PostgresConnection) throws -> [String] {
        let rows = try connection.query("SELECT t::text AS x FROM items t ORDER BY id").map { try $0.string("x") }
        let versions = try connection.query(
            "SELECT key::text || ' ' || seq || ' ' || origin AS x FROM starling.versions ORDER BY key"
        ).map { try $0.string("x") }
        return rows + ["--"] + versions
    }

    /// Local rows, versions and a pending change that exercise every skip rule.
    static func prepare(_ connection: PostgresConnection, store: AgentStore) throws {
        // Key 1 holds version 20, key 2 has a pending local change, key 5 exists with version 3.
        _ = try store.apply(
            [
                entry(3, key: 5, row: ["id": 5, "qty": 0, "name": "e"]),
                entry(20, key: 1, row: ["id": 1, "qty": 0, "name": "a"]),
            ], after: 0, next: 20, connection: connection)
        try connection.execute("INSERT INTO items VALUES (2, 0, 'b')")
    }

    /// One batch with every rule: own, own rewritten, older version, pending, a key written twice, an insert
    /// then delete of one key, a delete of an existing row, plain inserts.
    static let mixed: [LogEntry] = [
        entry(21, key: 1, row: ["id": 1, "qty": 9, "name": "a"]),  // version 20 is older: applies
        entry(22, origin: "eu", key: 3, row: ["id": 3, "qty": 1, "name": "c"]),  // own: skipped
        entry(23, origin: "eu", key: 4, row: ["id": 4, "qty": 1, "name": "d"], rewritten: true),  // applies
        entry(24, key: 2, row: ["id": 2, "qty": 7, "name": "b"]),  // pending: skipped
        entry(25, key: 6, row: ["id": 6, "qty": 1, "name": "f"]),
        entry(26, key: 6, row: ["id": 6, "qty": 2, "name": "f"]),  // same key again: the newest wins
        entry(27, key: 7, row: ["id": 7, "qty": 1, "name": "g"]),
        entry(28, key: 7, row: nil),  // inserted then deleted in one batch
        entry(29, key: 5, row: nil),  // deletes an existing row
        entry(30, key: 8, row: ["id": 8, "qty": 1, "name": "h"]),
    ]

    @Test("a mixed batch applied set-wise equals applying its entries one at a time")
    func mixedBatchMatchesOneByOne() async throws {
        // Proves: every skip rule and same-key sequence gives the per-entry outcome (rows, versions, counts).
        try await TestDatabase.with { a in
            try await TestDatabase.with { b in
                let batched = try AgentTestSupport.region(a, ddl: ApplyTests.items, tables: ["public.items"])
                let single = try AgentTestSupport.region(b, ddl: ApplyTests.items, tables: ["public.items"])
                let store = AgentStore(region: "eu")
                try Self.prepare(batched, store: store)
                try Self.prepare(single, store: store)
                // Version 20 for key 1 also skips an older entry inside the batch.
                let entries = [Self.entry(19, key: 1, row: ["id": 1, "qty": 99, "name": "a"])] + Self.mixed
                let summary = try store.apply(entries, after: 20, next: 30, connection: batched)
                #expect(summary.batchFallbacks == 0)
                #expect(summary.skippedOwn == 1 && summary.skippedVersion == 1 && summary.skippedPending == 1)
                #expect(summary.applied == 8 && summary.deadLettered == 0)
                var cursor: Int64 = 20
                var total = ApplySummary()
                for entry in entries {
                    let one = try store.apply([entry], after: cursor, next: entry.seq, connection: single)
                    cursor = entry.seq
                    total.applied += one.applied
                    total.skippedVersion += one.skippedVersion
                    total.skippedPending += one.skippedPending
                }
                #expect(total.applied == summary.applied && total.skippedVersion == summary.skippedVersion)
                #expect(try Self.state(batched) == Self.state(single))
                #expect(try batched.query("SELECT qty FROM items WHERE id = 6")[0].int64("qty") == 2)
                #expect(try batched.query("SELECT count(*) AS n FROM items WHERE id IN (5, 7)")[0].int64("n") == 0)
                #expect(try batched.query("SELECT qty FROM items WHERE id = 2")[0].int64("qty") == 0)
                #expect(try store.state(connection: batched).cursor == 30)
                #expect(try AgentTestSupport.outbox(batched).count == 1)
            }
        }
    }

    @Test("one unique clash in a batch dead-letters only that entry")
    func uniqueClashFallsBack() async throws {
        // Proves: the set-wise statement rolls back alone, the per-entry fallback applies every other entry.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: ApplyTests.items, tables: ["public.items"])
            let store = AgentStore(region: "eu")
            _ = try store.apply([Self.entry(1, key: 1, row: ["id": 1, "qty": 1, "name": "taken"])], after: 0, next: 1,
                connection: connection)
            let summary = try store.apply(
                [
                    Self.entry(2, key: 2, row: ["id": 2, "qty": 1, "name": "x"]),
                    Self.entry(3, key: 3, row: ["id": 3, "qty": 1, "name": "taken"]),
                    Self.entry(4, key: 4, row: ["id": 4, "qty": 1, "name": "y"]),
                    Self.entry(5, key: 1, row: ["id": 1, "qty": 5, "name": "taken"]),
                ], after: 1, next: 5, connection: connection)
            #expect(summary.batchFallbacks == 1)
            #expect(summary.applied == 3 && summary.deadLettered == 1)
            let letters = try store.unreportedDeadLetters(limit: 10, connection: connection)
            #expect(letters.map(\.seq) == [3] && letters.first?.sqlState == "23505")
            let ids = try connection.query("SELECT id FROM items ORDER BY id").map { try $0.int64("id") }
            #expect(ids == [1, 2, 4])
            #expect(try connection.query("SELECT qty FROM items WHERE id = 1")[0].int64("qty") == 5)
            let versions = try connection.query(
                "SELECT seq FROM starling.versions ORDER BY seq").map { try $0.int64("seq") }
            #expect(versions == [2, 4, 5])
            #expect(try store.state(connection: connection).cursor == 5)
        }
    }

    @Test("a batch over two tables and an unsynced one applies per table in order")
    func severalTables() async throws {
        // Proves: entries are grouped per table, an entry of a table not installed here (one that joined the hub's
        // set and is not bootstrapped here yet, or left it) is skipped, a later group still applies.
        try await TestDatabase.with { database in
            let ddl = ApplyTests.items + "; CREATE TABLE notes (id integer PRIMARY KEY, body text)"
            let connection = try AgentTestSupport.region(
                database, ddl: ddl, tables: ["public.items", "public.notes"])
            let store = AgentStore(region: "eu")
            func note(_ seq: Int64, _ table: String) -> LogEntry {
                LogEntry(
                    seq: seq, origin: "us", id: "us:\(seq)", tx: "us:1", table: table, op: .insert,
                    key: ["id": .integer(seq)], row: ["id": .integer(seq), "body": "n"], hlc: seq, kind: .change,
                    rewritten: false)
            }
            let summary = try store.apply(
                [
                    Self.entry(1, key: 1, row: ["id": 1, "qty": 1, "name": "a"]), note(2, "public.notes"),
                    note(3, "public.missing"), Self.entry(4, key: 4, row: ["id": 4, "qty": 1, "name": "b"]),
                ], after: 0, next: 4, connection: connection)
            #expect(summary.applied == 3 && summary.deadLettered == 0 && summary.batchFallbacks == 0)
            #expect(try connection.query("SELECT count(*) AS n FROM items")[0].int64("n") == 2)
            #expect(try connection.query("SELECT count(*) AS n FROM notes")[0].int64("n") == 1)
        }
    }

    @Test("verdicts for one key twice in a batch: newest version, images skipped behind later changes")
    func verdictsSameKey() async throws {
        // Proves: accepted versions take the newest per key; an image followed by a change of its key is skipped.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: ApplyTests.items, tables: ["public.items"])
            let store = AgentStore(region: "eu")
            try connection.execute("INSERT INTO items VALUES (1, 1, 'a'), (2, 1, 'b')")
            try connection.execute("UPDATE items SET qty = 2 WHERE id = 1")
            try connection.execute("UPDATE items SET qty = 3 WHERE id = 2")
            let changes = try store.prepare(AgentTestSupport.outbox(connection), connection: connection)
            #expect(changes.count == 4)
            let winner = Verdict.Winner(seq: 12, origin: "us", row: ["id": 2, "qty": 50, "name": "b"])
            let verdicts = [
                Verdict(id: changes[0].id, outcome: .accepted(seq: 10)),
                Verdict(id: changes[1].id, outcome: .rejected(conflict: 1, winner: winner)),
                Verdict(id: changes[2].id, outcome: .accepted(seq: 13)),
                Verdict(id: changes[3].id, outcome: .merged(seq: 14, row: ["id": 2, "qty": 60, "name": "b"])),
            ]
            let summary = try store.handleVerdicts(verdicts, for: changes, connection: connection)
            #expect(summary.accepted == 2 && summary.imagesApplied == 1 && summary.imagesSkipped == 1)
            let qty = try connection.query("SELECT qty FROM items ORDER BY id").map { try $0.int64("qty") }
            #expect(qty == [2, 60])
            let versions = try connection.query(
                "SELECT seq FROM starling.versions ORDER BY seq").map { try $0.int64("seq") }
            #expect(versions == [13, 14])
            #expect(try AgentTestSupport.outbox(connection).isEmpty)
        }
    }
}
