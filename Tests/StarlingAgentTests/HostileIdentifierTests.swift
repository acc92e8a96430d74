import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Tables whose names need quoting and columns whose names hold quotes, spaces, semicolons and SQL keywords:
/// the agent's triggers, capture and apply quote every identifier, so such a table syncs like any other.
@Suite("Hostile identifiers", .timeLimit(.minutes(2)))
struct HostileIdentifierTests {
    /// A mixed-case table (hub.yaml allows `schema.table` of letters, digits, `_` and `$`, so quoting still
    /// matters for case) with hostile column names, two of them in the primary key.
    static let ddl = """
        CREATE SCHEMA "Sales$EU";
        CREATE TABLE "Sales$EU"."Order_Items" (
            "Id" integer,
            "key with ""quotes""; drop table x; --" text,
            "select" integer,
            "with space" text,
            "back\\slash" text,
            "ünï $1" text,
            PRIMARY KEY ("Id", "key with ""quotes""; drop table x; --")
        );
        """
    static let table = "Sales$EU.Order_Items"
    static let quoted = #""Sales$EU"."Order_Items""#
    static let keyColumn = #""key with ""quotes""; drop table x; --""#

    @Test("a table with hostile column names captures, ships and applies exactly")
    func hostileColumnsSync() async throws {
        // Proves the capture triggers install on such a table, inserts/updates/deletes land in the outbox with
        // the exact column names and values, the changes validate, and applying them in a second region gives
        // identical contents; no other table was touched.
        try await TestDatabase.with { origin in
            try await TestDatabase.with { target in
                let source = try AgentTestSupport.region(origin, ddl: Self.ddl, tables: [Self.table])
                defer { source.close() }
                let sink = try AgentTestSupport.region(target, ddl: Self.ddl, tables: [Self.table])
                defer { sink.close() }
                let hostile = #"it's "quoted"; DROP TABLE x; -- \ back $$ $1"#
                try source.execute(
                    "INSERT INTO \(Self.quoted) VALUES (1, $1, 2, $1, $1, $1), (2, 'plain', 3, NULL, NULL, 'ü')",
                    [.text(hostile)])
                try source.execute(#"UPDATE \#(Self.quoted) SET "select" = "select" + 10, "with space" = 'a b' WHERE "Id" = 1"#)
                try source.execute(#"DELETE FROM \#(Self.quoted) WHERE "Id" = 2"#)
                let rows = try AgentTestSupport.outbox(source)
                #expect(rows.map(\.op) == [.insert, .insert, .update, .delete])
                #expect(rows.allSatisfy { $0.table == Self.table })
                #expect(rows[0].key == ["Id": 1, "key with \"quotes\"; drop table x; --": .string(hostile)])
                #expect(rows[0].after?["back\\slash"] == .string(hostile))
                #expect(rows[2].after?["select"] == 12)

                let changes = try AgentStore(region: "eu").prepare(rows, connection: source)
                #expect(changes.count == 4)
                let store = AgentStore(region: "us")
                let summary = try store.apply(
                    AgentTestSupport.entries(rows, origin: "eu", firstSeq: 1), after: 0, next: 4, connection: sink)
                #expect(summary.applied == 4)
                let order = #""Id", \#(Self.keyColumn)"#
                #expect(
                    try AgentTestSupport.fingerprint(Self.quoted, orderBy: order, source)
                        == AgentTestSupport.fingerprint(Self.quoted, orderBy: order, sink))
                #expect(try sink.query(#"SELECT count(*) AS n FROM \#(Self.quoted)"#)[0].int64("n") == 1)
                #expect(try AgentTestSupport.outbox(sink).isEmpty, "applied rows are not captured again")
            }
        }
    }

    @Test("an unquoted lookalike of the table is not the synced table")
    func caseIsKept() async throws {
        // Proves the mixed-case name is looked up exactly: a lower-case twin is neither captured nor written.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: Self.ddl + #"CREATE TABLE "Sales$EU".order_items ("Id" integer PRIMARY KEY);"#,
                tables: [Self.table])
            defer { connection.close() }
            try connection.execute(#"INSERT INTO "Sales$EU".order_items VALUES (5)"#)
            #expect(try AgentTestSupport.outbox(connection).isEmpty)
        }
    }
}
