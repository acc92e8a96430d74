/// A schema change as its log entry carries it (kind ``LogEntryKind/schema``): the change, the table's shape
/// after it, that shape's version (1 is the first registered shape) and how images written before it read after
/// it (``ImageRules``: the hub rewrote its heads with them). The entry's key is the empty object and its `row` is
/// ``row``: `{"actions":[…],"columns":[{"name":…,"type":…}],"key":[…],"rules":{…},"statement":…,"table":…,
/// "version":N}`.
public struct SchemaEntry: Sendable, Hashable {
    public var change: SchemaChange
    public var shape: TableShape
    public var version: Int64
    public var rules: ImageRules

    public init(change: SchemaChange, shape: TableShape, version: Int64, rules: ImageRules = ImageRules()) {
        self.change = change
        self.shape = shape
        self.version = version
        self.rules = rules
    }

    /// The entry's row.
    public var row: JSONObject {
        var object = change.json.objectValue ?? [:]
        object["columns"] = shape.columnsJSON
        object["key"] = .array(shape.key.map(JSONValue.string))
        object["version"] = .integer(version)
        object["rules"] = rules.json
        return object
    }

    /// Reads the change out of a log entry of kind `schema`.
    public init(entry: LogEntry) throws(CoreError) {
        guard entry.kind == .schema, let row = entry.row else {
            throw CoreError(code: .invalidValue, message: "log entry \(entry.seq) is not a schema change", field: "row")
        }
        try self.init(row: row, table: entry.table)
    }

    /// Reads ``row``; `table` is the entry's table.
    public init(row: JSONObject, table: String) throws(CoreError) {
        var object = row
        object["table"] = .string(table)
        let change = try SchemaChange(json: .object(object))
        let shape = try TableShape(
            json: .object(["name": .string(table), "columns": row["columns"] ?? .null, "key": row["key"] ?? .null]))
        guard let version = row["version"]?.int64Value, version >= 1 else {
            throw CoreError(code: .invalidValue, message: "a schema change needs its version", field: "version")
        }
        self.init(
            change: change, shape: shape, version: version,
            rules: try row["rules"].map { value throws(CoreError) in try ImageRules(json: value) } ?? ImageRules())
    }
}
