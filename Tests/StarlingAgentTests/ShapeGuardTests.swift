import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// The shape guard: a synced table altered in a region stops its stream (nothing pushed, nothing applied,
/// nothing lost) with a sentence naming the change, and resumes where it stopped when the shape is back.
@Suite("Shape guard")
struct ShapeGuardTests {
    static let ddl = """
        CREATE TABLE items (id integer PRIMARY KEY, qty integer, name text);
        CREATE TABLE other (id integer PRIMARY KEY, v text);
        """
    static let tables = ["public.items", "public.other"]

    static func column(_ name: String, _ type: String = "integer", generated: Bool = false) -> TableSignature.Column {
        TableSignature.Column(name: name, type: type, isGenerated: generated)
    }

    static let base = TableSignature(columns: [column("id"), column("qty"), column("name", "text")], key: ["id"])

    static let driftCases: [(TableSignature, [String])] = [
        (base, []),
        (TableSignature(columns: base.columns + [column("note", "text")], key: ["id"]), ["column note text added"]),
        (TableSignature(columns: [column("id"), column("name", "text")], key: ["id"]), ["column qty removed"]),
        (
            TableSignature(columns: [column("id"), column("qty", "bigint"), column("name", "text")], key: ["id"]),
            ["column qty: type integer → bigint"]
        ),
        (
            TableSignature(
                columns: [column("id"), column("qty", generated: true), column("name", "text")], key: ["id"]),
            ["column qty became generated"]
        ),
        (
            TableSignature(columns: [column("id"), column("name", "text"), column("qty")], key: ["id"]),
            ["columns reordered (id, name, qty)"]
        ),
        (TableSignature(columns: base.columns, key: ["id", "qty"]), ["primary key (id) → (id, qty)"]),
        (
            TableSignature(columns: [column("id"), column("amount"), column("name", "text")], key: ["id"]),
            ["column qty removed", "column amount integer added"]
        ),
    ]

    @Test("differences name every kind of change, and none for an equal signature", arguments: driftCases)
    func differences(current: TableSignature, expected: [String]) {
        // Proves: the operator's sentence lists exactly what changed, column by column.
        #expect(Self.base.differences(to: current) == expected)
    }

    @Test("the stored signature reads back equal to what was written")
    func signatureRoundTrip() throws {
        // Proves: the form kept in starling.synced_tables.shape loses nothing (types with spaces, generated).
        let signature = TableSignature(
            columns: [Self.column("id", "bigint"), Self.column("at", "timestamp with time zone", generated: true)],
            key: ["id"])
        let text = signature.json.canonicalText
        #expect(try TableSignature(json: try JSONValue(parsing: text), what: "t") == signature)
    }

    @Test("an ADD COLUMN stops the table's push, whole transactions included; a revert resumes it")
    func pushHoldsAlteredTable() async throws {
        // Proves: after ALTER, the check names the new column, the altered table's rows (and every transaction
        // touching it) stay in the outbox while the other table's go out, and DROP COLUMN brings them back.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.ddl, tables: Self.tables)
            #expect(try ShapeGuard().check(connection: connection).isEmpty)
            try connection.execute("INSERT INTO items VALUES (1, 1, 'before')")
            try connection.execute("ALTER TABLE items ADD COLUMN note text")
            try connection.executeScript(
                "BEGIN; INSERT INTO items VALUES (2, 2, 'mixed', 'n'); INSERT INTO other VALUES (2, 'mixed'); COMMIT;")
            try connection.execute("INSERT INTO other VALUES (3, 'alone')")
            let drift = try ShapeGuard().check(connection: connection)
            #expect(drift.keys.sorted() == ["public.items"])
            let reason = try #require(drift["public.items"])
            #expect(reason.contains("column note text added") && reason.contains("stream is stopped"))
            let store = AgentStore(region: "r")
            let batch = try store.nextBatch(
                connection: connection, maxCount: 100, maxBytes: 1 << 20, holding: Set(drift.keys))
            #expect(batch.map(\.table) == ["public.other"])
            #expect(batch.first?.key["id"]?.int64Value == 3)
            try connection.execute("ALTER TABLE items DROP COLUMN note")
            #expect(try ShapeGuard().check(connection: connection).isEmpty)
            let resumed = try store.nextBatch(connection: connection, maxCount: 100, maxBytes: 1 << 20)
            #expect(resumed.map(\.table) == ["public.items", "public.items", "public.other", "public.other"])
        }
    }

    @Test("pulled entries of an altered table are held, the rest applied; held ones apply in order on revert")
    func applyHoldsAlteredTable() async throws {
        // Proves: the cursor moves past the batch, the altered table's entries wait in starling.held_entries
        // (not written), the other table's apply; after the revert the held entries apply in seq order, and a
        // later batch's entries of the table apply after them.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.ddl, tables: Self.tables)
            let store = AgentStore(region: "r")
            func entry(_ seq: Int64, _ table: String, _ id: Int64, _ value: String) -> LogEntry {
                let row: JSONObject =
                    table == "public.items"
                    ? ["id": .integer(id), "qty": .integer(seq), "name": .string(value)]
                    : ["id": .integer(id), "v": .string(value)]
                return LogEntry(
                    seq: seq, origin: "x", id: "x:\(seq)", tx: "x:\(seq)", table: table, op: .insert,
                    key: ["id": .integer(id)], row: row, hlc: 1000 + seq, kind: .change, rewritten: false)
            }
            try connection.execute("ALTER TABLE items ADD COLUMN note text")
            let first = try store.apply(
                [entry(1, "public.items", 1, "a"), entry(2, "public.other", 1, "o"), entry(3, "public.items", 1, "b")],
                after: 0, next: 3, connection: connection)
            #expect(first.held == 2 && first.applied == 1)
            #expect(first.stoppedTables.keys.sorted() == ["public.items"])
            #expect(try connection.query("SELECT count(*) FROM items")[0].int64(0) == 0)
            #expect(try connection.query("SELECT count(*) FROM starling.held_entries")[0].int64(0) == 2)
            #expect(try store.state(connection: connection).cursor == 3)
            // Still altered: nothing resumes.
            #expect(try store.applyHeldEntries(connection: connection).resumed == 0)
            try connection.execute("ALTER TABLE items DROP COLUMN note")
            let second = try store.apply([entry(4, "public.items", 1, "c")], after: 3, next: 4, connection: connection)
            #expect(second.resumed == 2 && second.stoppedTables.isEmpty && second.held == 0)
            #expect(try connection.query("SELECT name, qty FROM items WHERE id = 1")[0].string("name") == "c")
            #expect(try connection.query("SELECT count(*) FROM starling.held_entries")[0].int64(0) == 0)
            #expect(
                try connection.query("SELECT seq FROM starling.versions WHERE table_name = 'public.items'")[0]
                    .int64("seq") == 4)
        }
    }

    @Test("held entries resume without a new pull, and a re-delivered batch is held once")
    func heldEntriesResumeWhenIdle() async throws {
        // Proves: applyHeldEntries (the loop's idle path) writes the held rows once the shape is back.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.ddl, tables: Self.tables)
            let store = AgentStore(region: "r")
            let entry = LogEntry(
                seq: 7, origin: "x", id: "x:7", tx: "x:7", table: "public.items", op: .insert,
                key: ["id": .integer(5)], row: ["id": .integer(5), "qty": .integer(1), "name": .string("held")],
                hlc: 1, kind: .change, rewritten: false)
            try connection.execute("ALTER TABLE items ALTER COLUMN qty TYPE bigint")
            let held = try store.apply([entry], after: 0, next: 7, connection: connection)
            #expect(held.held == 1)
            #expect(held.stoppedTables["public.items"]?.contains("type integer → bigint") == true)
            #expect(try store.apply([entry], after: 0, next: 7, connection: connection).isStale)
            try connection.execute("ALTER TABLE items ALTER COLUMN qty TYPE integer")
            let resumed = try store.applyHeldEntries(connection: connection)
            #expect(resumed.resumed == 1 && resumed.applied == 1)
            #expect(try connection.query("SELECT name FROM items WHERE id = 5")[0].string("name") == "held")
        }
    }

    @Test("a table altered while the agent was down keeps its old functions and is reported at install")
    func installKeepsAlteredTable() async throws {
        // Proves: reinstalling with a changed shape returns the drift and leaves the recorded signature (and
        // so the generated functions) as they were, while an unchanged table is reinstalled.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.ddl, tables: Self.tables)
            // Bootstrapped, as a region that syncs (a table not bootstrapped yet is installed for the shape it has:
            // the next test).
            try connection.execute("UPDATE starling.synced_tables SET bootstrapped_at = now()")
            let recorded = try connection.query(
                "SELECT shape FROM starling.synced_tables WHERE table_name = 'public.items'")[0].string("shape")
            try connection.execute("ALTER TABLE items DROP COLUMN name")
            let shapes = try Self.tables.map { try TableShape.load(table: $0, connection: connection) }
            let drift = try AgentTestSupport.schema().install(tables: shapes, connection: connection)
            #expect(drift.keys.sorted() == ["public.items"])
            #expect(drift["public.items"]?.contains("column name removed") == true)
            #expect(
                try connection.query("SELECT shape FROM starling.synced_tables WHERE table_name = 'public.items'")[0]
                    .string("shape") == recorded)
            try connection.execute("ALTER TABLE items ADD COLUMN name text")
            #expect(try AgentTestSupport.schema().install(tables: shapes, connection: connection).isEmpty == false)
            let reloaded = try Self.tables.map { try TableShape.load(table: $0, connection: connection) }
            #expect(try AgentTestSupport.schema().install(tables: reloaded, connection: connection).isEmpty)
        }
    }

    @Test("a table not bootstrapped yet is installed for the shape it has, however it changed")
    func installFollowsAnUnbootstrappedTable() async throws {
        // Proves: before its bootstrap a table syncs nothing, so an ALTER of it (an operator creating it with the
        // columns in force after a first refused start) is no drift: install records the new shape.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.ddl, tables: Self.tables)
            try connection.execute("UPDATE starling.synced_tables SET bootstrapped_at = NULL")
            try connection.execute("ALTER TABLE items ADD COLUMN note text")
            let shapes = try Self.tables.map { try TableShape.load(table: $0, connection: connection) }
            #expect(try AgentTestSupport.schema().install(tables: shapes, connection: connection).isEmpty)
            let recorded = try connection.query(
                "SELECT shape FROM starling.synced_tables WHERE table_name = 'public.items'")[0].string("shape")
            #expect(recorded.contains("\"note\""))
        }
    }
}
