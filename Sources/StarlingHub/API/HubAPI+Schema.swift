import StarlingCore
import StarlingHTTP2

/// `POST /v1/schema` (admin): a schema change of a synced table, `{"table":…,"statement":"ALTER TABLE … "}` (or
/// the clauses alone) and an optional `id` that makes a retry safe. The hub finds the column actions by running
/// the statement on an empty copy of the table's shape (``SchemaProbe``), checks them
/// (``SchemaChange/applied(to:)``: 400 naming the reason) and sequences the change (SequencerWriter+Schema.swift);
/// every region applies it at its place in the log. 200 `{"table","seq","version","columns","actions"}`.
///
/// `POST /v1/tables/schema` (region): a schema change an agent captured in its region (an `ALTER TABLE` run there),
/// `{"id","table","statement","actions":[…],"columns":[…]}` with the columns the table has after it. When the shape
/// in force has those columns already (the same statement ran in another region first: a rolling migration) the
/// answer is that version, and nothing new is logged; otherwise the actions must follow from the shape in force
/// (409 `schema_conflict` naming both shapes otherwise).
extension HubAPI {
    func capturedSchema(_ request: HubRequest) async throws -> HTTPResponse {
        let region = request.region
        let body = try parseBody(request.body)
        let change: SchemaChange
        let columns: [TableShape.Column]
        do throws(CoreError) {
            change = try SchemaChange(json: body)
            try change.checkCapturedInRegion()
            try change.validate()
            columns = try TableShape.columns(json: body["columns"] ?? .null)
            for column in columns where !SchemaChange.isTypeName(column.type) {
                throw CoreError(code: .invalidValue, message: "\(column.type) is not a type name", field: "columns")
            }
        } catch {
            throw HTTPError(400, code: "invalid_request", "\(error.field.map { $0 + ": " } ?? "")\(error.message)")
        }
        guard let id = body["id"]?.stringValue, (try? Change.region(ofID: id)) == region else {
            throw HTTPError(400, code: "invalid_request", "\"id\" must be a change id of region \(region)")
        }
        guard settings.tablesByName[change.table] != nil else {
            throw HTTPError(400, code: "table_not_synced", "table \"\(change.table)\" is not synced")
        }
        try refuseDeltaChanges(change.actions, table: change.table)
        let shape = shapes.current[change.table]?.shape ?? TableShape(name: change.table, columns: [], key: [])
        let (fill, toText) = try await imageRules(of: change.actions, on: shape)
        let outcome = try await sequencer.schema(
            SchemaRequest(change: change, origin: region, id: id, resulting: columns, fill: fill, toText: toText))
        logger.info(
            outcome.isNew ? "schema change sequenced" : "schema change already in force",
            metadata: [
                "table": "\(change.table)", "region": "\(region)", "seq": "\(outcome.seq)",
                "version": "\(outcome.entry.version)",
            ])
        return .json(200, Self.schemaAnswer(outcome).serialized())
    }

    /// A delta column (hub.yaml `tables[].delta`) keeps its name and type while it is one: the sequencer reads its
    /// kind once. 400 naming the column and the way.
    private func refuseDeltaChanges(_ actions: [SchemaChange.Action], table: String) throws(HTTPError) {
        let delta = Set(settings.tablesByName[table]?.deltaColumns ?? [])
        for action in actions {
            let name: String? =
                switch action {
                case .dropColumn(let name), .alterType(let name, _): name
                case .renameColumn(let from, _): from
                case .addColumn, .index: nil
                }
            if let name, delta.contains(name) {
                throw HTTPError(
                    400, code: "invalid_statement",
                    "column \(name) of \(table) is a delta column (hub.yaml tables[].delta): take it out of the delta "
                        + "list and reload the hub before changing it")
            }
        }
    }

    static func schemaAnswer(_ outcome: SchemaOutcome) -> JSONValue {
        [
            "table": .string(outcome.entry.shape.name), "seq": .integer(outcome.seq),
            "version": .integer(outcome.entry.version), "columns": outcome.entry.shape.columnsJSON,
            "actions": outcome.change.json["actions"] ?? .array([]), "new": .bool(outcome.isNew),
        ]
    }

    /// The image rules of `actions` (``SchemaProbe/imageRules(of:on:connection:)``); 400 when a default cannot be
    /// evaluated here.
    private func imageRules(of actions: [SchemaChange.Action], on shape: TableShape) async throws
        -> (fill: JSONObject, toText: Set<String>)
    {
        do {
            return try await pool.withConnection { connection in
                try SchemaProbe.imageRules(of: actions, on: shape, connection: connection)
            }
        } catch {
            throw HTTPError(
                400, code: "invalid_statement",
                "\(shape.name): a new column's default cannot be evaluated by the hub (\(error)); add the column "
                    + "without a default, then fill it with an UPDATE")
        }
    }

    func schemaChange(_ request: HubRequest) async throws -> HTTPResponse {
        let body = try parseBody(request.body)
        guard let table = body["table"]?.stringValue, let statement = body["statement"]?.stringValue else {
            throw HTTPError(400, code: "invalid_request", #"the body must be {"table":…,"statement":…}"#)
        }
        guard settings.tablesByName[table] != nil else {
            throw HTTPError(400, code: "table_not_synced", "table \"\(table)\" is not synced")
        }
        guard let shape = shapes.current[table]?.shape else {
            throw HTTPError(
                400, code: "invalid_request", "table \(table) has no registered shape yet: start a region's agent first")
        }
        let id = body["id"]?.stringValue.map { "hub-schema:" + $0 } ?? "hub-schema:\(UInt64.random(in: 1...UInt64.max))"
        // A retry of a change the log has: its first answer (the statement would not apply to the shape now).
        let prior = try await pool.withConnection { connection in
            try connection.query(
                "SELECT seq, version, columns, actions FROM starling_hub.schema_changes WHERE change_id = $1",
                [.text(id)], name: "hub.schema.prior")
        }
        if let row = prior.first {
            let answer: JSONValue = [
                "table": .string(table), "seq": .integer(try row.int64(0)), "version": .integer(try row.int64(1)),
                "columns": try JSONValue(parsing: try row.string(2)), "actions": try JSONValue(parsing: try row.string(3)),
                "new": false,
            ]
            return .json(200, answer.serialized())
        }
        let kind: SchemaStatement.Kind
        do {
            kind = try SchemaStatement.parse(statement, table: table)
        } catch {
            throw HTTPError(400, code: "invalid_statement", error.message)
        }
        let actions: [SchemaChange.Action]
        do {
            actions = try await pool.withConnection { connection in
                switch kind {
                case .alter(let clauses):
                    let words = clauses.lowercased().split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
                    if words.contains("type") && words.contains("using") {
                        throw HTTPError(
                            400, code: "invalid_statement",
                            "a USING expression is not replicated: each region casts the column to its new type "
                                + "(only widening type changes are replicated)")
                    }
                    return try SchemaProbe.actions(of: clauses, on: shape, connection: connection)
                case .index(let canonical, let probe):
                    if let probe { try SchemaProbe.checkIndex(probe, on: shape, connection: connection) }
                    return [.index(statement: canonical)]
                }
            }
        } catch let error as HTTPError {
            throw error
        } catch {
            throw HTTPError(400, code: "invalid_statement", "\(statement): \(error)")
        }
        try refuseDeltaChanges(actions, table: table)
        let (fill, toText) = try await imageRules(of: actions, on: shape)
        let outcome = try await sequencer.schema(
            SchemaRequest(
                change: SchemaChange(table: table, actions: actions, statement: statement), origin: LogEntry.hubOrigin,
                id: id, resulting: nil, fill: fill, toText: toText))
        logger.info(
            "schema change sequenced",
            metadata: ["table": "\(table)", "seq": "\(outcome.seq)", "version": "\(outcome.entry.version)"])
        return .json(200, Self.schemaAnswer(outcome).serialized())
    }
}
