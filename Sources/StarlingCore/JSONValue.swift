/// A JSON object: member name to value. Row images, keys and wire objects are all `JSONObject`s.
public typealias JSONObject = [String: JSONValue]

/// A JSON value, losslessly: numbers keep their exact source text and are never converted through `Double`,
/// so a bigint beyond 2^53 or a numeric like `12345678901234567890.000000001` survives any number of round
/// trips byte for byte.
///
/// Equality is structural. Numbers compare by their text (`1` and `1.0` differ: the hub compares images that
/// one producer, PostgreSQL, wrote, so the text is canonical for a given value); strings compare with Swift's
/// `String` equality. Objects are unordered; ``JSONSerializer`` writes their members sorted by the UTF-8
/// bytes of the name, so the same value always gives the same bytes.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// The number's text exactly as in RFC 8259's `number` grammar (`-?int frac? exp?`).
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// A number holding `value` in decimal.
    public static func integer(_ value: Int64) -> JSONValue { .number(String(value)) }

    /// A number holding `value` in decimal.
    public static func integer(_ value: Int) -> JSONValue { .number(String(value)) }
}

// MARK: - Convenience accessors

extension JSONValue {
    /// The member `key` when this is an object that has it; `nil` otherwise.
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    /// The element at `index` when this is an array that long; `nil` otherwise.
    public subscript(index: Int) -> JSONValue? {
        if case .array(let array) = self, array.indices.contains(index) { return array[index] }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The raw text of a number; `nil` for every other kind.
    public var numberText: String? {
        if case .number(let text) = self { return text }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The value as an `Int64` when it is an integral number (`42`, `-7`) or a string of such digits
    /// (`"42"`, the lossless form of a bigint); `nil` for fractions, exponents, overflow and other kinds.
    public var int64Value: Int64? {
        switch self {
        case .number(let text), .string(let text): return JSONValue.parseInt64(text)
        default: return nil
        }
    }

    /// Strict decimal `Int64`: optional `-`, then digits, no leading zeros (except `0` itself), no overflow.
    static func parseInt64(_ text: String) -> Int64? { parseInt64(utf8: text.utf8[...]) }

    /// ``parseInt64(_:)`` over UTF-8 bytes (a reader's number, straight from the document).
    static func parseInt64<Bytes: Collection<UInt8>>(utf8 text: Bytes) -> Int64? where Bytes.SubSequence == Bytes {
        var utf8 = text
        let isNegative = utf8.first == UInt8(ascii: "-")
        if isNegative { utf8 = utf8.dropFirst() }
        guard let first = utf8.first, utf8.count <= 19 else { return nil }
        if first == UInt8(ascii: "0") && utf8.count > 1 { return nil }
        var magnitude: UInt64 = 0
        for byte in utf8 {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            magnitude = magnitude * 10 + UInt64(byte - UInt8(ascii: "0"))
        }
        if isNegative {
            guard magnitude <= UInt64(Int64.max) + 1 else { return nil }
            return magnitude == UInt64(Int64.max) + 1 ? Int64.min : -Int64(magnitude)
        }
        guard magnitude <= UInt64(Int64.max) else { return nil }
        return Int64(magnitude)
    }
}

// MARK: - Literals (for tests and hand-built values)

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }

    /// Later duplicates replace earlier ones.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject(minimumCapacity: elements.count)
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
}
