public import StarlingCore

/// Turns a column value as logical decoding sends it (the type's text output, under the replication session's
/// settings: `extra_float_digits = 1`, `bytea_output = hex`, `DateStyle = ISO, YMD`, `IntervalStyle =
/// postgres`, `TimeZone = UTC` — the capture functions' settings, see ``TableSQL``) into the JSON value the
/// capture trigger writes for it (``TableSQL/valueExpression(_:_:)``), so an image is the same bytes whichever
/// way it was captured. Pure.
public enum DecodedValue {
    /// The image value of `text` (nil: SQL NULL) in `column`.
    public static func json(_ text: String?, column: TableShape.Column) throws(AgentError) -> JSONValue {
        try json(text, encoding: column.encoding, valueType: column.valueType, isArray: column.isArray)
    }

    /// The image value of `text` (nil: SQL NULL) in a column encoded as `encoding`, whose (domain-resolved)
    /// type, or array element type when `isArray`, is `valueType` (pg_type.typname: `int4`, `float8`, `jsonb`).
    public static func json(_ text: String?, encoding: ColumnEncoding, valueType: String, isArray: Bool)
        throws(AgentError) -> JSONValue
    {
        guard let text else { return .null }
        switch encoding {
        case .native:
            guard isArray else { return try scalar(text, type: valueType) }
            return try PostgresArrayText.parse(text).json { element throws(AgentError) in
                try scalar(element, type: valueType)
            }
        case .text, .jsonText, .bytea: return .string(text)
        case .timestamp: return .string(timestamp(text, zoned: false))
        case .timestamptz: return .string(timestamp(text, zoned: true))
        case .textArray:
            return try PostgresArrayText.parse(text).json { .string($0) }
        case .timestampArray, .timestamptzArray:
            let zoned = encoding == .timestamptzArray
            return try PostgresArrayText.parse(text).json { .string(timestamp($0, zoned: zoned)) }
        }
    }

    private static func scalar(_ text: String, type: String) throws(AgentError) -> JSONValue {
        switch type {
        case "int2", "int4", "oid": return .number(text)
        case "float4", "float8": return float(text)
        case "bool": return .bool(text == "t" || text == "true")
        case "jsonb", "json":
            do throws(CoreError) {
                return try JSONValue(parsing: text)
            } catch {
                throw AgentError(code: .capture, message: "decoded \(type) value is not JSON: \(error)")
            }
        default: return .string(text)
        }
    }

    /// `to_jsonb` of a float: NaN and the infinities as strings, other values as the number `numeric_in` reads
    /// from the float's text (jsonb numbers are numeric): `1e+20` → `100000000000000000000`, `1.5e-07` →
    /// `0.00000015`.
    static func float(_ text: String) -> JSONValue {
        switch text {
        case "NaN", "Infinity", "-Infinity": return .string(text)
        default:
            // numeric has no negative zero: `-0` reads as 0.
            let plain = plainDecimal(text)
            let isNegativeZero = plain.hasPrefix("-") && plain.dropFirst().allSatisfy { $0 == "0" || $0 == "." }
            return .number(isNegativeZero ? String(plain.dropFirst()) : plain)
        }
    }

    /// The plain decimal of a number in scientific notation, with `numeric_in`'s scale (fraction digits of the
    /// mantissa minus the exponent, at least 0). A text without an exponent is returned as is.
    static func plainDecimal(_ text: String) -> String {
        guard let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }), let exponent = Int(text[text.index(after: e)...])
        else { return text }
        var mantissa = Substring(text[..<e])
        let negative = mantissa.hasPrefix("-")
        if negative || mantissa.hasPrefix("+") { mantissa = mantissa.dropFirst() }
        let parts = mantissa.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts.first.map(String.init) ?? ""
        let fraction = parts.count > 1 ? String(parts[1]) : ""
        var digits = Array(whole + fraction)
        // The decimal point sits after `point` digits of `digits`.
        var point = whole.count + exponent
        let scale = max(0, fraction.count - exponent)
        if point <= 0 {
            digits = Array(repeating: "0", count: 1 - point) + digits
            point = 1
        }
        let wantedCount = point + scale
        if digits.count < wantedCount { digits += Array(repeating: "0", count: wantedCount - digits.count) }
        var integer = String(digits[..<point])
        while integer.count > 1 && integer.hasPrefix("0") { integer.removeFirst() }
        let fractionDigits = String(digits[point..<wantedCount])
        let body = scale > 0 ? integer + "." + fractionDigits : integer
        let isZero = body.allSatisfy { $0 == "0" || $0 == "." }
        return negative && !isZero ? "-" + body : body
    }

    /// `YYYY-MM-DD HH:MM:SS[.f…][+00]` (ISO output, UTC) as the trigger writes it: `T` between date and time,
    /// always six fraction digits, `+00:00` when zoned; `infinity`, `-infinity` and other forms unchanged.
    static func timestamp(_ text: String, zoned: Bool) -> String {
        // On the UTF-8 bytes: every timestamp a capture decodes goes through here (Character-wise it was a
        // visible share of the decoder's time). PostgreSQL's output is ASCII.
        var contiguous = text
        return contiguous.withUTF8 { bytes in
            var end = bytes.count
            if zoned {
                guard end >= 3, bytes[end - 3] == UInt8(ascii: "+"), bytes[end - 2] == UInt8(ascii: "0"),
                    bytes[end - 1] == UInt8(ascii: "0")
                else { return text }
                end -= 3
            }
            let space = UInt8(ascii: " ")
            guard let split = bytes[..<end].firstIndex(of: space) else { return text }
            let time = bytes[(split + 1)..<end]
            guard time.count >= 8, !time.contains(space) else { return text }
            var out: [UInt8] = []
            out.reserveCapacity(end + 10)
            out.append(contentsOf: bytes[..<split])
            out.append(UInt8(ascii: "T"))
            out.append(contentsOf: time)
            if let dot = time.firstIndex(of: UInt8(ascii: ".")) {
                let digits = end - dot - 1
                if digits < 6 { out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: 6 - digits)) }
            } else {
                out.append(contentsOf: ".000000".utf8)
            }
            if zoned { out.append(contentsOf: "+00:00".utf8) }
            return String(decoding: out, as: UTF8.self)
        }
    }
}

/// A PostgreSQL array literal's text (`{1,NULL,"a b"}`, `{{1,2},{3,4}}`, `[0:1]={a,b}`), parsed into its
/// nested elements. Bounds are dropped (as `to_jsonb` drops them). Pure.
enum PostgresArrayText: Equatable {
    case element(String?)
    case array([PostgresArrayText])

    static func parse(_ text: String) throws(AgentError) -> PostgresArrayText {
        var bytes = Array(text.utf8)[...]
        if bytes.first == UInt8(ascii: "[") {
            guard let equals = bytes.firstIndex(of: UInt8(ascii: "=")) else { throw malformed(text) }
            bytes = bytes[(equals + 1)...]
        }
        var parser = Parser(bytes: bytes, text: text)
        let value = try parser.array()
        parser.skipSpaces()
        guard parser.isAtEnd else { throw malformed(text) }
        return value
    }

    /// The JSON form: arrays nested, NULL as null, every other element through `element`.
    func json(_ element: (String) throws(AgentError) -> JSONValue) throws(AgentError) -> JSONValue {
        switch self {
        case .element(nil): return .null
        case .element(let text?): return try element(text)
        case .array(let items):
            var values: [JSONValue] = []
            values.reserveCapacity(items.count)
            for item in items { values.append(try item.json(element)) }
            return .array(values)
        }
    }

    static func malformed(_ text: String) -> AgentError {
        AgentError(code: .capture, message: "decoded array value is malformed: \(text.prefix(200))")
    }

    private struct Parser {
        var bytes: ArraySlice<UInt8>
        let text: String
        var isAtEnd: Bool { bytes.isEmpty }

        mutating func skipSpaces() {
            while let byte = bytes.first, byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D {
                bytes.removeFirst()
            }
        }

        mutating func array() throws(AgentError) -> PostgresArrayText {
            skipSpaces()
            guard bytes.popFirst() == UInt8(ascii: "{") else { throw PostgresArrayText.malformed(text) }
            var items: [PostgresArrayText] = []
            skipSpaces()
            if bytes.first == UInt8(ascii: "}") {
                bytes.removeFirst()
                return .array(items)
            }
            while true {
                skipSpaces()
                switch bytes.first {
                case UInt8(ascii: "{"): items.append(try array())
                case UInt8(ascii: "\""): items.append(.element(try quoted()))
                case .some: items.append(.element(try unquoted()))
                case nil: throw PostgresArrayText.malformed(text)
                }
                skipSpaces()
                switch bytes.popFirst() {
                case UInt8(ascii: ","): continue
                case UInt8(ascii: "}"): return .array(items)
                default: throw PostgresArrayText.malformed(text)
                }
            }
        }

        mutating func quoted() throws(AgentError) -> String {
            bytes.removeFirst()
            var out: [UInt8] = []
            while let byte = bytes.popFirst() {
                switch byte {
                case UInt8(ascii: "\\"):
                    guard let next = bytes.popFirst() else { throw PostgresArrayText.malformed(text) }
                    out.append(next)
                case UInt8(ascii: "\""):
                    return String(decoding: out, as: UTF8.self)
                default: out.append(byte)
                }
            }
            throw PostgresArrayText.malformed(text)
        }

        mutating func unquoted() throws(AgentError) -> String? {
            var out: [UInt8] = []
            while let byte = bytes.first, byte != UInt8(ascii: ","), byte != UInt8(ascii: "}") {
                bytes.removeFirst()
                if byte == UInt8(ascii: "\\") {
                    guard let next = bytes.popFirst() else { throw PostgresArrayText.malformed(text) }
                    out.append(next)
                } else {
                    out.append(byte)
                }
            }
            while let last = out.last, last == 0x20 || last == 0x09 { out.removeLast() }
            let value = String(decoding: out, as: UTF8.self)
            return value.lowercased() == "null" ? nil : value
        }
    }
}
