import Foundation
import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Synchronization
import Testing

/// The outcome of work run on its own thread, read by polling.
final class Outcome<T: Sendable>: Sendable {
    private let value = Mutex<Result<T, any Error>?>(nil)

    func set(_ result: Result<T, any Error>) { value.withLock { $0 = result } }

    /// The result if the work has finished.
    var result: Result<T, any Error>? { value.withLock { $0 } }

    /// Waits (polling, 30 s deadline) for the result.
    func wait() async throws -> T {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            if let result = value.withLock({ $0 }) { return try result.get() }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw TestTimeout()
    }
}

/// A polled condition that did not come true in time.
struct TestTimeout: Error {}

@Suite("Capture and apply hold no per-key locks")
struct LockFreeTests {
    static let items = ApplyTests.items

    /// Runs `body` with a fresh connection on its own thread: an apply that blocks on a lock must not hold
    /// one of the few Swift concurrency threads.
    static func background<T: Sendable>(
        _ database: TestDatabase, _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) -> Outcome<T> {
        let outcome = Outcome<T>()
        Thread.detachNewThread {
            outcome.set(Result { try body(try database.connect()) })
        }
        return outcome
    }

    /// Runs `body` again (at most three times in all) when it failed because its apply timed out on its lock
    /// (55P03): on a loaded machine the apply's 2 s can pass between the poll seeing it wait and the application's
    /// commit, and then the race the test is about did not happen.
    static func retryingLockTimeout(_ body: () async throws -> Void) async throws {
        for attempt in 1...3 {
            do {
                return try await body()
            } catch where attempt < 3
                && ((error as? PostgresError)?.sqlState ?? (error as? AgentError)?.sqlState) == "55P03"
            {
                continue
            }
        }
    }

    /// Starts `start()` and polls until its session waits on a lock (the apply blocked behind the
    /// application). The apply runs with a 2 s lock_timeout: on a loaded machine the poll may miss the whole
    /// wait, the apply then fails with lock_not_available and is started again, as the agent would retry.
    static func startBlockedApply<T: Sendable>(
        _ connection: PostgresConnection, _ start: () -> Outcome<T>
    ) async throws -> Outcome<T> {
        for _ in 0..<10 {
            let outcome = start()
            let deadline = ContinuousClock.now + .seconds(30)
            polling: while ContinuousClock.now < deadline {
                let waiting = try connection.query(
                    """
                    SELECT count(*) AS n FROM pg_stat_activity
                    WHERE datname = current_database() AND wait_event_type = 'Lock'
                    """)[0].int64("n")
                if waiting > 0 { return outcome }
                if let result = outcome.result {
                    if case .failure(let error) = result,
                       ((error as? PostgresError)?.sqlState ?? (error as? AgentError)?.sqlState) == "55P03" { break polling }
                    return outcome  // finished without waiting: the test's expectations will say what happened
                }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
        throw TestTimeout()
    }

    @Test("an application transaction writing more rows than the lock table holds commits, all captured")
    func largeTransaction() async throws {
        // Proves: the triggers take no lock per row, so a big transaction does not exhaust the lock table
        // (30 000 rows, or three times the server's nominal lock slots when that is more).
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.items, tables: ["public.items"])
            let rows = max(
                30_000,
                3 * (try connection.query(
                    """
                    SELECT current_setting('max_locks_per_transaction')::bigint
                           * (current_setting('max_connections')::bigint
                              + current_setting('max_prepared_transactions')::bigint) AS n
                    """)[0].int64("n")))
            try connection.execute(
                "INSERT INTO items (id, qty, name) SELECT g, g, 'n' || g FROM generate_series(1, $1::bigint) g",
                [.int64(rows)])
            let captured = try connection.query("SELECT count(*) AS n FROM starling.outbox WHERE op = 'insert'")
            #expect(try captured[0].int64("n") == rows)
        }
    }

    @Test("per-entry apply racing an uncommitted application insert keeps the application's row")
    func insertRacePerEntry() async throws {
        // Proves: the apply waits on the app's index entry, then sees its committed outbox row, restores the
        // app's image, records no version and reports pending; the app's change stays in the outbox.
        try await Self.retryingLockTimeout { try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.items, tables: ["public.items"])
            let function = try connection.query("SELECT apply_function FROM starling.synced_tables")[0]
                .string("apply_function")
            let app = try database.connect()
            try app.execute("BEGIN")
            try app.execute("INSERT INTO items VALUES (7, 5, 'app')")
            let apply = try await Self.startBlockedApply(connection) {
                Self.background(database) { connection in
                    try connection.query(
                        "SELECT status FROM \(function)($1::jsonb, $2::jsonb, 100, 'us')",
                        [.text(#"{"id": 7}"#), .text(#"{"id": 7, "qty": 1, "name": "remote"}"#)]
                    )[0].string("status")
                }
            }
            try app.execute("COMMIT")
            #expect(try await apply.wait() == "pending")
            try Self.expectAppWon(connection, key: 7, qty: 5, name: "app")
        } }
    }

    @Test("set-wise apply racing uncommitted application inserts keeps the application's rows")
    func insertRaceBatch() async throws {
        // Proves: the batch function's re-check after its writes restores the app's images (an insert, and an
        // insert then delete), records versions only for the other keys and reports those entries as pending.
        try await Self.retryingLockTimeout { try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.items, tables: ["public.items"])
            let app = try database.connect()
            try app.execute("BEGIN")
            try app.execute("INSERT INTO items VALUES (7, 5, 'app'), (9, 9, 'gone')")
            try app.execute("DELETE FROM items WHERE id = 9")
            let batch = [
                ApplyTests.entry(100, key: 7, row: ["id": 7, "qty": 1, "name": "remote"]),
                ApplyTests.entry(101, key: 8, row: ["id": 8, "qty": 1, "name": "other"]),
                ApplyTests.entry(102, key: 9, row: ["id": 9, "qty": 1, "name": "nine"]),
            ]
            let apply = try await Self.startBlockedApply(connection) {
                Self.background(database) { connection in
                    try AgentStore(region: "eu").apply(batch, after: 0, next: 102, connection: connection)
                }
            }
            try app.execute("COMMIT")
            let summary = try await apply.wait()
            #expect(summary.applied == 1 && summary.skippedPending == 2 && summary.batchFallbacks == 0)
            try Self.expectAppWon(connection, key: 7, qty: 5, name: "app")
            #expect(try connection.query("SELECT count(*) AS n FROM items WHERE id = 9")[0].int64("n") == 0)
            #expect(try connection.query("SELECT qty FROM items WHERE id = 8")[0].int64("qty") == 1)
            let versions = try connection.query("SELECT key::text AS k, seq FROM starling.versions ORDER BY key")
            #expect(try versions.map { "\(try $0.string("k")) \(try $0.int64("seq"))" } == [#"{"id": 8} 101"#])
        } }
    }

    @Test("the WAL apply locks rows in key order: an application locking sorted keys never deadlocks with it")
    func walApplyKeyOrder() async throws {
        // Proves: a batch whose seq order is key 3 then key 2, applied while the application holds key 2, waits on
        // key 2 without having locked key 3, so the application's next update of key 3 goes through. In seq order
        // the apply held key 3: the application (checking for deadlocks first, after 10 ms) was the victim.
        try await Self.retryingLockTimeout { try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.items, tables: ["public.items"])
            try connection.execute("INSERT INTO items VALUES (2, 0, 'two'), (3, 0, 'three')")
            let app = try database.connect()
            try app.execute("BEGIN")
            try app.execute("SET LOCAL deadlock_timeout = '10ms'")
            try app.execute("UPDATE items SET qty = 1 WHERE id = 2")
            let batch = [
                ApplyTests.entry(100, key: 3, row: ["id": 3, "qty": 5, "name": "three"]),
                ApplyTests.entry(101, key: 2, row: ["id": 2, "qty": 5, "name": "two"]),
            ]
            let apply = try await Self.startBlockedApply(connection) {
                Self.background(database) { connection in
                    try AgentStore(region: "eu").apply(
                        batch, after: 0, next: 101, wal: WALApply(pendingKeys: [], versions: [:]), connection: connection)
                }
            }
            try app.execute("UPDATE items SET qty = 1 WHERE id = 3")
            try app.execute("COMMIT")
            let summary = try await apply.wait()
            #expect(summary.applied == 2)
            let rows = try connection.query("SELECT string_agg(t::text, ' ' ORDER BY id) AS x FROM items t")[0]
            #expect(try rows.string("x") == "(2,5,two) (3,5,three)")
        } }
    }

    @Test("an apply blocked by a long application transaction times out and the batch is not applied")
    func lockTimeout() async throws {
        // Proves: the apply gives up after its lock_timeout (the application keeps its lock and commits),
        // nothing of the batch remains, and a retry after the app's commit sees its pending change.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.items, tables: ["public.items"])
            try connection.transaction { connection in
                try connection.execute("SET LOCAL starling.applying = 'on'")
                try connection.execute("INSERT INTO items VALUES (1, 1, 'a')")
            }
            let app = try database.connect()
            try app.execute("BEGIN")
            try app.execute("UPDATE items SET qty = 2 WHERE id = 1")
            let store = AgentStore(region: "eu")
            let batch = [ApplyTests.entry(5, key: 1, row: ["id": 1, "qty": 9, "name": "a"])]
            #expect(throws: (any Error).self) { try store.apply(batch, after: 0, next: 5, connection: connection) }
            #expect(try store.state(connection: connection).cursor == 0)
            try app.execute("COMMIT")
            let summary = try store.apply(batch, after: 0, next: 5, connection: connection)
            #expect(summary.skippedPending == 1)
            #expect(try connection.query("SELECT qty FROM items WHERE id = 1")[0].int64("qty") == 2)
        }
    }

    /// Key `key` holds the application's image, has no version, and its insert is still in the outbox.
    static func expectAppWon(_ connection: PostgresConnection, key: Int64, qty: Int64, name: String) throws {
        let row = try connection.query("SELECT qty, name FROM items WHERE id = $1", [.int64(key)])
        #expect(row.count == 1)
        #expect(try row.first?.int64("qty") == qty && row.first?.string("name") == name)
        let versions = try connection.query(
            "SELECT count(*) AS n FROM starling.versions WHERE key = jsonb_build_object('id', $1::bigint)",
            [.int64(key)])
        #expect(try versions[0].int64("n") == 0)
        let outbox = try AgentTestSupport.outbox(connection).filter { $0.key == ["id": .integer(key)] }
        #expect(outbox.count == 1 && outbox.first?.op == .insert)
    }
}
