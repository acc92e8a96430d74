import StarlingCore
import StarlingPostgres
import Synchronization

/// Values captured under a shape the hub refused (README "Schema changes"): a region that changed a table in
/// another way than the hub has it writes rows under its own column types until the operator gives the table the
/// hub's shape. PostgreSQL converted the stored rows then; the captured images of the rows written meanwhile still
/// hold values of the refused types (a number where the hub has `text`), which the hub refuses (400) and which
/// would hold the region's pushes forever. Before such changes are pushed, every value that does not fit its
/// column's type here now is read again under that type: its text through the type's input, as PostgreSQL's I/O
/// cast does (`5` → `"5"`), or, where the type does not take it (the operator's `ALTER … USING` converted it in
/// another way), the row's value here now (JSON null when the row is gone: a later change of it follows).
extension Agent {
    /// The tables whose queued changes may hold such values: the table of a refused change the agent dropped, and
    /// every table of a push the hub refused with 400 (after a restart the refused change may be behind the slot's
    /// position while rows captured after it are not). Every push of them reads the table's shape and checks their
    /// values until the table's next schema change is in the log (the operator's, which gave it the hub's shape:
    /// the rows after it were captured under that shape). True when a table was not marked yet.
    func markForReimage(_ tables: some Sequence<String>) -> Bool {
        reimageTables.withLock { marked in
            let before = marked.count
            marked.formUnion(tables)
            return marked.count > before
        }
    }

    /// `changes` with the values that do not fit the types of their tables here read again (see above); the same
    /// array when nothing of a marked table is in it.
    func reimagingMisfits(_ changes: [Change]) async throws(AgentError) -> [Change] {
        let marked = reimageTables.withLock { $0 }
        guard !marked.isEmpty else { return changes }
        let tables = Set(changes.lazy.map(\.table)).intersection(marked)
        guard !tables.isEmpty else { return changes }
        return try await db { connection in
            var readers: [String: ImageReader] = [:]
            for table in tables {
                readers[table] = try ImageReader(shape: try TableShape.load(table: table, connection: connection))
            }
            var result = changes
            var count = 0
            for (index, change) in changes.enumerated() {
                guard let reader = readers[change.table] else { continue }
                func fitting(_ image: JSONObject?) throws -> JSONObject? {
                    try image.map { try reader.fitting($0, key: change.key, count: &count, connection: connection) }
                }
                let readBefore = count
                let (before, after) = (try fitting(change.before), try fitting(change.after))
                if count > readBefore { result[index] = change.withImages(before: before, after: after) }
            }
            if count > 0 {
                self.logger.warning(
                    "values captured under a refused schema change read again under the table's shape here",
                    metadata: ["agent.values": "\(count)", "agent.tables": "\(tables.sorted())"])
            }
            return result
        }
    }
}

/// Reads the misfit values of one table's images again on the agent's connection (``Agent/reimagingMisfits(_:)``).
private struct ImageReader {
    let sql: TableSQL
    /// Each column by name, with what its type asks of a value.
    let columns: [String: (column: TableShape.Column, kind: ColumnTypeCheck.Kind)]

    init(shape: TableShape) throws {
        sql = try TableSQL(shape: shape)
        columns = Dictionary(
            shape.columns.map { ($0.name, ($0, ColumnTypeCheck.Kind(type: $0.type))) }, uniquingKeysWith: { a, _ in a })
    }

    /// `image` (of the row `key`) with each value that its column's type here does not take read again.
    func fitting(_ image: JSONObject, key: JSONObject, count: inout Int, connection: PostgresConnection) throws
        -> JSONObject
    {
        var result = image
        for (name, value) in image {
            guard let (column, kind) = columns[name], ColumnTypeCheck.problem(kind: kind, value: value) != nil
            else { continue }
            result[name] = try read(value, column: column, key: key, connection: connection)
            count += 1
        }
        return result
    }

    /// The image value of `value`'s text under `column`'s type, or the row's value here when the type does not
    /// take that text.
    private func read(_ value: JSONValue, column: TableShape.Column, key: JSONObject, connection: PostgresConnection)
        throws -> JSONValue
    {
        let image = column.encoding.jsonSQL(of: "CAST($1::text AS \(column.type))")
        do {
            let rows = try connection.query("SELECT (\(image))::text", [.text(Self.text(of: value))])
            return try rows[0].optionalString(0).map { try JSONValue(parsing: $0) } ?? .null
        } catch let error as PostgresError where Self.isDataError(error) {
            let quoted = try PostgresIdentifier.quoteName(column.name)
            let rows = try connection.query(
                "SELECT (\(column.encoding.jsonSQL(of: "t.\(quoted)")))::text FROM \(sql.table) t "
                    + "WHERE \(try sql.keyMatch(key: "$1::jsonb"))",
                [.text(String(decoding: JSONValue.object(key).serialized(), as: UTF8.self))])
            return try rows.first?.optionalString(0).map { try JSONValue(parsing: $0) } ?? .null
        }
    }

    /// The text a value's image stands for: a number's digits, a string itself, `true`/`false` (what the
    /// boolean's cast to text gives), other JSON as its text.
    private static func text(of value: JSONValue) -> String {
        switch value {
        case .number(let digits): digits
        case .string(let text): text
        case .bool(let flag): flag ? "true" : "false"
        default: String(decoding: value.serialized(), as: UTF8.self)
        }
    }

    /// A value the type does not take (class 22, data exception): the caller reads the row's value instead.
    private static func isDataError(_ error: PostgresError) -> Bool {
        error.sqlState?.hasPrefix("22") ?? false
    }
}
