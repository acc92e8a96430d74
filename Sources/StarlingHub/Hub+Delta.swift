import StarlingCore

extension Hub {
    /// Refuses to start when hub.yaml names a delta column that a table's already registered shape cannot
    /// have (missing, a key column, or a type without exact arithmetic), with an error naming the key
    /// (`tables[2].delta[0]`). A table not registered yet is checked when its first agent registers it
    /// (``HubRegistry/checkDeltaColumns(_:settings:)``): before that the hub does not know its types.
    func checkDeltaColumnsAgainstShapes() async throws {
        guard settings.tables.contains(where: { !$0.deltaColumns.isEmpty }) else { return }
        let shapes = try await pool.withConnection { try HubStore.loadShapes($0) }
        try Self.checkDeltaColumns(settings.tables, shapes: shapes)
    }

    /// The check of ``checkDeltaColumnsAgainstShapes()`` for `tables` (also a reload's).
    static func checkDeltaColumns(_ tables: [HubSettings.Table], shapes: [String: TableShape]) throws(HubError) {
        for (tableIndex, table) in tables.enumerated() {
            guard let shape = shapes[table.name] else { continue }
            for (index, column) in table.deltaColumns.enumerated() {
                if let problem = HubRegistry.deltaProblem(
                    table: table.name, column: column, types: shape.columnTypes, key: shape.key)
                {
                    throw HubError(
                        code: .invalidConfiguration, message: problem, key: "tables[\(tableIndex)].delta[\(index)]")
                }
            }
        }
    }
}
