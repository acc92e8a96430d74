import StarlingCore
import StarlingTestSupport
import Testing

/// Tests of canonical serialization and lossless round trips.
struct JSONSerializerTests {
    static let canonical: [(JSONValue, String)] = [
        (.null, "null"),
        (true, "true"),
        (.number("-1.5E+10"), "-1.5E+10"),
        ("a\"b\\c/d\u{1}\u{1F}\n\t\r\u{8}\u{C}é𝄞", #""a\"b\\c/d\u0001\u001f\n\t\r\b\fé𝄞""#),
        (["b": 1, "a": 2, "A": 3, "é": 4, "aa": 5, "": 6], #"{"":6,"A":3,"a":2,"aa":5,"b":1,"é":4}"#),
        ([[], [:], [nil]], "[[],{},[null]]"),
        (.integer(Int64.min), "-9223372036854775808"),
        (.integer(Int64.max), "9223372036854775807"),
        (.integer(0), "0"),
    ]

    // Proves the serializer writes the exact canonical bytes: sorted keys, minimal escapes, raw UTF-8.
    @Test(arguments: canonical)
    func writesCanonicalBytes(value: JSONValue, expected: String) {
        #expect(value.canonicalText == expected)
    }

    // Proves numbers beyond Double precision survive parse → serialize → parse byte for byte.
    @Test(arguments: [
        "12345678901234567890.000000001", "9007199254740993", "-0.000000000000000000001",
        "1e400", "123456789012345678901234567890", "-0",
    ])
    func numbersAreLossless(text: String) throws {
        let value = try JSONValue(parsing: "[\(text)]")
        #expect(value.canonicalText == "[\(text)]")
        #expect(try JSONValue(parsing: value.serialized()) == value)
    }

    // Proves key order in the input never changes the output bytes.
    // Proves the in-place name order is the UTF-8 byte order: prefixes, non-ASCII, small and heap strings.
    @Test func namesSortByTheirUTF8Bytes() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = ["a", "b", "z", "A", "_", "é", "ü", "日", "😀", "\u{7f}", "0"]
        var names = ["", "a", "ab", "abc", "b", "é", "e\u{301}", "a_long_column_name_past_fifteen_bytes", "a_long_column"]
        for _ in 0..<300 {
            names.append((0..<Int.random(in: 0...20, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }.joined())
        }
        for a in names {
            for b in names.prefix(60) {
                #expect(JSONSerializer.namePrecedes(a, b) == a.utf8.lexicographicallyPrecedes(b.utf8), "\(a) \(b)")
            }
        }
    }

    // Proves the unordered bytes parse back to the same value as the canonical ones.
    @Test(arguments: canonical)
    func unorderedBytesHoldTheSameValue(value: JSONValue, text: String) throws {
        let nested: JSONValue = .object(["z": value, "a": .array([value, .object(["y": 1, "b": value])])])
        #expect(try JSONParser().parse(nested.unorderedBytes()) == nested)
        #expect(try JSONParser().parse(value.unorderedBytes()).serialized() == Array(text.utf8))
    }

    @Test func keyOrderIsIrrelevant() throws {
        let one = try JSONValue(parsing: #"{"z":1,"a":{"y":2,"b":3},"m":[{"q":1,"p":2}]}"#)
        let two = try JSONValue(parsing: #"{"m":[{"p":2,"q":1}],"a":{"b":3,"y":2},"z":1}"#)
        #expect(one.serialized() == two.serialized())
        #expect(one.canonicalText == #"{"a":{"b":3,"y":2},"m":[{"p":2,"q":1}],"z":1}"#)
    }

    // Proves every control character and escape round-trips through serialize and parse.
    @Test func allControlCharactersRoundTrip() throws {
        var text = ""
        for scalar in 0..<0x20 { text.unicodeScalars.append(Unicode.Scalar(UInt8(scalar))) }
        text += "\"\\/ end"
        let value = JSONValue.string(text)
        #expect(try JSONValue(parsing: value.serialized()) == value)
    }

    // Proves random documents round-trip: parse(serialize(v)) == v and serialization is a fixed point.
    @Test func randomRoundTrips() throws {
        var generator = SplitMix64(seed: 0x5EED)
        for _ in 0..<500 {
            let value = randomValue(depth: 0, using: &generator)
            let bytes = value.serialized()
            let reparsed = try JSONValue(parsing: bytes)
            #expect(reparsed == value)
            #expect(reparsed.serialized() == bytes)
        }
    }

    private func randomValue(depth: Int, using generator: inout SplitMix64) -> JSONValue {
        let pick = Int(generator.next() % (depth > 3 ? 5 : 7))
        switch pick {
        case 0: return .null
        case 1: return .bool(generator.next() % 2 == 0)
        case 2:
            let numbers = ["0", "-1", "3.25", "1e-9", "18446744073709551616", "-12345678901234567890.5"]
            return .number(numbers[Int(generator.next() % UInt64(numbers.count))])
        case 3, 4:
            let alphabet: [String] = ["a", "Z", "é", "☃", "𝄞", "\"", "\\", "\n", "\u{0}", "\u{7F}", " "]
            var text = ""
            for _ in 0..<(generator.next() % 8) { text += alphabet[Int(generator.next() % UInt64(alphabet.count))] }
            return .string(text)
        case 5:
            return .array((0..<(generator.next() % 4)).map { _ in randomValue(depth: depth + 1, using: &generator) })
        default:
            var object = JSONObject()
            for index in 0..<(generator.next() % 4) {
                object["k\(index)\(generator.next() % 3)"] = randomValue(depth: depth + 1, using: &generator)
            }
            return .object(object)
        }
    }
}
