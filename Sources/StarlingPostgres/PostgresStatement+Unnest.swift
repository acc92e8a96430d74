/// The element type of one column of an ``PostgresStatement/unnestInsert(into:columns:rows:name:)``.
public enum PostgresArrayType: Sendable {
    case text
    case int64
    case bool

    var sql: String {
        switch self {
        case .text: "text[]"
        case .int64: "bigint[]"
        case .bool: "boolean[]"
        }
    }
}

extension PostgresStatement {
    /// `INSERT INTO table (columns) SELECT * FROM unnest($1::type[], …)`: the rows COPY would write, as one
    /// statement with an array parameter per column, so it can share a pipeline's round trip with others (COPY
    /// cannot run in a pipeline). For a few rows; COPY stays cheaper for many. Each row has one value per column,
    /// of the column's type or `.null`; anything else is refused (`invalidParameter`), never sent as NULL.
    public static func unnestInsert(
        into table: String, columns: [(name: String, type: PostgresArrayType)], rows: [[PostgresValue]],
        name: String? = nil
    ) throws(PostgresError) -> PostgresStatement {
        var names: [String] = []
        var casts: [String] = []
        var params: [PostgresValue] = []
        for (index, column) in columns.enumerated() {
            names.append(try PostgresIdentifier.quoteName(column.name))
            casts.append("$\(index + 1)::\(column.type.sql)")
            let values = rows.map { $0.count == columns.count ? $0[index] : .null }
            func mismatch() -> PostgresError {
                PostgresError(
                    code: .invalidParameter,
                    message: "unnest insert into \(table): column \(column.name) needs \(column.type.sql) values")
            }
            guard rows.allSatisfy({ $0.count == columns.count }) else { throw mismatch() }
            switch column.type {
            case .text:
                let texts = values.map(\.textValue)
                guard zip(values, texts).allSatisfy({ $1 != nil || $0 == .null }) else { throw mismatch() }
                params.append(.textArray(texts))
            case .int64:
                let numbers = values.map(\.int64Value)
                guard zip(values, numbers).allSatisfy({ $1 != nil || $0 == .null }) else { throw mismatch() }
                params.append(.int64Array(numbers))
            case .bool:
                let flags = values.map(\.boolValue)
                guard zip(values, flags).allSatisfy({ $1 != nil || $0 == .null }) else { throw mismatch() }
                params.append(.boolArray(flags))
            }
        }
        return PostgresStatement(
            "INSERT INTO \(try PostgresIdentifier.quote(table)) (\(names.joined(separator: ", "))) "
                + "SELECT * FROM unnest(\(casts.joined(separator: ", ")))", params, name: name)
    }
}

extension PostgresValue {
    /// The text of a `.text` value (nil otherwise), to build array parameters from COPY-shaped rows.
    public var textValue: String? {
        if case .text(let text) = self { return text }
        return nil
    }

    /// The integer of an `.int64` value (nil otherwise).
    public var int64Value: Int64? {
        if case .int64(let value) = self { return value }
        return nil
    }

    /// The flag of a `.bool` value (nil otherwise).
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }
}
