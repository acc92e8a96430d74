import StarlingCore
import StarlingPostgres

extension SequencerWriter {
    /// Makes ``deltaKinds`` hold the kinds of the delta columns of every table in `batch` that has some, read
    /// from `starling_hub.table_shapes` (registration refused any other type, HubRegistry+Delta.swift). Read
    /// once per table: a shape never changes once registered. A table not registered yet is read again with
    /// the next batch; meanwhile its changes are decided without delta columns.
    func loadDeltaKinds(_ batch: [Sequencer.Item], connection: PostgresConnection) throws {
        var missing = Set<String>()
        for item in batch {
            guard case .push(_, let changes, _, _) = item else { continue }
            for change in changes where deltaKinds[change.table] == nil {
                if settings.tablesByName[change.table]?.deltaColumns.isEmpty == false { missing.insert(change.table) }
            }
        }
        guard !missing.isEmpty else { return }
        let shapes = try HubStore.loadShapes(connection)
        for table in missing {
            guard let shape = shapes[table], let delta = settings.tablesByName[table]?.deltaColumns else { continue }
            let types = shape.columnTypes
            var kinds: [String: DeltaColumn.Kind] = [:]
            for column in delta {
                if let kind = types[column].flatMap(DeltaColumn.Kind.init(formatType:)) { kinds[column] = kind }
            }
            deltaKinds[table] = kinds
        }
    }
}
