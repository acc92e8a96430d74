@testable import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

@Suite("Decoded values (WAL capture images)")
struct DecodedValueTests {
    static let moreRows = """
        INSERT INTO everything (id, single, double, exact, at, at_tz, doubles, grid, texts, day, docb) VALUES
        (1, 1e20, 1.5e-07, -0.000, '2024-01-02 03:04:05', '1999-12-31 23:59:59.5+00', '{1e+300,-2.5e-05}',
         '[0:1]={7,8}', '{" lead",trail\\ ,"q\\"uote","back\\\\slash",""}', 'infinity', '[1, {"a": "b"}, 1.0e3]'),
        (2, -3.4028235e38, 5e-324, 1e5, 'infinity', '-infinity', '{}', '{}', '{}', '0001-01-01', 'null'),
        (3, 0, -0, NULL, '10000-01-01 00:00:00', '2024-06-01 00:00:00.000001+00', '{NaN,-Infinity}',
         '{{{1}}}', '{NULL}', '2024-02-29', '"s"')
        """

    @Test("the converted text form equals the trigger's JSON for every type and edge value")
    func textFormEqualsTriggerImage() async throws {
        // Proves: an image decoded from the WAL (text output under the capture settings) is the same JSON, byte
        // for byte, as the capture trigger's for every column of the all-types table and edge values.
        try await TestDatabase.with { database in
            let connection = try database.connect()
            try connection.execute(CaptureTests.allTypes)
            try connection.execute(CaptureTests.edgeRow)
            try connection.execute(Self.moreRows)
            let shape = try TableShape.load(table: "public.everything", connection: connection)
            var compared = 0
            try connection.transaction { connection in
                for setting in TableSQL.settings.split(separator: "\n") {
                    try connection.execute("SET LOCAL " + setting.dropFirst(4))
                }
                for column in shape.columns {
                    let quoted = try PostgresIdentifier.quoteName(column.name)
                    let rows = try connection.query(
                        """
                        SELECT id, (\(TableSQL.valueExpression("x.\(quoted)", column.encoding)))::text AS image,
                               x.\(quoted)::text AS text
                        FROM public.everything x ORDER BY id
                        """)
                    for row in rows {
                        let expected = try row.optionalString("image").map { try JSONValue(parsing: $0) } ?? .null
                        let text = try row.optionalString("text")
                        let decoded = try DecodedValue.json(text, column: column)
                        let id = try row.int64("id")
                        #expect(decoded.canonicalText == expected.canonicalText, "\(column.name) id \(id): \(text ?? "NULL")")
                        compared += 1
                    }
                }
            }
            #expect(compared == shape.columns.count * 4)
        }
    }

    @Test("timestamps take the trigger's ISO form; other texts stay as they are", arguments: [
        ("2026-12-05 22:03:50.123456+00", true, "2026-12-05T22:03:50.123456+00:00"),
        ("2026-12-05 22:03:50.1+00", true, "2026-12-05T22:03:50.100000+00:00"),
        ("2026-12-05 22:03:50+00", true, "2026-12-05T22:03:50.000000+00:00"),
        ("2026-12-05 22:03:50.5", false, "2026-12-05T22:03:50.500000"),
        ("0044-03-15 12:00:00 BC", false, "0044-03-15 12:00:00 BC"),
        ("2026-12-05 22:03:50+02", true, "2026-12-05 22:03:50+02"),
        ("infinity", true, "infinity"), ("-infinity", false, "-infinity"), ("", false, ""),
    ])
    func timestamps(text: String, zoned: Bool, expected: String) {
        #expect(DecodedValue.timestamp(text, zoned: zoned) == expected)
    }

    @Test("floats in scientific notation become numeric_in's plain decimal", arguments: [
        ("1e+20", "100000000000000000000"), ("1.5e-07", "0.00000015"), ("-2.5e-05", "-0.000025"), ("1.5", "1.5"),
        ("1.25e+02", "125"), ("1.2345e+02", "123.45"), ("-0", "-0"), ("5e-324", "0." + String(repeating: "0", count: 323) + "5"),
        ("0e+00", "0"), ("-1e-00", "-1"),
    ])
    func plainDecimal(input: String, expected: String) {
        #expect(DecodedValue.plainDecimal(input) == expected)
    }

    @Test("array texts parse into nested elements; malformed ones are refused")
    func arrays() throws {
        #expect(try PostgresArrayText.parse("{}") == .array([]))
        #expect(try PostgresArrayText.parse("{a,NULL,\"NULL\",\"b,c\"}")
            == .array([.element("a"), .element(nil), .element("NULL"), .element("b,c")]))
        #expect(try PostgresArrayText.parse("[2:3]={{1,2},{3,4}}")
            == .array([.array([.element("1"), .element("2")]), .array([.element("3"), .element("4")])]))
        for bad in ["", "{", "{a", "{a,}x", "{\"a}", "[1:2]", "{a}}", "x"] {
            #expect(throws: AgentError.self, "\(bad)") { try PostgresArrayText.parse(bad) }
        }
    }
}
