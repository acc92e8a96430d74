/// A synced table's shape: what a region registers with the hub (`POST /v1/tables/register`), what the hub
/// stores, checks every push against and reports in `/v1/config`, and what the agent generates its capture and
/// apply SQL from. One type for both sides, so the registration form has one encoder and one decoder.
///
/// On the wire a shape is `{"name":…,"columns":[{"name":…,"type":…}],"key":[…]}`: names and SQL types
/// (`format_type`) only. Each column's ``Column/encoding``, ``Column/isGenerated``, ``Column/valueType`` and
/// ``Column/isArray`` are what the agent reads from its region's catalog; they do not travel, and a shape
/// decoded from the wire has their defaults (the hub never uses them).
public struct TableShape: Sendable, Hashable {
    /// Qualified name as the hub's configuration spells it (`public.items`).
    public var name: String
    /// Columns in the region's `attnum` order.
    public var columns: [Column]
    /// Key column names in key order.
    public var key: [String]

    /// One column.
    public struct Column: Sendable, Hashable {
        public var name: String
        /// `format_type(atttypid, atttypmod)`: `bigint`, `numeric(30,10)`, `timestamp with time zone`, `text[]`.
        public var type: String
        /// How values of this column are written into JSON images (agent only).
        public var encoding: ColumnEncoding
        /// A generated column: captured, never written by apply (agent only).
        public var isGenerated: Bool
        /// The domain-resolved type's `typname` (`int4`, `jsonb`), or its element's for an array: how a decoded
        /// WAL value's text becomes JSON (agent only).
        public var valueType: String
        /// An array column (agent only).
        public var isArray: Bool
        /// `attnum`, which a rename or a type change keeps and an added column gets anew (agent only; 0 unknown).
        public var number: Int64
        /// The default's expression (`pg_get_expr`), nil without one (agent only): what an apply writes for a column
        /// an image lacks (written before its region applied the schema change that added it).
        public var defaultSQL: String?

        public init(
            name: String, type: String, encoding: ColumnEncoding = .text, isGenerated: Bool = false,
            valueType: String = "text", isArray: Bool = false, number: Int64 = 0, defaultSQL: String? = nil
        ) {
            self.number = number
            self.defaultSQL = defaultSQL
            self.name = name
            self.type = type
            self.encoding = encoding
            self.isGenerated = isGenerated
            self.valueType = valueType
            self.isArray = isArray
        }
    }

    public init(name: String, columns: [Column], key: [String]) {
        self.name = name
        self.columns = columns
        self.key = key
    }

    /// The registration form: `{"name":…,"columns":[{"name":…,"type":…}],"key":[…]}`.
    public var json: JSONValue {
        .object(["name": .string(name), "columns": columnsJSON, "key": .array(key.map(JSONValue.string))])
    }

    /// The columns' wire form, `[{"name":…,"type":…},…]` in column order: the registration's `columns`, the
    /// text the hub stores and the `columns` of each table in `/v1/config`.
    public var columnsJSON: JSONValue {
        .array(columns.map { .object(["name": .string($0.name), "type": .string($0.type)]) })
    }

    /// Whether `a` and `b` are the same columns: equal names and types, in any order (how registration, schema
    /// changes and their checks compare shapes).
    public static func sameColumns(_ a: [Column], _ b: [Column]) -> Bool {
        a.count == b.count
            && Dictionary(a.map { ($0.name, $0.type) }, uniquingKeysWith: { x, _ in x })
                == Dictionary(b.map { ($0.name, $0.type) }, uniquingKeysWith: { x, _ in x })
    }

    /// Each column's SQL type by name.
    public var columnTypes: [String: String] {
        Dictionary(columns.map { ($0.name, $0.type) }, uniquingKeysWith: { first, _ in first })
    }

    /// Decodes the registration form. Every key column must be a column; the key may be empty (the hub refuses
    /// that with its own answer, naming the fix). Errors name the member (`columns[2].type`).
    public init(json: JSONValue) throws(CoreError) {
        let reader = try JSONObjectReader(json, what: "a table shape", code: .invalidValue)
        let name = try reader.string("name")
        guard let key = try reader.value("key").arrayValue else { throw reader.failure("key", "\"key\" must be a list") }
        let columns = try Self.columns(json: try reader.value("columns"))
        var keyNames: [String] = []
        for (index, member) in key.enumerated() {
            guard let keyName = member.stringValue else {
                throw CoreError(code: .invalidValue, message: "key must be a list of column names", field: "key[\(index)]")
            }
            guard columns.contains(where: { $0.name == keyName }) else {
                throw CoreError(
                    code: .invalidValue, message: "\(keyName) is not a column of table \(name)", field: "key[\(index)]")
            }
            keyNames.append(keyName)
        }
        self.init(name: name, columns: columns, key: keyNames)
    }

    /// Decodes a shape's `columns` (``columnsJSON``): each a `{"name":…,"type":…}` object.
    public static func columns(json: JSONValue) throws(CoreError) -> [Column] {
        guard let list = json.arrayValue else {
            throw CoreError(code: .invalidValue, message: "\"columns\" must be a list", field: "columns")
        }
        var columns: [Column] = []
        for (index, member) in list.enumerated() {
            guard let name = member["name"]?.stringValue, let type = member["type"]?.stringValue else {
                throw CoreError(
                    code: .invalidValue, message: "each column needs name and type", field: "columns[\(index)]")
            }
            columns.append(Column(name: name, type: type))
        }
        return columns
    }
}

/// How a column's value is written into a JSON image (DESIGN.md "JSON shapes": lossless).
public enum ColumnEncoding: String, Sendable, Hashable {
    /// `to_jsonb(value)`: smallint, integer, real/double (NaN/Infinity become strings), boolean, text,
    /// varchar, char, uuid, date, json, jsonb, and arrays of these.
    case native
    /// A JSON string of the text form: bigint, numeric (a parser could round them), and types without a
    /// JSON form (interval, inet, enums…).
    case text
    /// `"\x…"` lowercase hex.
    case bytea
    /// A `json` value as a JSON string of its exact text (whitespace, key order and duplicate keys are part of
    /// a `json` value; a nested jsonb image would normalise them). Apply parses the text back with `::json`.
    case jsonText
    /// `"YYYY-MM-DDTHH:MM:SS.ffffff"` (always six fraction digits); `infinity` as text.
    case timestamp
    /// `"YYYY-MM-DDTHH:MM:SS.ffffff+00:00"` in UTC.
    case timestamptz
    /// An array of the text forms (bigint[], numeric[], bytea[] as hex, others without a JSON form); keeps
    /// NULL elements and dimensions.
    case textArray
    /// A one-dimensional array of `timestamp` strings.
    case timestampArray
    /// A one-dimensional array of `timestamptz` strings.
    case timestamptzArray

    /// The encoding for a column whose (domain-resolved) type is `base`, with array element type `element`.
    public static func of(base: String, element: String?) -> ColumnEncoding {
        if let element {
            switch element {
            case "timestamp": return .timestampArray
            case "timestamptz": return .timestamptzArray
            case _ where nativeTypes.contains(element): return .native
            default: return .textArray
            }
        }
        switch base {
        case "bytea": return .bytea
        case "json": return .jsonText
        case "timestamp": return .timestamp
        case "timestamptz": return .timestamptz
        case _ where nativeTypes.contains(base): return .native
        default: return .text
        }
    }

    /// Types whose `to_jsonb` form is lossless and parsed back exactly by their input function.
    public static let nativeTypes: Set<String> = [
        "int2", "int4", "float4", "float8", "bool", "text", "varchar", "bpchar", "char", "name", "uuid", "date",
        "json", "jsonb", "oid",
    ]
}

