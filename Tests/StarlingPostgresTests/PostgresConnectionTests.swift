import StarlingPostgres
import StarlingTestSupport
import Testing

/// Strings that break naive quoting: SQL, array, COPY and JSON metacharacters, unicode, whitespace.
let nastyStrings: [String] = [
    "plain", "", " ", "'; DROP TABLE items; --", "O'Reilly", "back\\slash", "trailing\\", "\\N", "NULL", "null",
    "dq\"uote", "{braces}", "a,b", "tab\there", "new\nline", "cr\rlf", "$1", "E'\\x00'", "unicode ✓ 日本語 🎉",
    "\u{7f}\u{1}", "%s%n", String(repeating: "x", count: 10_000),
]

@Suite(.timeLimit(.minutes(2)))
struct PostgresConnectionTests {
    /// Proves a failed connect throws connectionFailed with libpq's own message (refused port, unknown db).
    @Test func connectFailureCarriesLibpqMessage() throws {
        let refused = #expect(throws: PostgresError.self) {
            try PostgresConnection.connect(url: "postgresql://postgres@127.0.0.1:1/postgres?connect_timeout=5")
        }
        #expect(refused?.code == .connectionFailed)
        #expect(refused?.message.contains("127.0.0.1") == true)
        let url = TestDatabase.replacingDatabase(in: try TestDatabase.adminURL(), with: "starling_no_such_db")
        let missing = #expect(throws: PostgresError.self) { try PostgresConnection.connect(url: url) }
        #expect(missing?.code == .connectionFailed)
        #expect(missing?.message.contains("starling_no_such_db") == true)
        #expect(missing?.message.contains("does not exist") == true)
    }

    /// Proves parameters travel as data: quotes, backslashes, unicode and NULL round-trip and inject nothing.
    @Test func parametersCannotInject() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            try connection.executeScript("CREATE TABLE items (n int PRIMARY KEY, v text)")
            let values: [String?] = nastyStrings + [nil]
            for (n, value) in values.enumerated() {
                try connection.execute("INSERT INTO items (n, v) VALUES ($1, $2)", [.int(n), .optionalText(value)])
            }
            let result = try connection.query("SELECT n, v FROM items ORDER BY n")
            #expect(try result.map { try $0.optionalString("v") } == values)
            let echoed = try connection.query("SELECT $1::text AS v, $2::text IS NULL AS isnull", ["it's", nil])
            #expect(try echoed[0].string("v") == "it's")
            #expect(try echoed[0].bool("isnull"))
            let nul = #expect(throws: PostgresError.self) { try connection.query("SELECT $1", ["a\u{0}b"]) }
            #expect(nul?.code == .invalidParameter)
        }
    }

    /// Proves typed accessors are exact (bigint > 2^53, numeric, bytea, bool, timestamptz) and check types.
    @Test func typedAccessorsAreExactAndChecked() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            try connection.executeScript("SET TimeZone = 'UTC'")
            let result = try connection.query(
                """
                SELECT 9007199254740993::bigint AS big, $1::bigint AS max, $2::bigint AS min,
                       123456789012345678901234567890.123456789::numeric AS num, '\\x00ff10'::bytea AS raw,
                       true AS yes, false AS no, '2024-03-01 12:34:56.123456+00'::timestamptz AS at,
                       2147483647::int4 AS i32, 1.5::float8 AS d, NULL::text AS nothing, 'x'::text AS word,
                       $3::bytea AS allbytes, $4::float8 AS nan, $5::float8 AS inf, $6::int4 AS small
                """,
                [
                    .int64(.max), .int64(.min), .bytes((0...255).map { UInt8($0) }), .double(.nan),
                    .double(-.infinity), .int32(-7),
                ])
            let row = result[0]
            #expect(try row.int64("big") == 9_007_199_254_740_993)
            #expect(try row.int64("max") == .max)
            #expect(try row.int64("min") == .min)
            #expect(try row.string("num") == "123456789012345678901234567890.123456789")
            #expect(try row.bytes("raw") == [0x00, 0xff, 0x10])
            #expect(try row.bool("yes") == true)
            #expect(try row.bool("no") == false)
            #expect(try row.string("at") == "2024-03-01 12:34:56.123456+00")
            #expect(try row.int32("i32") == .max)
            #expect(try row.int64("i32") == 2_147_483_647)
            #expect(try row.double("d") == 1.5)
            #expect(try row.isNull("nothing"))
            #expect(try row.optionalString("nothing") == nil)
            #expect(try row.bytes("allbytes") == (0...255).map { UInt8($0) })
            #expect(try row.double("nan").isNaN)
            #expect(try row.double("inf") == -.infinity)
            #expect(try row.int32(15) == -7)
            let mismatch = #expect(throws: PostgresError.self) { _ = try row.int64("word") }
            #expect(mismatch?.code == .typeMismatch)
            #expect(#expect(throws: PostgresError.self) { _ = try row.double("num") }?.code == .typeMismatch)
            #expect(#expect(throws: PostgresError.self) { _ = try row.int32("big") }?.code == .typeMismatch)
            #expect(#expect(throws: PostgresError.self) { _ = try row.string("nothing") }?.code == .unexpectedNull)
            #expect(#expect(throws: PostgresError.self) { _ = try row.string("absent") }?.code == .columnNotFound)
            #expect(#expect(throws: PostgresError.self) { _ = try row.string(99) }?.code == .columnNotFound)
            #expect(result.columns[0] == PostgresColumn(name: "big", typeOID: 20))
        }
    }

    /// Proves a unique violation carries SQLSTATE 23505, the constraint name and the server's detail.
    @Test func uniqueViolationCarriesSQLState() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            try connection.executeScript("CREATE TABLE items (id bigint CONSTRAINT items_pk PRIMARY KEY)")
            try connection.execute("INSERT INTO items VALUES ($1)", [7], name: "insert-item")
            let error = #expect(throws: PostgresError.self) {
                try connection.execute("INSERT INTO items VALUES ($1)", [7], name: "insert-item")
            }
            #expect(error?.code == .queryFailed)
            #expect(error?.sqlState == PostgresError.SQLState.uniqueViolation)
            #expect(error?.isUniqueViolation == true)
            #expect(error?.constraintName == "items_pk")
            #expect(error?.queryName == "insert-item")
            #expect(error?.detail?.contains("(id)=(7)") == true)
            #expect(error?.isConnectionLost == false)
            #expect(try connection.query("SELECT 1 AS one")[0].int64("one") == 1)
        }
    }

    /// Proves transaction() commits on success and rolls back on a thrown or swallowed error.
    @Test func transactionCommitsAndRollsBack() async throws {
        struct Boom: Error {}
        try await TestDatabase.with { db in
            let connection = try db.connect()
            try connection.executeScript("CREATE TABLE items (id bigint PRIMARY KEY)")
            try connection.transaction { try $0.execute("INSERT INTO items VALUES (1)") }
            #expect(throws: Boom.self) {
                try connection.transaction { connection in
                    try connection.execute("INSERT INTO items VALUES (2)")
                    throw Boom()
                }
            }
            let duplicate = #expect(throws: PostgresError.self) {
                try connection.transaction(isolation: .serializable) { connection in
                    try connection.execute("INSERT INTO items VALUES (3)")
                    try connection.execute("INSERT INTO items VALUES (1)")
                }
            }
            #expect(duplicate?.sqlState == "23505")
            let swallowed = #expect(throws: PostgresError.self) {
                try connection.transaction { connection in
                    try connection.execute("INSERT INTO items VALUES (4)")
                    _ = try? connection.execute("INSERT INTO items VALUES (1)")
                }
            }
            #expect(swallowed?.sqlState == "25P02")
            #expect(!connection.isInTransaction)
            let ids = try connection.query("SELECT id FROM items ORDER BY id").map { try $0.int64(0) }
            #expect(ids == [1])
        }
    }

    /// Proves a deferred BEGIN: its settings and prologue hold from the body's first statement (sent with them in
    /// one pipeline, whichever way: query, pipeline, script), a failure of the first statement or a throw rolls it
    /// all back, a body that sends nothing leaves no transaction, and the query after COMMIT sees the commit from
    /// outside the transaction.
    @Test func deferredBeginAndQueryAfterCommit() async throws {
        struct Boom: Error {}
        try await TestDatabase.with { db in
            let connection = try db.connect()
            defer { connection.close() }
            try connection.executeScript("CREATE TABLE items (id bigint PRIMARY KEY)")
            connection.transactionPrologue = "SET LOCAL statement_timeout = '42s'"
            let setting = "SET LOCAL application_name = 'deferred'"
            let first = try connection.transaction(settings: setting, deferBegin: true) { connection in
                try connection.query(
                    "INSERT INTO items VALUES (1) RETURNING current_setting('application_name') || ' ' "
                        + "|| current_setting('statement_timeout') AS s", name: "first", prepared: true)[0].string("s")
            }
            #expect(first == "deferred 42s")
            let piped = try connection.transaction(settings: setting, deferBegin: true) { connection in
                try connection.pipeline([
                    PostgresStatement("INSERT INTO items VALUES (2)"),
                    PostgresStatement("SELECT current_setting('application_name') AS s"),
                ]).map(\.count)
            }
            #expect(piped == [0, 1], "the BEGIN's results are not the caller's")
            let scripted = try connection.transaction(settings: setting, deferBegin: true) { connection in
                try connection.executeScript("SELECT current_setting('application_name') AS s")[0].string("s")
            }
            #expect(scripted == "deferred")
            #expect(try connection.query("SELECT current_setting('application_name') AS s")[0].string("s") != "deferred")
            #expect(throws: Boom.self) {
                try connection.transaction(deferBegin: true) { connection in
                    try connection.execute("INSERT INTO items VALUES (3)")
                    throw Boom()
                }
            }
            let duplicate = #expect(throws: PostgresError.self) {
                try connection.transaction(deferBegin: true) { try $0.execute("INSERT INTO items VALUES (1)") }
            }
            #expect(duplicate?.sqlState == "23505")
            try connection.transaction(deferBegin: true) { _ in }
            #expect(!connection.isInTransaction)
            let (value, then) = try connection.transaction(
                deferBegin: true, thenQuery: "SELECT count(*) AS n, txid_current_if_assigned() IS NULL AS outside FROM items"
            ) { connection in try connection.execute("INSERT INTO items VALUES (4)") }
            #expect(value == 1)
            #expect(try then[0].int64("n") == 3 && then[0].bool("outside"), "after the commit, outside it")
            let ids = try connection.query("SELECT id FROM items ORDER BY id").map { try $0.int64(0) }
            #expect(ids == [1, 2, 4])
        }
    }

    /// Proves a transaction sent as one pipeline commits all of it, rolls all of it back when a statement fails (the
    /// connection idle again), and that a failure on this side in the middle of a pipeline (a parameter libpq cannot
    /// carry, after the first statement went out) closes the connection instead of leaving it in pipeline mode.
    @Test func pipelinedTransaction() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            defer { connection.close() }
            try connection.executeScript("CREATE TABLE items (id bigint PRIMARY KEY)")
            let (results, then) = try connection.transaction(
                settings: "SET LOCAL application_name = 'piped'",
                pipelining: [
                    PostgresStatement("INSERT INTO items VALUES (1)"),
                    PostgresStatement("SELECT current_setting('application_name') AS s", prepared: true),
                ], thenQuery: "SELECT count(*) AS n FROM items")
            #expect(try results.count == 2 && results[1][0].string("s") == "piped")
            #expect(try then?[0].int64("n") == 1)
            let failed = #expect(throws: PostgresError.self) {
                try connection.transaction(pipelining: [
                    PostgresStatement("INSERT INTO items VALUES (2)"), PostgresStatement("INSERT INTO items VALUES (1)"),
                ])
            }
            #expect(failed?.sqlState == "23505" && connection.isIdle)
            #expect(try connection.query("SELECT count(*) FROM items")[0].int64(0) == 1)
            let broken = #expect(throws: PostgresError.self) {
                try connection.transaction(pipelining: [
                    PostgresStatement("INSERT INTO items VALUES (3)"),
                    PostgresStatement("SELECT $1::text", [.text("nul\u{0}byte")]),
                ])
            }
            #expect(broken?.isConnectionLost == true && connection.isConnectionLost)
            let other = try db.connect()
            defer { other.close() }
            #expect(try other.query("SELECT count(*) FROM items")[0].int64(0) == 1, "nothing of it committed")
        }
    }

    /// Proves a body that ends its transaction with `commit(pipelining:)` commits everything it did (its statements
    /// and the pipeline's) with no COMMIT sent after it (the then-query runs outside the transaction), that a failing
    /// statement of that pipeline, or a failing COMMIT (a deferred foreign key), rolls back the whole body and leaves
    /// the connection idle for the next transaction.
    @Test func commitInTheBodysPipeline() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            defer { connection.close() }
            try connection.executeScript(
                "CREATE TABLE items (id bigint PRIMARY KEY); CREATE TABLE notes (item bigint REFERENCES items "
                    + "DEFERRABLE INITIALLY DEFERRED)")
            let other = try db.connect()
            defer { other.close() }
            func ids() throws -> [Int64] { try other.query("SELECT id FROM items ORDER BY id").map { try $0.int64(0) } }

            let (results, then) = try connection.transaction(
                deferBegin: true, thenQuery: "SELECT txid_current_if_assigned() IS NULL AS outside"
            ) { connection in
                try connection.execute("INSERT INTO items VALUES (1)")
                return try connection.commit(pipelining: [
                    PostgresStatement("INSERT INTO items VALUES (2)"),
                    PostgresStatement("SELECT count(*) AS n FROM items", prepared: true),
                ])
            }
            #expect(try results.count == 2 && results[1][0].int64("n") == 2)
            #expect(try then[0].bool("outside"), "the then-query ran after the body's COMMIT, outside it")
            let last = try other.query(
                "SELECT query FROM pg_stat_activity WHERE pid = $1", [.int64(Int64(connection.backendPID))])
            #expect(
                try last[0].string(0) == "SELECT txid_current_if_assigned() IS NULL AS outside",
                "the then-query went alone: no COMMIT of the transaction's own before it")
            #expect(try ids() == [1, 2] && connection.isIdle)

            // The whole transaction in one pipeline: the deferred BEGIN goes with it.
            try connection.transaction(deferBegin: true) { connection in
                try connection.commit(pipelining: [PostgresStatement("INSERT INTO items VALUES (3)")])
            }
            #expect(try ids() == [1, 2, 3] && connection.isIdle)

            let duplicate = #expect(throws: PostgresError.self) {
                try connection.transaction(deferBegin: true) { connection in
                    try connection.execute("INSERT INTO items VALUES (4)")
                    try connection.commit(pipelining: [PostgresStatement("INSERT INTO items VALUES (1)")])
                }
            }
            #expect(duplicate?.sqlState == "23505" && connection.isIdle)
            let dangling = #expect(throws: PostgresError.self) {
                try connection.transaction { connection in
                    try connection.execute("INSERT INTO items VALUES (5)")
                    try connection.commit(pipelining: [PostgresStatement("INSERT INTO notes VALUES (99)")])
                }
            }
            #expect(dangling?.sqlState == "23503" && connection.isIdle, "the COMMIT's own failure")
            #expect(try ids() == [1, 2, 3], "nothing of the failed bodies committed")
            try connection.transaction { connection in try connection.execute("INSERT INTO items VALUES (6)") }
            #expect(try ids() == [1, 2, 3, 6])
        }
    }

    /// Proves a closed connection reports itself lost and fails statements instead of crashing.
    @Test func closedConnectionFailsCleanly() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            #expect(!connection.isConnectionLost)
            connection.close()
            connection.close()
            #expect(connection.isConnectionLost)
            let error = #expect(throws: PostgresError.self) { try connection.query("SELECT 1") }
            #expect(error?.isConnectionLost == true)
        }
    }
}
