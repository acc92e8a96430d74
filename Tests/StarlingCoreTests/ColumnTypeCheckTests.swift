import StarlingCore
import Testing

/// ``ColumnTypeCheck``: every value the capture produces for a type fits it, and the usual wrong ones do not.
struct ColumnTypeCheckTests {
    static let fitting: [(String, JSONValue)] = [
        ("integer", .number("5")), ("integer", .number("-2147483648")), ("smallint", .number("32767")),
        ("bigint", .string("9223372036854775807")), ("bigint", .number("12")), ("numeric(12,2)", .string("1.50")),
        ("numeric", .string("NaN")), ("numeric", .number("3")), ("double precision", .string("Infinity")),
        ("real", .number("1.5e3")), ("boolean", .bool(true)), ("text", .string("x")),
        ("character varying(20)", .string("x")), ("timestamp with time zone", .string("2026-01-01T00:00:00.000000+00:00")),
        ("timestamp(3) without time zone", .string("2026-01-01T00:00:00.000000")), ("bytea", .string("\\x00ff")),
        ("uuid", .string("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")), ("jsonb", .object(["a": .number("1")])),
        ("json", .string("{\"a\": 1}")), ("integer[]", .array([.number("1"), .null])), ("text", .null),
        ("mood", .number("1")), ("public.my_domain", .bool(false)),
    ]

    static let refused: [(String, JSONValue)] = [
        ("integer", .string("abc")), ("integer", .number("1.5")), ("integer", .number("2147483648")),
        ("smallint", .number("40000")), ("bigint", .string("9223372036854775808")), ("bigint", .bool(true)),
        ("numeric", .string("1,5")), ("numeric", .bool(false)), ("double precision", .string("fast")),
        ("boolean", .string("true")), ("text", .number("7")), ("date", .number("20260101")),
        ("bytea", .string("00ff")), ("bytea", .string("\\x0")), ("uuid", .string("not-a-uuid")),
        ("integer[]", .number("1")), ("json", .object([:])),
    ]

    @Test(arguments: fitting)
    func fits(type: String, value: JSONValue) {
        #expect(ColumnTypeCheck.problem(type: type, value: value) == nil, "\(type) \(value)")
    }

    @Test(arguments: refused)
    func isRefused(type: String, value: JSONValue) {
        #expect(ColumnTypeCheck.problem(type: type, value: value) != nil, "\(type) \(value)")
    }

    // Proves a change's check names the first misfit and unknown column by name, whatever order the image holds.
    @Test func aChangeNamesItsFirstMisfitByColumnName() throws {
        let change = try Change(
            json: JSONValue(
                parsing: #"""
                    {"id":"r1:1","tx":"r1:1","table":"items","op":"insert","key":{"id":1},
                     "after":{"id":1,"zeta":"x","alpha":"y","qty":3,"extra2":1,"extra1":2},"base":0,"hlc":1}
                    """#))
        let types = ["id": "bigint", "zeta": "integer", "alpha": "integer", "qty": "integer"]
        let error = #expect(throws: CoreError.self) { try change.check(types: types) }
        #expect(error?.field == "after.alpha")
        #expect(error?.message.contains("is integer: the value \"y\" is not a 32-bit integer") == true)
        let unknown = #expect(throws: CoreError.self) { try change.check(columns: Set(types.keys)) }
        #expect(unknown?.field == "after.extra1")
        try change.check(types: ["id": "bigint", "zeta": "text", "alpha": "text", "qty": "numeric(3,0)"])
    }
}
