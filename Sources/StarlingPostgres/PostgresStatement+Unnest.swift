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
        guard rows.allSatisfy({ $0.count == columns.count }) else {
            throw PostgresError(
                code: .invalidParameter, message: "unnest insert into \(table): a row without \(columns.count) values")
        }
        var names: [String] = []
        var casts: [String] = []
        var params: [PostgresValue] = []
        for (index, column) in columns.enumerated() {
            names.append(try PostgresIdentifier.quoteName(column.name))
            casts.append("$\(index + 1)::\(column.type.sql)")
            let values = rows.map { $0[index] }
            // The column's values through `typed`; a value it does not take (and that is not NULL) is refused.
            func array<T>(_ typed: (PostgresValue) -> T?) throws(PostgresError) -> [T?] {
                let array = values.map(typed)
                guard zip(values, array).allSatisfy({ $1 != nil || $0 == .null }) else {
                    throw PostgresError(
                        code: .invalidParameter,
                        message: "unnest insert into \(table): column \(column.name) needs \(column.type.sql) values")
                }
                return array
            }
            switch column.type {
            case .text: params.append(.textArray(try array(\.textValue)))
            case .int64: params.append(.int64Array(try array(\.int64Value)))
            case .bool: params.append(.boolArray(try array(\.boolValue)))
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
