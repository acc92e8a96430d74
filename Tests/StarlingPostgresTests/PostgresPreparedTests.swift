import StarlingPostgres
import StarlingTestSupport
import Testing

/// Statements run with `prepared: true` are prepared once per session and give the same results as unprepared
/// ones, through the cases that break naive statement caches: NULL and typed parameters, failures, rollbacks,
/// schema changes under a kept plan, pipelines, and a session past its cap.
@Suite(.timeLimit(.minutes(2)))
struct PostgresPreparedTests {
    private static func preparedCount(_ connection: PostgresConnection) throws -> Int64 {
        try connection.query("SELECT count(*) AS n FROM pg_prepared_statements")[0].int64("n")
    }

    @Test func aStatementIsPreparedOnceAndRunsByName() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            try connection.executeScript("CREATE TABLE items (id bigint PRIMARY KEY, t text)")
            let insert = "INSERT INTO items (id, t) VALUES ($1, $2) RETURNING id"
            for id in 1...20 {
                let row = try connection.query(insert, [.int64(Int64(id)), .text("t\(id)")], prepared: true)[0]
                #expect(try row.int64("id") == Int64(id))
            }
            #expect(try Self.preparedCount(connection) == 1)
            // A NULL stores a real NULL through the same statement (text and NULL both go untyped).
            try connection.execute(insert, [.int64(21), .null], prepared: true)
            #expect(try Self.preparedCount(connection) == 1)
            // A NULL where a typed value went before needs a statement of its own types.
            let byID = "SELECT count(*) AS n FROM items WHERE id = $1"
            #expect(try connection.query(byID, [.int64(3)], prepared: true)[0].int64("n") == 1)
            #expect(try connection.query(byID, [.null], prepared: true)[0].int64("n") == 0)
            #expect(try Self.preparedCount(connection) == 3)
            let read = "SELECT t FROM items WHERE id = $1"
            #expect(try connection.query(read, [.int64(21)], prepared: true)[0].optionalString("t") == nil)
            #expect(try connection.query(read, [.int64(7)], prepared: true)[0].optionalString("t") == "t7")
        }
    }

    @Test func failuresRollbacksAndSchemaChangesLeaveTheCacheRight() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            try connection.executeScript("CREATE TABLE items (id bigint PRIMARY KEY, t text)")
            // A statement that does not parse throws and caches nothing; the session goes on.
            #expect(throws: PostgresError.self) { try connection.query("SELEC 1", prepared: true) }
            #expect(try Self.preparedCount(connection) == 0)
            // Prepared inside a transaction that rolls back: the statement stays and still runs.
            let count = "SELECT count(*) AS n FROM items"
            try connection.executeScript("BEGIN")
            try connection.execute("INSERT INTO items VALUES (1, 'a')")
            #expect(try connection.query(count, prepared: true)[0].int64("n") == 1)
            try connection.executeScript("ROLLBACK")
            #expect(try connection.query(count, prepared: true)[0].int64("n") == 0)
            // An aborted transaction refuses a first prepare; after it, the statement prepares fine.
            let read = "SELECT t FROM items WHERE id = $1"
            try connection.executeScript("BEGIN")
            #expect(throws: PostgresError.self) { try connection.execute("INSERT INTO nowhere VALUES (1)") }
            #expect(throws: PostgresError.self) { try connection.query(read, [.int64(1)], prepared: true) }
            try connection.executeScript("ROLLBACK")
            try connection.execute("INSERT INTO items VALUES (1, 'a')")
            #expect(try connection.query(read, [.int64(1)], prepared: true)[0].optionalString("t") == "a")
            // The table changes under the kept plan: the server plans again.
            try connection.executeScript("ALTER TABLE items ADD COLUMN n int DEFAULT 5; CREATE INDEX ON items (t)")
            #expect(try connection.query(read, [.int64(1)], prepared: true)[0].optionalString("t") == "a")
            #expect(try connection.query(count, prepared: true)[0].int64("n") == 1)
        }
    }

    @Test func pipelinesRunPreparedStatementsBesideTextOnes() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            try connection.executeScript("CREATE TABLE items (id bigint PRIMARY KEY, t text)")
            for round in 0..<3 {
                let results = try connection.pipeline([
                    PostgresStatement("INSERT INTO items VALUES ($1, 'x')", [.int64(Int64(round))]),
                    PostgresStatement("SELECT count(*) AS n FROM items WHERE t = $1", [.text("x")], prepared: true),
                ])
                #expect(try results[1][0].int64("n") == Int64(round + 1))
            }
            #expect(try Self.preparedCount(connection) == 1)
        }
    }

    @Test func aSessionThatLostItsStatementsIsDropped() async throws {
        // Someone ran DEALLOCATE ALL on the session: the next prepared statement fails, and the connection reports
        // itself lost (its owner connects again, with an empty cache) instead of failing every statement after.
        try await TestDatabase.with { db in
            let connection = try db.connect()
            #expect(try connection.query("SELECT 1::bigint AS v", prepared: true)[0].int64("v") == 1)
            try connection.executeScript("DEALLOCATE ALL")
            let error = #expect(throws: PostgresError.self) { try connection.query("SELECT 1::bigint AS v", prepared: true) }
            #expect(error?.sqlState == "26000")
            #expect(error?.isConnectionLost == true)
            #expect(connection.isConnectionLost)
            let fresh = try db.connect()
            #expect(try fresh.query("SELECT 1::bigint AS v", prepared: true)[0].int64("v") == 1)
            // A name the server holds already (as a pooled backend might): the same.
            try fresh.executeScript("PREPARE starling_2 AS SELECT 2")
            let taken = #expect(throws: PostgresError.self) { try fresh.query("SELECT 3::bigint AS v", prepared: true) }
            #expect(taken?.sqlState == "42P05")
            #expect(fresh.isConnectionLost)
        }
    }

    @Test func pastTheCapStatementsRunUnprepared() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            let cap = PostgresConnection.maxPreparedStatements
            for index in 0..<(cap + 10) {
                #expect(try connection.query("SELECT \(index)::bigint AS v", prepared: true)[0].int64("v") == Int64(index))
            }
            #expect(try Self.preparedCount(connection) == Int64(cap))
        }
    }
}
