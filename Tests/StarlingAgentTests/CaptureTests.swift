import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

@Suite("Capture triggers")
struct CaptureTests {
    static let allTypes = """
        CREATE TABLE everything (
            id bigint PRIMARY KEY,
            small smallint, regular integer, big bigint, exact numeric, exact_scaled numeric(40,10),
            single real, double double precision, label text, short varchar(20), blob bytea, flag boolean,
            day date, at timestamp, at_tz timestamptz, uid uuid, doc json, docb jsonb,
            bigs bigint[], texts text[], stamps timestamptz[], blobs bytea[], doubles double precision[],
            grid integer[], nums numeric[]
        )
        """

    static let edgeRow = """
        INSERT INTO everything VALUES (
            9223372036854775807, -32768, 2147483647, -9223372036854775808,
            123456789012345678901234567890.123456789, 12345678901234567890.0123456789,
            'NaN', '-Infinity', 'grüße, 世界 "quoted" \\ back', 'x', '\\x00ff0000ab', true,
            '2024-02-29', '2024-01-02 03:04:05.000006', '2024-01-02 03:04:05.123456+02', 
            'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.50, null]}', '{"z": 1e2, "k": "v"}',
            ARRAY[9223372036854775807, NULL, -1]::bigint[], ARRAY['a', NULL, 'NULL', 'b,c']::text[],
            ARRAY['2024-01-01 00:00:00+00', NULL]::timestamptz[], ARRAY['\\x00'::bytea, NULL]::bytea[],
            ARRAY['Infinity', 0.1, NULL]::float8[], '{{1,2},{3,NULL}}', ARRAY[1.50, NULL]::numeric[]
        )
        """

    @Test("every listed type is captured with its exact lossless JSON form")
    func exactImages() async throws {
        // Proves: the after image of an insert holds each type's documented JSON form, edge values included.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(database, ddl: Self.allTypes, tables: ["public.everything"])
            try connection.execute(Self.edgeRow)
            let rows = try AgentTestSupport.outbox(connection)
            try #require(rows.count == 1)
            let after = try #require(rows[0].after)
            let expected: JSONObject = [
                "id": "9223372036854775807", "small": -32768, "regular": 2147483647, "big": "-9223372036854775808",
                "exact": "123456789012345678901234567890.123456789", "exact_scaled": "12345678901234567890.0123456789",
                "single": "NaN", "double": "-Infinity", "label": "grüße, 世界 \"quoted\" \\ back", "short": "x",
                "blob": "\\x00ff0000ab", "flag": true, "day": "2024-02-29", "at": "2024-01-02T03:04:05.000006",
                "at_tz": "2024-01-02T01:04:05.123456+00:00", "uid": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                "doc": .string(#"{"a": [1, 2.50, null]}"#), "docb": ["k": "v", "z": 100],
                "bigs": ["9223372036854775807", nil, "-1"], "texts": ["a", nil, "NULL", "b,c"],
                "stamps": ["2024-01-01T00:00:00.000000+00:00", nil], "blobs": ["\\x00", nil],
                "doubles": ["Infinity", .number("0.1"), nil], "grid": [[1, 2], [3, nil]], "nums": ["1.50", nil],
            ]
            for (name, value) in expected {
                #expect(after[name] == value, "column \(name): \(String(describing: after[name]))")
            }
            #expect(after.count == expected.count)
            #expect(rows[0].key == ["id": "9223372036854775807"])
            #expect(rows[0].op == .insert && rows[0].before == nil && rows[0].base == 0)
        }
    }

    @Test("an update carries both images, a delete the before image, no-op updates are not captured")
    func updateAndDelete() async throws {
        // Proves: op/before/after per operation; an UPDATE that changes nothing leaves no outbox row.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: "CREATE TABLE items (id integer PRIMARY KEY, qty integer)", tables: ["public.items"])
            try connection.execute("INSERT INTO items VALUES (1, 1)")
            try connection.execute("UPDATE items SET qty = 2")
            try connection.execute("UPDATE items SET qty = 2")
            try connection.execute("DELETE FROM items")
            let rows = try AgentTestSupport.outbox(connection)
            #expect(rows.map(\.op) == [.insert, .update, .delete])
            #expect(rows[1].before == ["id": 1, "qty": 1] && rows[1].after == ["id": 1, "qty": 2])
            #expect(rows[2].before == ["id": 1, "qty": 2] && rows[2].after == nil)
            #expect(Set(rows.map(\.tx)).count == 3)
        }
    }

    @Test("a primary-key change is a delete of the old key plus an insert of the new one")
    func keyChange() async throws {
        // Proves: composite keys are captured as objects, and changing one key column splits the change.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: "CREATE TABLE pairs (a integer, b text, v text, PRIMARY KEY (b, a))",
                tables: ["public.pairs"])
            try connection.execute("INSERT INTO pairs VALUES (1, 'x', 'v')")
            try connection.execute("UPDATE pairs SET a = 2")
            let rows = try AgentTestSupport.outbox(connection)
            #expect(rows.map(\.op) == [.insert, .delete, .insert])
            #expect(rows[1].key == ["a": 1, "b": "x"] && rows[2].key == ["a": 2, "b": "x"])
            #expect(rows[1].tx == rows[2].tx)
            // Both halves are valid wire changes.
            let store = AgentStore(region: "eu")
            let changes = try store.prepare(rows, connection: connection)
            #expect(changes.map(\.op) == [.insert, .delete, .insert])
        }
    }

    @Test("writes made by the apply function are not captured")
    func applyWritesAreNotCaptured() async throws {
        // Proves: the starling.applying setting of the apply function silences the capture triggers.
        try await TestDatabase.with { database in
            let connection = try AgentTestSupport.region(
                database, ddl: "CREATE TABLE items (id integer PRIMARY KEY, qty integer)", tables: ["public.items"])
            let store = AgentStore(region: "eu")
            let entry = LogEntry(
                seq: 1, origin: "us", id: "us:1", tx: "us:1", table: "public.items", op: .insert, key: ["id": 7],
                row: ["id": 7, "qty": 3], hlc: 10, kind: .change, rewritten: false)
            let summary = try store.apply([entry], after: 0, next: 1, connection: connection)
            #expect(summary.applied == 1)
            #expect(try AgentTestSupport.outbox(connection).isEmpty)
            #expect(try connection.query("SELECT qty FROM items WHERE id = 7")[0].int64("qty") == 3)
            // The application's own write afterwards is captured, with base = the received version.
            try connection.execute("UPDATE items SET qty = 4 WHERE id = 7")
            let rows = try AgentTestSupport.outbox(connection)
            #expect(rows.count == 1 && rows[0].base == 1)
        }
    }
}
