@testable import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// An agent transaction that writes a table's rows in more than one run locks them in primary-key order first
/// (`starling.lock_rows`, Migrations/agent/0015), so an application transaction updating the same rows in key order
/// never deadlocks with it. Each test holds one row in an application transaction, waits until the agent's
/// transaction waits for it, then updates a row of higher key that the agent's second run writes: with the runs
/// unlocked, the agent held that row already and PostgreSQL aborted one of the two (seen in W3 of the replication
/// benchmark).
@Suite("Agent transactions lock rows in key order", .serialized, .timeLimit(.minutes(2)))
struct LockOrderTests {
    static func update(_ seq: Int64, _ id: Int64, qty: Int64, op: ChangeOperation = .update) -> LogEntry {
        LogEntry(
            seq: seq, origin: "x", id: "x:\(seq)", tx: "x:\(seq)", table: "public.items", op: op,
            key: ["id": .integer(id)],
            row: op == .delete ? nil : ["id": .integer(id), "qty": .integer(qty), "name": .string("n\(id)")],
            hlc: 1000 + seq, kind: .change, rewritten: false)
    }

    /// Holds row 2 in an application transaction, starts `agent` on its own connection, waits until it waits on
    /// a lock, updates row 3 in the application transaction (it must not wait on the agent) and commits; returns
    /// what the agent's work gave.
    static func race<T: Sendable>(
        _ database: TestDatabase, _ agent: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let app = try database.connect()
        defer { app.close() }
        let observer = try database.connect()
        defer { observer.close() }
        try app.execute("BEGIN")
        try app.execute("UPDATE items SET qty = 200 WHERE id = 2")
        let outcome = try await LockFreeTests.startBlockedApply(observer) { LockFreeTests.background(database, agent) }
        // Updating row 3 waits only if the agent holds it: the deadlock detector then aborts one of the two.
        #expect(try app.execute("UPDATE items SET qty = 300 WHERE id = 3") == 1)
        try app.execute("COMMIT")
        return try await outcome.wait()
    }

    @Test("a verdict transaction's images and released deferred entries")
    func verdictRuns() async throws {
        // Proves: the verdicts return images for keys 1 and 3 (one run) and release a deferred entry of key 2
        // (another run); the transaction locks 1, 2, 3 in that order before writing, so it waits on 2 holding only
        // 1, the application's update of 3 goes through, and the verdicts are then handled in full.
        try await LockFreeTests.retryingLockTimeout { try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: DeferredEntriesTests.items, tables: ["public.items"])
            defer { connection.close() }
            let store = AgentStore(region: "eu")
            try connection.execute("INSERT INTO items VALUES (1, 1, 'local'), (2, 2, 'local'), (3, 3, 'local')")
            let changes = try store.prepare(try AgentTestSupport.outbox(connection), connection: connection)
            #expect(changes.count == 3)
            try connection.execute("DELETE FROM starling.outbox")
            let deferred = try store.apply(
                [Self.update(6, 2, qty: 66)], after: 0, next: 6,
                wal: WALApply(pendingKeys: [TableKey(table: "public.items", key: ["id": .integer(2)])], versions: [:]),
                connection: connection)
            #expect(deferred.skippedPending == 1)
            func winner(_ id: Int64, _ qty: Int64) -> Verdict.Winner {
                .init(seq: 4, origin: "us", row: ["id": .integer(id), "qty": .integer(qty), "name": "w"])
            }
            let verdicts = [
                Verdict(id: changes[0].id, outcome: .rejected(conflict: 1, winner: winner(1, 11))),
                Verdict(id: changes[1].id, outcome: .accepted(seq: 5)),
                Verdict(id: changes[2].id, outcome: .rejected(conflict: 2, winner: winner(3, 33))),
            ]
            let summary = try await Self.race(database) { agent in
                defer { agent.close() }
                return try store.handleVerdicts(
                    verdicts, for: changes, wal: WALVerdicts(handledThrough: nil, overwritten: [], stillPending: []),
                    connection: agent)
            }
            #expect(summary.imagesApplied == 2 && summary.deferredApplied == 1)
            let rows = try connection.query("SELECT id, qty FROM items ORDER BY id").map { try $0.int64("qty") }
            #expect(rows == [11, 66, 33])
        } }
    }

    @Test("a page's batch with a delete among upserts", arguments: [false, true])
    func deleteAmongUpserts(oneTrip: Bool) async throws {
        // Proves: the table's batch function deletes (key 3) before it upserts (keys 1 and 2); the apply locks 1, 2, 3
        // first, so it waits on 2 holding only 1 and the application's update of 3 goes through. Both ways: the full
        // apply, and the one trip (a first page read the catalog).
        try await LockFreeTests.retryingLockTimeout { try await TestDatabase.with { database in
            let connection = try OneTripApplyTests.region(database)
            defer { connection.close() }
            let store = AgentStore(region: "r")
            var cursor: Int64 = 0
            if oneTrip {
                _ = try store.apply(
                    [Self.update(1, 9, qty: 9, op: .insert)], after: 0, next: 1,
                    wal: WALApply(pendingKeys: [], versions: [:]), connection: connection)
                cursor = 1
            }
            try connection.execute("INSERT INTO items VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c')")
            let page = [Self.update(10, 1, qty: 10), Self.update(11, 3, qty: 0, op: .delete), Self.update(12, 2, qty: 12)]
            let summary = try await Self.race(database) { [cursor] agent in
                defer { agent.close() }
                return try store.apply(
                    page, after: cursor, next: 12, wal: WALApply(pendingKeys: [], versions: [:]), connection: agent)
            }
            #expect(summary.applied == 3 && summary.inOneTrip == oneTrip)
            let rows = try connection.query("SELECT id, qty FROM items WHERE id <= 3 ORDER BY id").map {
                [try $0.int64("id"), try $0.int64("qty")]
            }
            #expect(rows == [[1, 10], [2, 12]])
        } }
    }

    @Test("a page under trigger capture, whose batch function writes in seq order")
    func triggerCaptureSeqOrder() async throws {
        // Proves: the trigger-capture batch function writes keys 1, 3, 2 in seq order but locks 1, 2, 3 first (its
        // first statement), so it waits on 2 holding only 1 and the application's update of 3 goes through. The
        // application's changes of 2 and 3 are then in the outbox: the apply finds them after its wait and keeps their
        // images (pending).
        try await LockFreeTests.retryingLockTimeout { try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: DeferredEntriesTests.items, tables: ["public.items"])
            defer { connection.close() }
            try connection.execute("INSERT INTO items VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c')")
            try connection.execute("DELETE FROM starling.outbox")
            let page = [Self.update(10, 1, qty: 10), Self.update(11, 3, qty: 11), Self.update(12, 2, qty: 12)]
            let summary = try await Self.race(database) { agent in
                defer { agent.close() }
                return try AgentStore(region: "eu").apply(page, after: 0, next: 12, connection: agent)
            }
            #expect(summary.applied == 1 && summary.skippedPending == 2)
            let rows = try connection.query("SELECT qty FROM items ORDER BY id").map { try $0.int64("qty") }
            #expect(rows == [10, 200, 300])
        } }
    }

    @Test("lock_rows reads the key columns alone, refuses a key that no longer fits, and waits as long as the applies")
    func lockRowsFunction() async throws {
        // Proves: a NOT NULL domain on a column outside the key does not make every call lock nothing (a record of the
        // whole row, populated from key objects, failed on it); a key column renamed since the shape was stored locks
        // nothing (-1); the function's lock timeout is the apply functions' (`TableSQL.applyLockTimeout`).
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database,
                ddl: """
                    CREATE DOMAIN positive_qty AS integer NOT NULL CHECK (VALUE > 0);
                    CREATE TABLE items (id integer PRIMARY KEY, qty positive_qty, name text);
                    """, tables: ["public.items"])
            defer { connection.close() }
            try connection.execute("INSERT INTO items VALUES (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c')")
            func locked() throws -> Int64 {
                try connection.query(
                    "SELECT starling.lock_rows('public.items', '[{\"id\": 1}, {\"id\": 3}, {\"id\": 7}]') AS n")[0]
                    .int64("n")
            }
            #expect(try locked() == 2)
            let settings = try connection.query(
                "SELECT array_to_string(proconfig, ',') AS c FROM pg_proc WHERE proname = 'lock_rows'")[0].string("c")
            #expect(settings.split(separator: ",").contains("lock_timeout=\(TableSQL.applyLockTimeout)"))
            try connection.execute("ALTER TABLE items RENAME COLUMN id TO ident")
            #expect(try locked() == -1)
        }
    }
}

