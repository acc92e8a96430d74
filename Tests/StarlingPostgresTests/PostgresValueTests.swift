import Testing

@testable import StarlingPostgres

@Suite struct PostgresValueTests {
    /// Proves identifiers are split on the first dot and every part is quoted with `"` doubled.
    @Test(arguments: [
        ("public.items", "\"public\".\"items\""),
        ("items", "\"items\""),
        ("Mixed.Case", "\"Mixed\".\"Case\""),
        ("a.b.c", "\"a\".\"b.c\""),
        ("we\"ird.ta\"\"ble", "\"we\"\"ird\".\"ta\"\"\"\"ble\""),
        ("x; DROP TABLE y", "\"x; DROP TABLE y\""),
    ])
    func identifierQuoting(input: String, expected: String) throws {
        #expect(try PostgresIdentifier.quote(input) == expected)
    }

    /// Proves identifiers that cannot be quoted are refused rather than mangled.
    @Test(arguments: ["", ".items", "public.", "a\u{0}b"])
    func invalidIdentifiers(input: String) {
        #expect(throws: PostgresError.self) { try PostgresIdentifier.quote(input) }
    }

    /// Proves the text encodings, array literals included, escape exactly what the server parses specially.
    @Test(arguments: [
        (PostgresValue.int64(-42), "-42"),
        (.int32(7), "7"),
        (.bool(true), "t"),
        (.double(0.1), "0.1"),
        (.double(.infinity), "Infinity"),
        (.bytes([0, 0xab, 0xff]), "\\x00abff"),
        (
            .textArray(["a", nil, "b\"c", "d\\e", "f,g", "NULL", ""]),
            "{\"a\",NULL,\"b\\\"c\",\"d\\\\e\",\"f,g\",\"NULL\",\"\"}"
        ),
        (.int64Array([1, nil, -3]), "{\"1\",NULL,\"-3\"}"),
        (.textArray([]), "{}"),
        (.bytesArray([[1], nil]), "{\"\\\\x01\",NULL}"),
    ])
    func textEncoding(value: PostgresValue, expected: String) throws {
        var buffer: [UInt8] = []
        try value.encodeText(into: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == expected)
    }

    /// Proves COPY escaping turns the four special bytes into escapes and leaves everything else alone.
    @Test func copyEscaping() {
        var buffer: [UInt8] = []
        PostgresCopyWriter.appendEscaped(Array("a\\b\tc\nd\re ✓".utf8), to: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "a\\\\b\\tc\\nd\\re ✓")
    }

    /// Proves the COPY writer's direct text path escapes exactly like the byte path, copies clean text as is and
    /// refuses a NUL byte.
    @Test(arguments: ["", "plain", "a\\b\tc\nd\re ✓", "\\N", "tab\tat end\t", "\r\n", "ünïcødé 🐦", "x\u{0B}\u{0C}y"])
    func copyTextEscaping(text: String) throws {
        var direct: [UInt8] = []
        try PostgresCopyWriter.appendEscaped(text: text, to: &direct)
        var viaBytes: [UInt8] = []
        PostgresCopyWriter.appendEscaped(Array(text.utf8), to: &viaBytes)
        #expect(direct == viaBytes)
        var buffer: [UInt8] = [1, 2]
        let error = #expect(throws: PostgresError.self) {
            try PostgresCopyWriter.appendEscaped(text: text + "\u{0}", to: &buffer)
        }
        #expect(error?.code == .invalidParameter)
    }

    /// Proves the COPY writer's integer digits equal `String(n)` across the Int64 range.
    @Test(arguments: [Int64.min, .min + 1, -1_000_000, -10, -9, -1, 0, 1, 9, 10, 99, 100, 1_234_567_890, .max - 1, .max])
    func copyDecimal(number: Int64) {
        var buffer: [UInt8] = [UInt8(ascii: "x")]
        PostgresCopyWriter.appendDecimal(number, to: &buffer)
        #expect(String(decoding: buffer, as: UTF8.self) == "x" + String(number))
    }

    /// Proves the integer decoder accepts the full Int64 range and rejects overflow and junk.
    @Test(arguments: [
        ("0", Int64?.some(0)), ("-9223372036854775808", .min), ("9223372036854775807", .max),
        ("9223372036854775808", nil), ("-9223372036854775809", nil), ("", nil), ("-", nil), ("1a", nil),
    ])
    func int64Decoding(text: String, expected: Int64?) {
        let bytes = Array(text.utf8)
        #expect(bytes.withUnsafeBufferPointer { PostgresTextDecoding.int64($0) } == expected)
    }

    /// Proves migration file names parse as NNNN_name.sql and nothing else.
    @Test(arguments: [
        ("0001_init.sql", Optional((1, "init"))), ("0042_add_heads.sql", (42, "add_heads")),
        ("1_x.sql", (1, "x")), ("init.sql", nil), ("0001.sql", nil), ("0001_.sql", nil), ("00a1_x.sql", nil),
    ])
    func migrationFileNames(file: String, expected: (Int, String)?) {
        let parsed = PostgresMigrator.parseFileName(file)
        #expect(parsed?.0 == expected?.0)
        #expect(parsed?.1 == expected?.1)
    }
}
