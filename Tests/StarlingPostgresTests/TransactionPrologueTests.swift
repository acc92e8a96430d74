@testable import StarlingPostgres
import StarlingTestSupport
import Testing

/// A transaction's settings and the session's prologue go as one statement when both are a `SELECT` of expressions
/// (``PostgresConnection/merged(_:_:)``), and both still hold in the transaction.
@Suite(.timeLimit(.minutes(2)))
struct TransactionPrologueTests {
    @Test func selectListsAreJoinedOthersStayApart() {
        let reset = "SELECT pg_replication_origin_xact_reset()"
        let relaxed = "SELECT set_config('synchronous_commit', 'off', true)"
        #expect(PostgresConnection.merged(nil, nil) == [])
        #expect(PostgresConnection.merged(relaxed, nil) == [relaxed])
        #expect(PostgresConnection.merged(nil, reset) == [reset])
        #expect(
            PostgresConnection.merged(relaxed, reset)
                == ["SELECT set_config('synchronous_commit', 'off', true), pg_replication_origin_xact_reset()"])
        #expect(PostgresConnection.merged("SET LOCAL lock_timeout = '2s'", reset) == ["SET LOCAL lock_timeout = '2s'", reset])
        #expect(PostgresConnection.merged(relaxed, "SELECT count(*) FROM t") == [relaxed, "SELECT count(*) FROM t"])
        #expect(PostgresConnection.merged("SELECT 1; SELECT 2", reset) == ["SELECT 1; SELECT 2", reset])
    }

    @Test func aSelectListHasNoFromInAnyCaseAndNoSemicolon() {
        for list in ["SELECT 1", "SELECT fromage()", "SELECT 'x FROMy'", "SELECT  FRO M x", "SELECT set_config('a', 'from', true)"] {
            #expect(PostgresConnection.isSelectList(list), "\(list)")
        }
        for other in [
            "SELECT 1 FROM t", "SELECT 1 from t", "SELECT 1 FrOm t", "SELECT 1  FROM t", "SELECT x FROMFROM FROM t",
            "SELECT 1;", "select 1", "SET LOCAL a = 1", "SELECT 1 FROM ",
        ] {
            #expect(!PostgresConnection.isSelectList(other), "\(other)")
        }
    }

    @Test func joinedSettingsAndPrologueBothHold() async throws {
        try await TestDatabase.with { db in
            let connection = try db.connect()
            defer { connection.close() }
            connection.transactionPrologue = "SELECT set_config('statement_timeout', '42s', true)"
            let settings = "SELECT set_config('application_name', 'joined', true)"
            for deferBegin in [false, true] {
                let seen = try connection.transaction(settings: settings, deferBegin: deferBegin) { connection in
                    try connection.query(
                        "SELECT current_setting('application_name') || ' ' || current_setting('statement_timeout') AS s"
                    )[0].string("s")
                }
                #expect(seen == "joined 42s", "deferBegin \(deferBegin)")
            }
            let (results, _) = try connection.transaction(
                settings: settings, pipelining: [PostgresStatement("SELECT current_setting('statement_timeout') AS s")])
            #expect(try results[0][0].string("s") == "42s")
            #expect(try connection.query("SELECT current_setting('statement_timeout') AS s")[0].string("s") == "0")
        }
    }
}
