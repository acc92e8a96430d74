import StarlingCore
import StarlingPostgres

/// A schema change to sequence (``SequencerWriter/schema(_:state:connection:nowMicros:)``).
struct SchemaRequest: Sendable {
    var change: SchemaChange
    /// `hub` for a change given through the admin API, else the region that ran it.
    var origin: String
    /// The change's id: its idempotency key (a re-sent change gets its first answer).
    var id: String
    /// A region's change: the columns its table has after it. When the shape in force has them already (the same
    /// statement ran elsewhere first: a rolling migration), the change is that one, not a new version.
    var resulting: [TableShape.Column]?
    /// The images of the added columns' defaults and the columns whose image becomes text (``SchemaProbe``).
    var fill: JSONObject = [:]
    var toText: Set<String> = []
}

/// What a sequenced schema change produced.
struct SchemaOutcome: Sendable {
    var seq: Int64
    /// The table's shape, version and rules after it (the ones in force when it was not new).
    var entry: ShapeCache.Entry
    var change: SchemaChange
    /// False when the shape was in force already (a region's copy of a change sequenced before, or a re-send).
    var isNew: Bool
}

extension HubError.Code {
    /// A region's schema change that does not follow from the shape in force (another change came first).
    static let schemaConflict = HubError.Code(rawValue: "schema_conflict")
}

extension SequencerWriter {
    /// Sequences one schema change, alone in its batch: the change applied to the shape in force (refused with
    /// `invalid_request` naming why, ``SchemaChange/applied(to:)``), one log entry of kind `schema` at the next
    /// seq, the new shape, version and image rules stored, the version recorded with the columns before it, and
    /// every head of the table rewritten with the change's rules (so the heads always have the shape in force, as
    /// the regions' rows do once they applied it). Every image logged before the entry was read under the old
    /// shape and every image after it under the new one.
    func schema(_ request: SchemaRequest, state: inout BatchState, connection: PostgresConnection, nowMicros: Int64)
        throws -> ItemResult
    {
        let table = request.change.table
        // A table registered since the writer loaded its shapes.
        if shapeRules[table] == nil { shapeRules = try HubStore.loadShapeEntries(connection) }
        guard let current = shapeRules[table] else {
            return .failed(
                HubError(
                    code: .invalidRequest,
                    message: "table \(table) has no registered shape yet: start a region's agent first"))
        }
        let prior = try connection.query(
            "SELECT seq FROM starling_hub.schema_changes WHERE change_id = $1", [.text(request.id)],
            name: "sequencer.schemaPrior")
        if let row = prior.first {
            return .schema(SchemaOutcome(seq: try row.int64(0), entry: current, change: request.change, isNew: false))
        }
        if let resulting = request.resulting, TableShape.sameColumns(resulting, current.shape.columns) {
            let seq = try connection.query(
                "SELECT coalesce(max(seq), 0) FROM starling_hub.schema_changes WHERE table_name = $1",
                [.text(table)], name: "sequencer.schemaInForce")
            return .schema(SchemaOutcome(seq: try seq[0].int64(0), entry: current, change: request.change, isNew: false))
        }
        // The shape of an earlier version: a region running a migration's statements after the hub has more of
        // them (it applies the rest from the log).
        if let resulting = request.resulting {
            for row in try connection.query(
                "SELECT seq, columns FROM starling_hub.schema_changes WHERE table_name = $1 ORDER BY version DESC",
                [.text(table)], name: "sequencer.schemaEarlier")
            where TableShape.sameColumns(resulting, try TableShape.columns(json: try JSONValue(parsing: try row.string(1)))) {
                return .schema(SchemaOutcome(seq: try row.int64(0), entry: current, change: request.change, isNew: false))
            }
        }
        let shape: TableShape
        do {
            shape = try request.change.applied(to: current.shape)
        } catch {
            guard let resulting = request.resulting else {
                return .failed(HubError(code: .invalidRequest, message: error.message))
            }
            // A change made in a region that cannot apply to the shape in force (another region changed the table
            // differently first): both shapes, so the operator knows which one to give the region's table.
            return .failed(
                HubError(
                    code: .schemaConflict,
                    message: "schema change of \(table) by \(request.origin) does not follow from version "
                        + "\(current.version) in force \(Self.describe(current.shape.columns)): \(error.message); its "
                        + "columns would be \(Self.describe(resulting)). Give the region's table the columns in force: "
                        + "its agent then drops this change and follows the log"))
        }
        if let resulting = request.resulting, !TableShape.sameColumns(resulting, shape.columns) {
            return .failed(
                HubError(
                    code: .schemaConflict,
                    message: "schema change of \(table) by \(request.origin) does not follow from version "
                        + "\(current.version) in force: its columns would be \(Self.describe(resulting)), version "
                        + "\(current.version) changed this way gives \(Self.describe(shape.columns))"))
        }
        let rules = ImageRules.of(request.change, fill: request.fill, toText: request.toText)
        let version = current.version + 1
        let entry = SchemaEntry(change: request.change, shape: shape, version: version, rules: rules)
        let seq = state.takeSeq(state.nextSeq)
        let logEntry = LogEntry(
            seq: seq, origin: request.origin, id: request.id, tx: request.id, table: table, op: .update, key: [:],
            row: entry.row, hlc: nowMicros, kind: .schema, rewritten: request.origin == LogEntry.hubOrigin)
        state.logged.append(LogCache.Logged(entry: logEntry, keyText: "{}", rowText: HubJSON.text(entry.row)))
        let inForce = current.rules.then(rules)
        try connection.execute(
            "UPDATE starling_hub.table_shapes SET columns = $2, version = $3, rules = $4 WHERE table_name = $1",
            [.text(table), .text(HubJSON.text(shape.columnsJSON)), .int64(version), .text(HubJSON.text(inForce.json))],
            name: "sequencer.schemaShape")
        try connection.execute(
            """
            INSERT INTO starling_hub.schema_changes
                (table_name, version, seq, origin, change_id, statement, actions, previous_columns, columns)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            [
                .text(table), .int64(version), .int64(seq), .text(request.origin), .text(request.id),
                .text(request.change.statement), .text(HubJSON.text(request.change.json["actions"] ?? .array([]))),
                .text(HubJSON.text(current.shape.columnsJSON)), .text(HubJSON.text(shape.columnsJSON)),
            ], name: "sequencer.schemaRecord")
        let rewritten = try rewriteHeads(of: table, with: rules, columns: Set(shape.columns.map(\.name)), connection: connection)
        try connection.execute(
            "INSERT INTO starling_hub.audit (actor, action, target, detail) VALUES ($1, 'schema_change', $2, $3)",
            [
                .text(request.origin), .text(table),
                .text("version \(version) at seq \(seq), \(rewritten) heads rewritten: \(request.change.statement)"),
            ], name: "sequencer.schemaAudit")
        return .schema(
            SchemaOutcome(
                seq: seq, entry: ShapeCache.Entry(shape, rules: inForce, version: version), change: request.change,
                isNew: true))
    }

    /// Rewrites the table's live heads with `rules`, a slice at a time by key; returns how many changed.
    private func rewriteHeads(
        of table: String, with rules: ImageRules, columns: Set<String>, connection: PostgresConnection
    ) throws -> Int {
        guard !rules.isEmpty else { return 0 }
        var after = ""
        var rewritten = 0
        while true {
            let rows = try connection.query(
                "SELECT key, row FROM starling_hub.heads WHERE table_name = $1 AND key > $2 AND row IS NOT NULL "
                    + "ORDER BY key LIMIT 5000", [.text(table), .text(after)], name: "sequencer.schemaHeads")
            guard let last = rows.last else { return rewritten }
            after = try last.string(0)
            var keys: [String] = []
            var images: [String] = []
            for row in rows {
                guard let image = try HubJSON.optionalObject(try row.optionalString(1)) else { continue }
                let conformed = rules.apply(to: image, columns: columns)
                guard conformed != image else { continue }
                keys.append(try row.string(0))
                images.append(HubJSON.text(conformed))
            }
            if !keys.isEmpty {
                try connection.execute(
                    "UPDATE starling_hub.heads AS h SET row = u.row FROM unnest($2::text[], $3::text[]) AS u(key, row) "
                        + "WHERE h.table_name = $1 AND h.key = u.key",
                    [.text(table), .textArray(keys), .textArray(images)], name: "sequencer.schemaRewriteHeads")
                rewritten += keys.count
            }
        }
    }

    /// `changes` with their images read under their tables' shapes in force, and their texts (recomputed only when
    /// an image changed).
    func conformed(_ changes: [Change], texts: Sequencer.PushTexts) -> ([Change], Sequencer.PushTexts) {
        guard !shapeRules.isEmpty else { return (changes, texts) }
        var result = changes
        var isChanged = false
        for (index, change) in changes.enumerated() {
            guard let entry = shapeRules[change.table], !entry.rules.isEmpty else { continue }
            let conformed = change.conformed(to: entry.rules, columns: entry.columnNames)
            if conformed != change {
                result[index] = conformed
                isChanged = true
            }
        }
        return isChanged ? (result, Sequencer.PushTexts(result)) : (changes, texts)
    }


    private static func describe(_ columns: [TableShape.Column]) -> String {
        "(" + columns.map { "\($0.name) \($0.type)" }.joined(separator: ", ") + ")"
    }
}
