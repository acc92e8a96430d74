import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

@Suite("Apply engine and verdicts")
struct ApplyTests {
    static let items = "CREATE TABLE items (id integer PRIMARY KEY, qty integer, name text UNIQUE)"

    static func entry(
        _ seq: Int64, origin: String = "us", tx: String? = nil, key: Int64, row: JSONObject?,
        rewritten: Bool = false
    ) -> LogEntry {
        LogEntry(
            seq: seq, origin: origin, id: "\(origin):\(seq)", tx: tx ?? "\(origin):tx\(seq)", table: "public.items",
            op: row == nil ? .delete : .update, key: ["id": .integer(key)], row: row, hlc: 1000 + seq, kind: .change,
            rewritten: rewritten)
    }

    @Test("capture in one region, apply in another: rows are identical for every type")
    func typeFidelityRoundTrip() async throws {
        // Proves: images captured in DB A and applied in DB B reproduce every row exactly (md5 of row text).
        // (A `json` column keeps its value; its text comes back in jsonb's spacing, which the edge row uses.)
        try await TestDatabase.with { a in
            try await TestDatabase.with { b in
                let source = try AgentTestSupport.region(a, ddl: CaptureTests.allTypes, tables: ["public.everything"])
                let target = try AgentTestSupport.region(b, ddl: CaptureTests.allTypes, tables: ["public.everything"])
                try source.execute(CaptureTests.edgeRow)
                try source.execute("INSERT INTO everything (id) VALUES (1)")
                try source.execute(
                    """
                    INSERT INTO everything (id, exact, single, double, at_tz, blob, doc, texts) VALUES
                    (2, -0.000000000000000000000000000001, 3.4028235e38, 2.2250738585072014e-308,
                     'infinity', '\\x', '[]', '{}')
                    """)
                try source.execute("UPDATE everything SET label = 'changed' WHERE id = 1")
                let rows = try AgentTestSupport.outbox(source)
                let entries = AgentTestSupport.entries(rows, origin: "a", firstSeq: 1)
                let summary = try AgentStore(region: "b").apply(
                    entries, after: 0, next: Int64(entries.count), connection: target)
                #expect(summary.applied == entries.count && summary.deadLettered == 0)
                let rowText = "SELECT t::text AS row FROM everything t ORDER BY id"
                let sourceRows = try source.query(rowText).map { try $0.string("row") }
                let targetRows = try target.query(rowText).map { try $0.string("row") }
                #expect(sourceRows == targetRows)
                #expect(
                    try AgentTestSupport.fingerprint("everything", orderBy: "id", source)
                        == AgentTestSupport.fingerprint("everything", orderBy: "id", target))
                #expect(try AgentTestSupport.outbox(target).isEmpty)
            }
        }
    }

    @Test("apply skips own entries, older versions and keys with pending local changes")
    func skipRules() async throws {
        // Proves: each skip rule of DESIGN.md "Applying entry e", and that rewritten own entries apply.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.items, tables: ["public.items"])
            let store = AgentStore(region: "eu")
            var summary = try store.apply(
                [Self.entry(1, key: 1, row: ["id": 1, "qty": 1, "name": "a"])], after: 0, next: 1,
                connection: connection)
            #expect(summary.applied == 1)
            // Own, not rewritten: skipped; own rewritten: applied.
            summary = try store.apply(
                [
                    Self.entry(2, origin: "eu", key: 1, row: ["id": 1, "qty": 2, "name": "a"]),
                    Self.entry(3, origin: "eu", key: 2, row: ["id": 2, "qty": 3, "name": "b"], rewritten: true),
                ], after: 1, next: 3, connection: connection)
            #expect(summary.skippedOwn == 1 && summary.applied == 1)
            // A version at least as new: skipped (seq 1 again for key 1, which holds version 1).
            summary = try store.apply(
                [Self.entry(1, key: 1, row: ["id": 1, "qty": 99, "name": "a"])], after: 3, next: 4,
                connection: connection)
            #expect(summary.skippedVersion == 1)
            // A pending local change of the key: skipped, the local write stays.
            try connection.execute("UPDATE items SET qty = 50 WHERE id = 2")
            summary = try store.apply(
                [Self.entry(5, key: 2, row: ["id": 2, "qty": 77, "name": "b"])], after: 4, next: 5,
                connection: connection)
            #expect(summary.skippedPending == 1)
            #expect(try connection.query("SELECT qty FROM items WHERE id = 2")[0].int64("qty") == 50)
            #expect(try connection.query("SELECT qty FROM items WHERE id = 1")[0].int64("qty") == 1)
            // A delete applies.
            summary = try store.apply([Self.entry(6, key: 1, row: nil)], after: 5, next: 6, connection: connection)
            #expect(summary.applied == 1)
            #expect(try connection.query("SELECT count(*) AS n FROM items WHERE id = 1")[0].int64("n") == 0)
        }
    }

    @Test("applying the same batch twice is a no-op the second time")
    func exactlyOnce() async throws {
        // Proves: the cursor check makes a re-applied batch stale, and versions make replays harmless.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.items, tables: ["public.items"])
            let store = AgentStore(region: "eu")
            let batch = [
                Self.entry(1, key: 1, row: ["id": 1, "qty": 1, "name": "a"]),
                Self.entry(2, key: 1, row: ["id": 1, "qty": 2, "name": "a"]),
            ]
            let first = try store.apply(batch, after: 0, next: 2, connection: connection)
            #expect(first.applied == 2)
            let second = try store.apply(batch, after: 0, next: 2, connection: connection)
            #expect(second.isStale && second.applied == 0)
            #expect(try store.state(connection: connection).cursor == 2)
            // Even past the cursor check, versions skip entries already applied.
            let replay = try store.apply(batch, after: 2, next: 2, connection: connection)
            #expect(replay.skippedVersion == 2)
            #expect(try connection.query("SELECT qty FROM items WHERE id = 1")[0].int64("qty") == 2)
        }
    }

    @Test("an entry that clashes on a unique column is dead-lettered and the batch goes on")
    func deadLetter() async throws {
        // Proves: a failing entry rolls back alone, lands in dead_letters, later entries and the cursor commit.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.items, tables: ["public.items"])
            let store = AgentStore(region: "eu")
            let summary = try store.apply(
                [
                    Self.entry(1, key: 1, row: ["id": 1, "qty": 1, "name": "same"]),
                    Self.entry(2, key: 2, row: ["id": 2, "qty": 2, "name": "same"]),
                    Self.entry(3, key: 3, row: ["id": 3, "qty": 3, "name": "other"]),
                ], after: 0, next: 3, connection: connection)
            #expect(summary.applied == 2 && summary.deadLettered == 1)
            #expect(try store.state(connection: connection).cursor == 3)
            let letters = try store.unreportedDeadLetters(limit: 10, connection: connection)
            #expect(letters.count == 1 && letters[0].seq == 2 && letters[0].sqlState == "23505")
            #expect(try LogEntry(json: letters[0].entry).seq == 2)
            try store.markReported(letters.map(\.id), connection: connection)
            #expect(try store.unreportedDeadLetters(limit: 10, connection: connection).isEmpty)
            #expect(try connection.query("SELECT count(*) AS n FROM items")[0].int64("n") == 2)
        }
    }

    @Test("verdicts: accepted records the version, merged and rejected apply the image unless pending")
    func verdicts() async throws {
        // Proves: the verdict rules of DESIGN.md, including the newer-pending-change exception.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.items, tables: ["public.items"])
            let store = AgentStore(region: "eu")
            try connection.execute("INSERT INTO items VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 1, 'c')")
            try connection.execute("UPDATE items SET qty = 2 WHERE id = 3")
            let rows = try AgentTestSupport.outbox(connection)
            let changes = try store.prepare(rows, connection: connection)
            #expect(changes.count == 4)
            let verdicts = [
                Verdict(id: changes[0].id, outcome: .accepted(seq: 10)),
                Verdict(id: changes[1].id, outcome: .merged(seq: 11, row: ["id": 2, "qty": 5, "name": "b"])),
                Verdict(
                    id: changes[2].id,
                    outcome: .rejected(
                        conflict: 1, winner: .init(seq: 12, origin: "us", row: ["id": 3, "qty": 9, "name": "c"]))),
                Verdict(id: changes[3].id, outcome: .accepted(seq: 13)),
            ]
            let summary = try store.handleVerdicts(verdicts, for: changes, connection: connection)
            #expect(summary.accepted == 2 && summary.merged == 1 && summary.rejected == 1)
            // Key 3's rejected image was skipped (its newer change was still pending), then 13 accepted.
            #expect(summary.imagesApplied == 1 && summary.imagesSkipped == 1)
            #expect(try AgentTestSupport.outbox(connection).isEmpty)
            let qty = try connection.query("SELECT id, qty FROM items ORDER BY id").map { try $0.int64("qty") }
            #expect(qty == [1, 5, 2])
            let versions = try connection.query(
                "SELECT (key->>'id')::int AS id, seq FROM starling.versions ORDER BY 1").map { try $0.int64("seq") }
            #expect(versions == [10, 11, 13])
            // Wrong verdicts are refused without touching anything.
            #expect(throws: AgentError.self) {
                try store.handleVerdicts([], for: changes, connection: connection)
            }
        }
    }

    @Test("the HLC is monotonic and survives a restart")
    func hlcAcrossRestart() async throws {
        // Proves: stamps are max(captured, last + 1), persisted, reused on re-push, and larger after reconnect.
        try await TestDatabase.with { database in
            var connection = try AgentTestSupport.region(database, ddl: Self.items, tables: ["public.items"])
            let store = AgentStore(region: "eu")
            try connection.execute("UPDATE starling.state SET last_hlc = 9000000000000000")
            try connection.execute("INSERT INTO items VALUES (1, 1, 'a'), (2, 1, 'b')")
            let first = try store.prepare(AgentTestSupport.outbox(connection), connection: connection)
            #expect(first.map(\.hlc) == [9_000_000_000_000_001, 9_000_000_000_000_002])
            // A re-push reads the same stamps.
            let again = try store.prepare(AgentTestSupport.outbox(connection), connection: connection)
            #expect(again == first)
            connection.close()
            connection = try database.connect()
            try connection.execute("INSERT INTO items VALUES (3, 1, 'c')")
            let rows = try AgentTestSupport.outbox(connection)
            let later = try store.prepare(rows, connection: connection)
            #expect(later.last?.hlc == 9_000_000_000_000_003)
            #expect(try store.state(connection: connection).lastHLC == 9_000_000_000_000_003)
        }
    }

    @Test("outbox batches hold whole transactions within the bounds")
    func batchingKeepsTransactions() async throws {
        // Proves: a count limit never cuts an origin transaction; a transaction larger than the limit goes alone.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.items, tables: ["public.items"])
            let store = AgentStore(region: "eu")
            try connection.executeScript("BEGIN; INSERT INTO items VALUES (1,1,'a'),(2,1,'b'),(3,1,'c'); COMMIT")
            try connection.executeScript("BEGIN; INSERT INTO items VALUES (4,1,'d'),(5,1,'e'); COMMIT")
            let first = try store.nextBatch(connection: connection, maxCount: 2, maxBytes: 1 << 20)
            #expect(first.count == 3 && Set(first.map(\.tx)).count == 1)
            let both = try store.nextBatch(connection: connection, maxCount: 5, maxBytes: 1 << 20)
            #expect(both.count == 5)
            let four = try store.nextBatch(connection: connection, maxCount: 4, maxBytes: 1 << 20)
            #expect(four.count == 3)
        }
    }
}
