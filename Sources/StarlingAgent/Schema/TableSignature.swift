public import StarlingCore

/// What a synced table's capture and apply functions were generated from: its columns (name, SQL type,
/// generated or not, in `attnum` order) and its primary key. Stored in `starling.synced_tables.shape` when
/// they are installed, and compared with the catalog before every push and apply (``ShapeGuard``): a table
/// whose signature changed since (an `ALTER TABLE` run in this region) would otherwise diverge silently —
/// the functions keep the old column list — so its stream stops until the signatures agree again.
/// Pure: no IO.
public struct TableSignature: Sendable, Hashable {
    /// One column.
    public struct Column: Sendable, Hashable {
        public var name: String
        /// `format_type(atttypid, atttypmod)`.
        public var type: String
        public var isGenerated: Bool
        /// `attnum` (0 in signatures stored before schema changes were replicated): not compared, only what a
        /// schema change captured here is computed from (``SchemaChange/actions(from:to:)``).
        public var number: Int64

        public init(name: String, type: String, isGenerated: Bool, number: Int64 = 0) {
            self.name = name
            self.type = type
            self.isGenerated = isGenerated
            self.number = number
        }

        public static func == (a: Column, b: Column) -> Bool {
            a.name == b.name && a.type == b.type && a.isGenerated == b.isGenerated
        }

        public func hash(into hasher: inout Hasher) {
            hasher.combine(name)
            hasher.combine(type)
            hasher.combine(isGenerated)
        }
    }

    public var columns: [Column]
    public var key: [String]

    public init(columns: [Column], key: [String]) {
        self.columns = columns
        self.key = key
    }

    public init(_ shape: TableShape) {
        columns = shape.columns.map {
            Column(name: $0.name, type: $0.type, isGenerated: $0.isGenerated, number: $0.number)
        }
        key = shape.key
    }

    /// `{"columns":[{"name":…,"type":…,"generated":…}],"key":[…]}`: the stored form.
    public var json: JSONValue {
        .object([
            "columns": .array(
                columns.map {
                    .object([
                        "name": .string($0.name), "type": .string($0.type), "generated": .bool($0.isGenerated),
                        "number": .integer($0.number),
                    ])
                }),
            "key": .array(key.map(JSONValue.string)),
        ])
    }

    /// Parses the stored form; `what` names the source in the error.
    public init(json: JSONValue, what: String) throws(AgentError) {
        guard let columnValues = json["columns"]?.arrayValue, let keyValues = json["key"]?.arrayValue else {
            throw AgentError(code: .database, message: "\(what) is not a table signature", key: what)
        }
        var columns: [Column] = []
        for value in columnValues {
            guard let name = value["name"]?.stringValue, let type = value["type"]?.stringValue else {
                throw AgentError(code: .database, message: "\(what) has a column without name or type", key: what)
            }
            columns.append(
                Column(
                    name: name, type: type, isGenerated: value["generated"]?.boolValue ?? false,
                    number: value["number"]?.int64Value ?? 0))
        }
        self.init(columns: columns, key: keyValues.compactMap(\.stringValue))
    }

    /// The changes from `self` (installed) to `current` (the catalog now), as phrases an operator can act on,
    /// in column order: `column note text added`, `column qty removed`, `column qty: type integer → bigint`,
    /// `column label renamed or moved`, `primary key (id) → (id, region)`. Empty when they are equal.
    public func differences(to current: TableSignature) -> [String] {
        var result: [String] = []
        let old = Dictionary(columns.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let new = Dictionary(current.columns.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        for column in columns {
            guard let now = new[column.name] else {
                result.append("column \(column.name) removed")
                continue
            }
            if now.type != column.type { result.append("column \(column.name): type \(column.type) → \(now.type)") }
            if now.isGenerated != column.isGenerated {
                result.append("column \(column.name) \(now.isGenerated ? "became" : "is no longer") generated")
            }
        }
        for column in current.columns where old[column.name] == nil {
            result.append("column \(column.name) \(column.type) added")
        }
        if result.isEmpty && columns.map(\.name) != current.columns.map(\.name) {
            result.append("columns reordered (\(current.columns.map(\.name).joined(separator: ", ")))")
        }
        if key != current.key {
            result.append(
                "primary key (\(key.joined(separator: ", "))) → "
                    + (current.key.isEmpty ? "none" : "(\(current.key.joined(separator: ", ")))"))
        }
        return result
    }
}
