import StarlingCore
import StarlingHTTP2
import StarlingPostgres

/// The agent endpoints beyond DESIGN.md's table: table shape registration and dead-letter reports.
/// Parsing and SQL live here so the handlers in ``HubAPI`` stay thin.
///
/// * `POST /v1/tables/register` `{"tables":[{"name":…,"columns":[{"name":…,"type":…}],"key":[…]}]}`: the
///   first registration of a table stores its shape in `starling_hub.table_shapes`; a later one must match it
///   (columns by name and `format_type`, in any order; key columns in order) or is refused with 409
///   `schema_mismatch` naming the table and the column.
/// * `POST /v1/dead-letters` `{"dead_letters":[{"id":N,"seq":N,"table":…,"entry":{…},"sqlstate":…,"error":…}]}`:
///   recorded through the sequencer (which owns conflict ids) as open conflicts, once per (region, id).
enum HubRegistry {
    /// One table of a registration.
    struct Registration: Sendable, Hashable {
        var table: String
        /// (name, type) in the region's column order.
        var columns: [(name: String, type: String)]
        var key: [String]

        static func == (a: Registration, b: Registration) -> Bool {
            a.table == b.table && a.key == b.key && a.columns.elementsEqual(b.columns) { $0 == $1 }
        }

        func hash(into hasher: inout Hasher) {
            hasher.combine(table)
            hasher.combine(key)
        }

        /// The stored `columns` text: `[{"name":…,"type":…},…]` (canonical JSON).
        var columnsText: String {
            HubJSON.text(.array(columns.map { .object(["name": .string($0.name), "type": .string($0.type)]) }))
        }
    }

    /// Parses a registration body; every table must be synced.
    static func parseRegistrations(_ body: [UInt8], settings: HubSettings) throws(HTTPError) -> [Registration] {
        let value = try HubAPI.jsonBody(body)
        guard let tables = value["tables"]?.arrayValue else {
            throw HTTPError(400, code: "invalid_request", #"the body must be {"tables":[…]}"#)
        }
        var result: [Registration] = []
        for (index, table) in tables.enumerated() {
            guard let name = table["name"]?.stringValue, let columns = table["columns"]?.arrayValue,
                let key = table["key"]?.arrayValue
            else {
                throw HTTPError(400, code: "invalid_request", "tables[\(index)] needs name, columns and key")
            }
            guard settings.tablesByName[name] != nil else {
                // `table_not_synced`: a reload may have removed it since the agent read /v1/config; it retries.
                throw HTTPError(
                    400, code: "table_not_synced", "tables[\(index)].name: table \"\(name)\" is not synced")
            }
            var pairs: [(name: String, type: String)] = []
            for column in columns {
                guard let columnName = column["name"]?.stringValue, let type = column["type"]?.stringValue else {
                    throw HTTPError(400, code: "invalid_request", "tables[\(index)].columns: each needs name and type")
                }
                pairs.append((columnName, type))
            }
            let keyNames = key.compactMap(\.stringValue)
            guard keyNames.count == key.count else {
                throw HTTPError(400, code: "invalid_request", "tables[\(index)].key must be a list of column names")
            }
            guard !keyNames.isEmpty else {
                throw HTTPError(
                    400, code: "no_primary_key",
                    "tables[\(index)]: table \(name) has no primary key: Starling identifies a row by its key in "
                        + "every region. Add one (ALTER TABLE \(name) ADD PRIMARY KEY (…)), or a unique index on NOT "
                        + "NULL columns made the replica identity (ALTER TABLE \(name) REPLICA IDENTITY USING INDEX …)")
            }
            for keyName in keyNames where !pairs.contains(where: { $0.name == keyName }) {
                throw HTTPError(
                    400, code: "invalid_request", "tables[\(index)].key: \(keyName) is not a column of table \(name)")
            }
            result.append(Registration(table: name, columns: pairs, key: keyNames))
        }
        try checkDeltaColumns(result, settings: settings)
        return result
    }

    /// Stores first registrations and compares the rest; returns the first mismatch as a sentence naming the
    /// table and column, or nil when every table matches. One transaction, so two regions registering a new
    /// table at once agree on one shape.
    static func register(_ tables: [Registration], region: String, connection: PostgresConnection) throws -> String? {
        try connection.transaction(name: "hub.register") { connection in
            for table in tables {
                try connection.execute(
                    "INSERT INTO starling_hub.table_shapes (table_name, columns, key_columns, registered_by) "
                        + "VALUES ($1, $2, $3::text[], $4) ON CONFLICT (table_name) DO NOTHING",
                    [.text(table.table), .text(table.columnsText), .textArray(table.key), .text(region)],
                    name: "hub.register.insert")
                let rows = try connection.query(
                    "SELECT columns, array_to_json(key_columns)::text, registered_by FROM starling_hub.table_shapes "
                        + "WHERE table_name = $1", [.text(table.table)], name: "hub.register.read")
                guard let row = rows.first else { continue }
                let stored = try JSONValue(parsing: try row.string(0)).arrayValue ?? []
                let storedColumns = stored.map { ($0["name"]?.stringValue ?? "", $0["type"]?.stringValue ?? "") }
                let storedKey = try JSONValue(parsing: try row.string(1)).arrayValue?.compactMap(\.stringValue) ?? []
                if let mismatch = compare(
                    table, storedColumns: storedColumns, storedKey: storedKey, registeredBy: try row.string(2))
                {
                    return mismatch
                }
            }
            return nil
        }
    }

    /// The first difference between `table` and the stored shape, as a sentence; nil when equal.
    static func compare(
        _ table: Registration, storedColumns: [(String, String)], storedKey: [String], registeredBy: String
    ) -> String? {
        let prefix = "table \(table.table): column"
        let stored = Dictionary(storedColumns, uniquingKeysWith: { first, _ in first })
        let local = Dictionary(table.columns.map { ($0.name, $0.type) }, uniquingKeysWith: { first, _ in first })
        for (name, type) in table.columns {
            guard let storedType = stored[name] else {
                return "\(prefix) \(name) (\(type)) is not in the shape registered by \(registeredBy)"
            }
            if storedType != type {
                return "\(prefix) \(name) is \(type) here but \(storedType) in the shape registered by \(registeredBy)"
            }
        }
        for (name, type) in storedColumns where local[name] == nil {
            return "\(prefix) \(name) (\(type)) is missing here; the shape registered by \(registeredBy) has it"
        }
        if storedKey != table.key {
            let column = zip(storedKey, table.key).first { $0 != $1 }?.0 ?? storedKey.last ?? table.key.last ?? "?"
            return "table \(table.table): primary key column \(column) differs: (\(table.key.joined(separator: ", "))) "
                + "here, (\(storedKey.joined(separator: ", "))) registered by \(registeredBy)"
        }
        return nil
    }

    /// Parses a dead-letter report.
    static func parseDeadLetters(_ body: [UInt8], settings: HubSettings) throws(HTTPError) -> [DeadLetterReport] {
        let value = try HubAPI.jsonBody(body)
        guard let letters = value["dead_letters"]?.arrayValue else {
            throw HTTPError(400, code: "invalid_request", #"the body must be {"dead_letters":[…]}"#)
        }
        var result: [DeadLetterReport] = []
        for (index, letter) in letters.enumerated() {
            guard let id = letter["id"]?.int64Value, let seq = letter["seq"]?.int64Value,
                let table = letter["table"]?.stringValue, let entry = letter["entry"], let error = letter["error"]?.stringValue
            else {
                throw HTTPError(
                    400, code: "invalid_request", "dead_letters[\(index)] needs id, seq, table, entry and error")
            }
            // A log seq is never negative and the entry is a JSON object (both as documented in the OpenAPI
            // schema); accepting others stored conflicts whose `seq`/`base` broke the GET /v1/conflicts schema.
            guard seq >= 0 else {
                throw HTTPError(400, code: "invalid_request", "dead_letters[\(index)].seq must not be negative")
            }
            guard case .object = entry else {
                throw HTTPError(400, code: "invalid_request", "dead_letters[\(index)].entry must be an object")
            }
            if let sqlState = letter["sqlstate"], !sqlState.isNull, sqlState.stringValue == nil {
                throw HTTPError(400, code: "invalid_request", "dead_letters[\(index)].sqlstate must be a string or null")
            }
            result.append(
                DeadLetterReport(
                    id: id, seq: seq, table: table, entry: entry, sqlState: letter["sqlstate"]?.stringValue,
                    error: error, policy: settings.tablesByName[table]?.policy ?? .lww))
        }
        return result
    }
}

/// One dead letter as a region reports it.
struct DeadLetterReport: Sendable, Hashable {
    /// The region's local dead-letter id: with the region, the idempotency key.
    var id: Int64
    var seq: Int64
    var table: String
    /// The log entry (or verdict) the region could not apply.
    var entry: JSONValue
    var sqlState: String?
    var error: String
    /// The table's policy at the hub (recorded with the conflict).
    var policy: ConflictPolicy = .lww

    /// The open conflict that shows it to an operator: `current` is the hub's image the region could not
    /// apply, `incoming` names the region (id `<region>:dead-letter:<id>`) with no image of its own.
    func conflict(region: String) -> ConflictRecord {
        let winner = entry["winner"]
        let op = (entry["op"]?.stringValue).flatMap(ChangeOperation.init(rawValue:)) ?? .update
        let row = entry["row"]?.objectValue ?? winner?["row"]?.objectValue
        return ConflictRecord(
            table: table, key: entry["key"]?.objectValue ?? [:], policy: policy, status: .open, winner: .current,
            current: .init(
                seq: seq, origin: entry["origin"]?.stringValue ?? winner?["origin"]?.stringValue ?? "hub", op: op,
                row: row),
            incoming: .init(id: "\(region):dead-letter:\(id)", origin: region, op: op, base: seq, row: nil))
    }
}

extension SequencerWriter {
    /// Records `letters` of `region` inside the running batch transaction: letters seen before keep their
    /// conflict; new ones get the next conflict ids (the writer owns them) and a `starling_hub.dead_letters` row.
    func recordDeadLetters(
        _ letters: [DeadLetterReport], region: String, state: inout BatchState, connection: PostgresConnection
    ) throws -> ItemResult {
        let existing = try connection.query(
            "SELECT local_id, conflict_id FROM starling_hub.dead_letters WHERE region = $1 AND local_id = ANY($2)",
            [.text(region), .int64Array(letters.map(\.id))], name: "sequencer.deadLetters.load")
        var known: [Int64: Int64] = [:]
        for row in existing { known[try row.int64(0)] = try row.int64(1) }
        var ids: [Int64] = []
        for letter in letters {
            if let conflict = known[letter.id] {
                ids.append(conflict)
                continue
            }
            var record = letter.conflict(region: region)
            let conflictID = state.nextConflictID
            state.nextConflictID += 1
            record.id = conflictID
            state.conflictRows.append(Self.conflictRow(record, keyText: HubJSON.text(record.key)))
            state.records[conflictID] = record
            try connection.execute(
                "INSERT INTO starling_hub.dead_letters (region, local_id, seq, table_name, entry, sqlstate, error, "
                    + "conflict_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [
                    .text(region), .int64(letter.id), .int64(letter.seq), .text(letter.table),
                    .text(HubJSON.text(letter.entry)), letter.sqlState.map(PostgresValue.text) ?? .null,
                    .text(letter.error), .int64(conflictID),
                ], name: "sequencer.deadLetters.insert")
            known[letter.id] = conflictID
            ids.append(conflictID)
        }
        return .recorded(ids)
    }
}
