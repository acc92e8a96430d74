import StarlingCore
import Testing

/// Tests of the strict RFC 8259 parser: golden values, malformed input with offsets, limits.
struct JSONParserTests {
    @Test("a string's special byte is found at any offset of the eight-byte scan")
    func specialBytesAtEveryOffset() throws {
        // Proves JSONReader.plainRunEnd: the quote, escape, control byte or multi-byte character at each offset of
        // two words is seen, whether the string is read, skipped or copied into an array element.
        for offset in 0..<17 {
            let lead = String(repeating: "a", count: offset), tail = String(repeating: "b", count: 9)
            for (special, decoded) in [(#"\""#, "\""), (#"\\"#, "\\"), (#"\n"#, "\n"), ("é", "é"), ("😀", "😀")] {
                let text = "\"" + lead + special + tail + "\""
                #expect(try JSONValue(parsing: text) == .string(lead + decoded + tail), "\(offset) \(special)")
                #expect(try JSONValue(parsing: "[" + text + ",1]") == .array([.string(lead + decoded + tail), .integer(1)]))
                var writer = ColumnArrayWriter(columns: ["s"])
                let appended = writer.append(json: Array(("{\"x\":" + text + ",\"s\":" + text + "}").utf8))
                #expect(appended)
                let element = String((lead + decoded + tail).flatMap { $0 == "\\" || $0 == "\"" ? ["\\", $0] : [$0] })
                #expect(writer.finish() == ["{\"" + element + "\"}"], "\(offset) \(special)")
            }
            #expect(throws: CoreError.self) { try JSONValue(parsing: "\"" + lead + "\u{1}" + tail + "\"") }
            #expect(throws: CoreError.self) { try JSONValue(parsing: Array(("\"" + lead).utf8) + [0xFF] + Array((tail + "\"").utf8)) }
            #expect(throws: CoreError.self) { try JSONValue(parsing: "\"" + lead + tail) }
        }
    }

    static let golden: [(String, JSONValue)] = [
        ("null", .null),
        ("true", .bool(true)),
        ("false", .bool(false)),
        ("0", .number("0")),
        ("-0", .number("-0")),
        ("42", .number("42")),
        ("-12.5e+3", .number("-12.5e+3")),
        ("1E-7", .number("1E-7")),
        ("\"\"", .string("")),
        ("\"héllo ☃ 𝄞\"", .string("héllo ☃ 𝄞")),
        (#""\"\\\/\b\f\n\r\t""#, .string("\"\\/\u{08}\u{0C}\n\r\t")),
        (#""\u0041\u00e9\u2603""#, .string("Aé☃")),
        (#""\ud834\udd1e""#, .string("𝄞")),
        (#""a\u0000b""#, .string("a\u{0}b")),
        ("[]", .array([])),
        ("{}", .object([:])),
        (" \t\r\n[1 , \"a\" ,{ \"k\" : null } ] \n", .array([1, "a", ["k": nil]])),
        (#"{"a":{"b":[true,false]},"c":"d"}"#, ["a": ["b": [true, false]], "c": "d"]),
        ("18446744073709551617", .number("18446744073709551617")),
        ("12345678901234567890.000000001", .number("12345678901234567890.000000001")),
    ]

    // Proves every golden JSON text parses to the expected value.
    @Test(arguments: golden)
    func parsesGolden(text: String, expected: JSONValue) throws {
        #expect(try JSONValue(parsing: text) == expected)
    }

    static let malformed: [(String, Int)] = [
        ("", 0),
        ("   ", 3),
        ("nul", 3),
        ("tru", 3),
        ("nulll", 4),
        ("01", 1),
        ("-01", 2),
        ("-", 1),
        ("+1", 0),
        ("1.", 2),
        (".5", 0),
        ("1e", 2),
        ("1e+", 3),
        ("0x10", 1),
        ("NaN", 0),
        ("[1,]", 3),
        ("[1 2]", 3),
        ("[", 1),
        ("{\"a\" 1}", 5),
        ("{\"a\":1,}", 7),
        ("{a:1}", 1),
        ("{\"a\":1 \"b\":2}", 7),
        ("{\"a\":1,\"a\":2}", 7),
        ("\"abc", 4),
        ("\"a\tb\"", 2),
        ("\"\\x\"", 2),
        ("\"\\u12G4\"", 5),
        ("\"\\udc00\"", 1),
        ("\"\\ud800\"", 7),
        ("\"\\ud800\\u0041\"", 9),
        ("[] []", 3),
        ("1 x", 2),
        ("'a'", 0),
        ("\u{FEFF}1", 0),
    ]

    // Proves malformed inputs are refused with `.malformedJSON` at the byte offset of the fault.
    @Test(arguments: malformed)
    func refusesMalformed(text: String, offset: Int) {
        #expect {
            _ = try JSONValue(parsing: text)
        } throws: { error in
            guard let error = error as? CoreError else { return false }
            return error.code == .malformedJSON && error.offset == offset
        }
    }

    static let invalidUTF8: [[UInt8]] = [
        [0x22, 0x80, 0x22],  // lone continuation byte
        [0x22, 0xC0, 0xAF, 0x22],  // overlong '/'
        [0x22, 0xC1, 0xBF, 0x22],  // overlong
        [0x22, 0xE0, 0x80, 0xAF, 0x22],  // overlong 3-byte
        [0x22, 0xED, 0xA0, 0x80, 0x22],  // encoded surrogate U+D800
        [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],  // above U+10FFFF
        [0x22, 0xF5, 0x80, 0x80, 0x80, 0x22],  // invalid lead
        [0x22, 0xE2, 0x98, 0x22],  // truncated 3-byte
        [0x22, 0xF0, 0x9D, 0x84],  // truncated at end of input
        [0x22, 0xFF, 0x22],
        [0x22, 0x5C, 0x6E, 0xC3, 0x28, 0x22],  // invalid after an escape (slow path)
    ]

    // Proves invalid UTF-8 inside strings is refused on both the fast and the escape path.
    @Test(arguments: invalidUTF8)
    func refusesInvalidUTF8(bytes: [UInt8]) {
        #expect(throws: CoreError.self) { try JSONValue(parsing: bytes) }
    }

    // Proves valid multi-byte sequences at each length boundary are accepted byte-exactly.
    @Test func acceptsUTF8Boundaries() throws {
        let text = "\u{80}\u{7FF}\u{800}\u{FFFF}\u{10000}\u{10FFFF}\u{D7FF}\u{E000}"
        let parsed = try JSONValue(parsing: Array(("\"" + text + "\"").utf8))
        #expect(parsed == .string(text))
        #expect(Array(parsed.stringValue!.utf8) == Array(text.utf8))
    }

    // Proves the error message says the offset and what was expected.
    @Test func errorMessageNamesOffsetAndExpectation() {
        do {
            _ = try JSONValue(parsing: "{\"a\":1 \"b\"}")
            Issue.record("parsed malformed input")
        } catch {
            #expect(error.offset == 7)
            #expect(error.message.contains("expected ',' or '}'"))
            #expect(error.message.contains("byte 7"))
        }
    }

    // Proves nesting up to maxDepth parses and one level more is refused with `.limitExceeded`.
    @Test(arguments: [1, 2, 10, 64])
    func depthLimit(maxDepth: Int) throws {
        let parser = JSONParser(limits: .init(maxDepth: maxDepth))
        let ok = String(repeating: "[", count: maxDepth) + String(repeating: "]", count: maxDepth)
        #expect(throws: Never.self) { try parser.parse(ok) }
        let deep = "[" + ok + "]"
        #expect {
            try parser.parse(deep)
        } throws: { ($0 as? CoreError)?.code == .limitExceeded }
        let deepObject =
            String(repeating: "{\"a\":", count: maxDepth + 1) + "1" + String(repeating: "}", count: maxDepth + 1)
        #expect {
            try parser.parse(deepObject)
        } throws: { ($0 as? CoreError)?.code == .limitExceeded }
    }

    // Proves a hostile 100k-deep input is refused by the limit instead of overflowing the stack.
    @Test func hostileDepthRefused() {
        let text = String(repeating: "[", count: 100_000)
        #expect { try JSONValue(parsing: text) } throws: { ($0 as? CoreError)?.code == .limitExceeded }
    }

    // Proves inputs above maxBytes are refused before parsing, and inputs at the limit accepted.
    @Test func byteLimit() throws {
        let parser = JSONParser(limits: .init(maxBytes: 8))
        #expect(try parser.parse("\"123456\"") == "123456")
        #expect { try parser.parse("\"1234567\"") } throws: { ($0 as? CoreError)?.code == .limitExceeded }
    }

    // Proves no proper prefix of a valid document parses: the parser needs the whole buffer.
    @Test func everyPrefixOfAValidDocumentIsRefused() throws {
        let text = #"{"id":"eu-west:1","n":[1,-2.5e3,true,null,"\u00e9\ud834\udd1e"],"o":{"x":"y"}}"#
        let bytes = Array(text.utf8)
        #expect(try JSONValue(parsing: bytes).objectValue?.count == 3)
        for cut in 0..<bytes.count {
            #expect(throws: CoreError.self) { try JSONValue(parsing: Array(bytes[..<cut])) }
        }
    }

    // Proves the parse result does not depend on where the bytes came from (array vs raw buffer slice).
    @Test func rawBufferAndArrayAgree() throws {
        let bytes = Array("xx[1,{\"a\":\"b\"}]yy".utf8)
        let fromSlice = try bytes.withUnsafeBytes { buffer in
            try JSONParser().parse(UnsafeRawBufferPointer(rebasing: buffer[2..<(bytes.count - 2)]))
        }
        #expect(fromSlice == [1, ["a": "b"]])
    }

    // Proves the accessors read members, elements and integers (numbers or decimal strings) strictly.
    @Test func accessors() throws {
        let value = try JSONValue(
            parsing: #"{"a":[1,"2"],"big":"9223372036854775807","neg":-9223372036854775808,"#
                + #""over":9223372036854775808,"frac":1.5,"lead":"01","s":"x","b":true,"n":null}"#)
        #expect(value["a"]?[0]?.int64Value == 1)
        #expect(value["a"]?[1]?.int64Value == 2)
        #expect(value["a"]?[2] == nil)
        #expect(value["big"]?.int64Value == Int64.max)
        #expect(value["neg"]?.int64Value == Int64.min)
        #expect(value["over"]?.int64Value == nil)
        #expect(value["frac"]?.int64Value == nil)
        #expect(value["lead"]?.int64Value == nil)
        #expect(value["s"]?.stringValue == "x")
        #expect(value["b"]?.boolValue == true)
        #expect(value["n"]?.isNull == true)
        #expect(value["missing"] == nil)
        #expect(value["frac"]?.numberText == "1.5")
        #expect(value["s"]?["x"] == nil)
    }
}
