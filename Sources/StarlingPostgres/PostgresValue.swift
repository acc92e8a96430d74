/// A statement parameter, sent separately from the SQL text in PostgreSQL's text format.
///
/// Values are never spliced into SQL: `PostgresConnection.query` passes them to `PQexecParams` as
/// parameters, and `PostgresCopyWriter` escapes them for `COPY … FROM STDIN`. Scalars other than `.text`
/// carry their type OID so `SELECT $1 + 1` works with an `.int64`; `.text` is sent as type `unknown` so
/// the server can read it as any type (numeric, timestamptz, jsonb, uuid…). Arrays are sent as array
/// literals with every element quoted and escaped; in SQL write `$1::bigint[]` where the type is ambiguous.
public enum PostgresValue: Sendable, Hashable {
    case null
    case text(String)
    case int64(Int64)
    case int32(Int32)
    case double(Double)
    case bool(Bool)
    /// Raw bytes for a `bytea` parameter (sent as `\x` hex text).
    case bytes([UInt8])
    case textArray([String?])
    case int64Array([Int64?])
    case doubleArray([Double?])
    case boolArray([Bool?])
    case bytesArray([[UInt8]?])

    /// The type OID sent with the parameter (0 lets the server infer it from context).
    var typeOID: UInt32 {
        switch self {
        case .null, .text: return 0
        case .int64: return 20
        case .int32: return 23
        case .double: return 701
        case .bool: return 16
        case .bytes: return 17
        case .textArray: return 1009
        case .int64Array: return 1016
        case .doubleArray: return 1022
        case .boolArray: return 1000
        case .bytesArray: return 1001
        }
    }

    var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// Appends the value's text-format representation (without terminator) to `buffer`.
    /// Throws `invalidParameter` for text containing a NUL byte, which neither libpq nor PostgreSQL can carry.
    func encodeText(into buffer: inout [UInt8]) throws(PostgresError) {
        switch self {
        case .null:
            break
        case .text(let string):
            try Self.appendText(string, to: &buffer)
        case .int64(let value):
            buffer.append(contentsOf: String(value).utf8)
        case .int32(let value):
            buffer.append(contentsOf: String(value).utf8)
        case .double(let value):
            Self.appendDouble(value, to: &buffer)
        case .bool(let value):
            buffer.append(value ? UInt8(ascii: "t") : UInt8(ascii: "f"))
        case .bytes(let bytes):
            Self.appendHex(bytes, to: &buffer)
        case .textArray(let elements):
            try Self.appendArray(elements, to: &buffer) { (s: String, b: inout [UInt8]) throws(PostgresError) in
                try Self.appendText(s, to: &b)
            }
        case .int64Array(let elements):
            try Self.appendArray(elements, to: &buffer) { (v: Int64, b: inout [UInt8]) in
                b.append(contentsOf: String(v).utf8)
            }
        case .doubleArray(let elements):
            try Self.appendArray(elements, to: &buffer) { (v: Double, b: inout [UInt8]) in Self.appendDouble(v, to: &b)
            }
        case .boolArray(let elements):
            try Self.appendArray(elements, to: &buffer) { (v: Bool, b: inout [UInt8]) in
                b.append(v ? UInt8(ascii: "t") : UInt8(ascii: "f"))
            }
        case .bytesArray(let elements):
            try Self.appendArray(elements, to: &buffer) { (v: [UInt8], b: inout [UInt8]) in Self.appendHex(v, to: &b) }
        }
    }

    private static func appendText(_ string: String, to buffer: inout [UInt8]) throws(PostgresError) {
        let start = buffer.count
        buffer.append(contentsOf: string.utf8)
        if buffer[start...].contains(0) {
            buffer.removeSubrange(start...)
            throw PostgresError(code: .invalidParameter, message: "text parameter contains a NUL byte")
        }
    }

    /// PostgreSQL spells the special values `NaN`, `Infinity` and `-Infinity`; Swift's shortest round-trip
    /// description is accepted by float8in for everything else.
    private static func appendDouble(_ value: Double, to buffer: inout [UInt8]) {
        if value.isNaN {
            buffer.append(contentsOf: "NaN".utf8)
        } else if value.isInfinite {
            buffer.append(contentsOf: (value < 0 ? "-Infinity" : "Infinity").utf8)
        } else {
            buffer.append(contentsOf: value.description.utf8)
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// `bytea` hex format: `\x` followed by two lowercase hex digits per byte.
    static func appendHex(_ bytes: [UInt8], to buffer: inout [UInt8]) {
        buffer.reserveCapacity(buffer.count + 2 + bytes.count * 2)
        buffer.append(UInt8(ascii: "\\"))
        buffer.append(UInt8(ascii: "x"))
        for byte in bytes {
            buffer.append(hexDigits[Int(byte >> 4)])
            buffer.append(hexDigits[Int(byte & 0x0f)])
        }
    }

    /// A one-dimensional array literal: `{"a","b\"c",NULL}`. Every non-null element is double-quoted with
    /// `\` and `"` escaped, so commas, braces, spaces and the word NULL inside elements stay data.
    private static func appendArray<Element>(
        _ elements: [Element?], to buffer: inout [UInt8],
        element encode: (Element, inout [UInt8]) throws(PostgresError) -> Void
    ) throws(PostgresError) {
        buffer.append(UInt8(ascii: "{"))
        var scratch: [UInt8] = []
        for (index, element) in elements.enumerated() {
            if index > 0 { buffer.append(UInt8(ascii: ",")) }
            guard let element else {
                buffer.append(contentsOf: "NULL".utf8)
                continue
            }
            scratch.removeAll(keepingCapacity: true)
            try encode(element, &scratch)
            buffer.append(UInt8(ascii: "\""))
            for byte in scratch {
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { buffer.append(UInt8(ascii: "\\")) }
                buffer.append(byte)
            }
            buffer.append(UInt8(ascii: "\""))
        }
        buffer.append(UInt8(ascii: "}"))
    }
}

extension PostgresValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByNilLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int64) { self = .int64(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension PostgresValue {
    /// `.int64` from an `Int`.
    public static func int(_ value: Int) -> PostgresValue { .int64(Int64(value)) }

    /// `.text(value)`, or `.null` when `value` is nil.
    public static func optionalText(_ value: String?) -> PostgresValue { value.map { .text($0) } ?? .null }
}
