import StarlingCore
import StarlingHTTP2

extension HubRegistry {
    /// Refuses a registration whose table lists a delta column that the region's table lacks, that is part of
    /// the primary key, or whose type has no exact arithmetic (``DeltaColumn/Kind``): 409
    /// `invalid_delta_column` naming the table, the column, its type and the fix. Checked at every region's
    /// registration, so an agent stops at start with the message instead of syncing a counter wrongly.
    static func checkDeltaColumns(_ tables: [TableShape], settings: HubSettings) throws(HTTPError) {
        for table in tables {
            let types = table.columnTypes
            for column in settings.tablesByName[table.name]?.deltaColumns ?? [] {
                if let problem = deltaProblem(table: table.name, column: column, types: types, key: table.key) {
                    throw HTTPError(409, code: "invalid_delta_column", problem)
                }
            }
        }
    }

    /// Why `column` cannot be a delta column of `table` with these column types and key; nil when it can.
    static func deltaProblem(table: String, column: String, types: [String: String], key: [String]) -> String? {
        let prefix = "table \(table): delta column \(column)"
        guard let type = types[column] else {
            return "\(prefix) is not a column of the table; fix hub.yaml's tables[].delta"
        }
        if key.contains(column) { return "\(prefix) is part of the primary key; a key is not a counter" }
        if DeltaColumn.Kind(formatType: type) == nil {
            return "\(prefix) is \(type); a delta column must be \(DeltaColumn.allowedTypes) (exact arithmetic)"
        }
        return nil
    }
}
