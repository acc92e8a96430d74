/// Whether a JSON value in a pushed image can be a value of its column's PostgreSQL type, as the capture encodes
/// it (the lossless image form, README "HTTP API"): integers as numbers (bigint also as a string), numeric as a
/// string or number, floats as numbers or `NaN`/`Infinity` strings, booleans as JSON booleans, text-like and
/// date/time types as strings, bytea as `\x` hex, uuid as its 32 hex digits, jsonb as any JSON, json as its
/// text, arrays as JSON arrays. SQL NULL (JSON null) fits every column: NOT NULL is the database's to enforce.
///
/// The type is the registered `format_type` text (`integer`, `numeric(12,2)`, `character varying(20)`,
/// `timestamp with time zone`, `integer[]`). A type this check does not know (enums, domains, composite and
/// other user types) accepts any value: the hub sees only the name, and a domain over `integer` is encoded as
/// an integer while an enum is a string, so refusing there could refuse a correct image. Pure.
public enum ColumnTypeCheck {
    /// What a column's type asks of a value, worked out once per registered shape (``init(type:)``), not per
    /// value: a push checks every value of every image.
    public enum Kind: Sendable, Hashable {
        case array, smallint, integer, bigint, numeric, float, boolean, bytea, uuid, string
        /// jsonb, and the types this check does not know: any value.
        case any

        /// The kind of a `format_type` text.
        public init(type: String) {
            if type.hasSuffix("[]") {
                self = .array
                return
            }
            switch ColumnTypeCheck.baseName(type) {
            case "smallint": self = .smallint
            case "integer": self = .integer
            case "bigint", "oid": self = .bigint
            case "numeric": self = .numeric
            case "real", "double precision": self = .float
            case "boolean": self = .boolean
            case "bytea": self = .bytea
            case "uuid": self = .uuid
            case "json", "text", "character varying", "character", "\"char\"", "name", "bpchar", "date", "time",
                "timestamp", "interval", "inet", "cidr", "macaddr", "xml", "money", "bit", "bit varying", "tsvector":
                self = .string
            default: self = .any
            }
        }
    }

    /// What a value of `type` must look like, when `value` is not one; nil when it fits.
    public static func problem(type: String, value: JSONValue) -> String? {
        problem(kind: Kind(type: type), value: value)
    }

    /// What a value of a column of `kind` must look like, when `value` is not one; nil when it fits.
    public static func problem(kind: Kind, value: JSONValue) -> String? {
        if case .null = value { return nil }
        switch kind {
        case .array:
            if case .array = value { return nil }
            return "a JSON array"
        case .smallint: return integer(value, range: -32768...32767) ? nil : "an integer in -32768...32767"
        case .integer: return integer(value, range: -2_147_483_648...2_147_483_647) ? nil : "a 32-bit integer"
        case .bigint: return integer(value, range: Int64.min...Int64.max) ? nil : "a 64-bit integer"
        case .numeric: return decimal(value) ? nil : "a decimal number"
        case .float: return decimal(value) ? nil : "a number"
        case .boolean:
            if case .bool = value { return nil }
            return "true or false"
        case .bytea:
            guard case .string(let text) = value, isHexBytes(text) else { return "a \\x hex string" }
            return nil
        case .uuid:
            guard case .string(let text) = value, isUUID(text) else { return "a uuid string" }
            return nil
        case .string:
            if case .string = value { return nil }
            return "a string"
        case .any: return nil
        }
    }

    /// `format_type` text without its modifiers and time zone words: `numeric(12,2)` → `numeric`,
    /// `timestamp(3) with time zone` → `timestamp`, `character varying(20)` → `character varying`.
    static func baseName(_ type: String) -> String {
        var name = ""
        var depth = 0
        for character in type {
            if character == "(" { depth += 1 } else if character == ")" { depth -= 1 } else if depth == 0 {
                name.append(character)
            }
        }
        name = name.trimmingSpaces
        for suffix in [" without time zone", " with time zone"] where name.hasSuffix(suffix) {
            name = name.dropLast(suffix.count).trimmingSpaces
        }
        return name
    }

    private static func integer(_ value: JSONValue, range: ClosedRange<Int64>) -> Bool {
        let text: String
        switch value {
        case .number(let number): text = number
        case .string(let string): text = string
        default: return false
        }
        guard let parsed = JSONValue.parseInt64(text) else { return false }
        return range.contains(parsed)
    }

    private static func decimal(_ value: JSONValue) -> Bool {
        switch value {
        case .number: return true
        case .string(let text): return text == "NaN" || text == "Infinity" || text == "-Infinity" || isDecimalText(text)
        default: return false
        }
    }

    /// `-?digits(.digits)?([eE][+-]?digits)?`, or with the digits only after the point (`.5`).
    static func isDecimalText(_ text: String) -> Bool {
        var bytes = Substring(text).utf8[...]
        if bytes.first == UInt8(ascii: "-") || bytes.first == UInt8(ascii: "+") { bytes = bytes.dropFirst() }
        let isDigit = { (byte: UInt8) in byte >= 48 && byte <= 57 }
        let whole = bytes.prefix(while: isDigit)
        bytes = bytes.dropFirst(whole.count)
        var fraction = 0
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            fraction = bytes.prefix(while: isDigit).count
            bytes = bytes.dropFirst(fraction)
        }
        guard whole.count + fraction > 0 else { return false }
        if bytes.first == UInt8(ascii: "e") || bytes.first == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            if bytes.first == UInt8(ascii: "-") || bytes.first == UInt8(ascii: "+") { bytes = bytes.dropFirst() }
            let exponent = bytes.prefix(while: isDigit).count
            guard exponent > 0 else { return false }
            bytes = bytes.dropFirst(exponent)
        }
        return bytes.isEmpty
    }

    private static func isHexBytes(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 2, bytes[0] == UInt8(ascii: "\\"), bytes[1] == UInt8(ascii: "x"),
            bytes.count % 2 == 0
        else { return false }
        return bytes.dropFirst(2).allSatisfy(isHexDigit)
    }

    /// 32 hex digits, with dashes and braces anywhere PostgreSQL's input allows them (loosely: any).
    private static func isUUID(_ text: String) -> Bool {
        var digits = 0
        for byte in text.utf8 {
            if isHexDigit(byte) {
                digits += 1
            } else if byte != UInt8(ascii: "-") && byte != UInt8(ascii: "{") && byte != UInt8(ascii: "}") {
                return false
            }
        }
        return digits == 32
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 70) || (byte >= 97 && byte <= 102)
    }
}
