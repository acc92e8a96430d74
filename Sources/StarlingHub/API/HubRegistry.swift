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
    /// Parses a registration body (each table decoded by ``TableShape/init(json:)``); every table must be
    /// synced and have a key.
    static func parseRegistrations(_ body: [UInt8], settings: HubSettings) throws(HTTPError) -> [TableShape] {
        let value = try HubAPI.jsonBody(body)
        guard let tables = value["tables"]?.arrayValue else {
            throw HTTPError(400, code: "invalid_request", #"the body must be {"tables":[…]}"#)
        }
        var result: [TableShape] = []
        for (index, table) in tables.enumerated() {
            let shape: TableShape
            do {
                shape = try TableShape(json: table)
            } catch {
                let prefixed = error.prefixed(with: "tables[\(index)]")
                throw HTTPError(400, code: "invalid_request", "\(prefixed.field ?? ""): \(error.message)")
            }
            let name = shape.name
            guard settings.tablesByName[name] != nil else {
                // `table_not_synced`: a reload may have removed it since the agent read /v1/config; it retries.
                throw HTTPError(
                    400, code: "table_not_synced", "tables[\(index)].name: table \"\(name)\" is not synced")
            }
            guard !shape.key.isEmpty else {
                throw HTTPError(
                    400, code: "no_primary_key",
                    "tables[\(index)]: table \(name) has no primary key: Starling identifies a row by its key in "
                        + "every region. Add one (ALTER TABLE \(name) ADD PRIMARY KEY (…)), or a unique index on NOT "
                        + "NULL columns made the replica identity (ALTER TABLE \(name) REPLICA IDENTITY USING INDEX …)")
            }
            result.append(shape)
        }
        try checkDeltaColumns(result, settings: settings)
        return result
    }

    /// Stores first registrations and compares the rest; returns the first mismatch as a sentence naming the
    /// table and column, or nil when every table matches. One transaction, so two regions registering a new
    /// table at once agree on one shape.
    static func register(_ tables: [TableShape], region: String, connection: PostgresConnection) throws -> String? {
        try connection.transaction(name: "hub.register") { connection in
            for table in tables {
                try connection.execute(
                    "INSERT INTO starling_hub.table_shapes (table_name, columns, key_columns, registered_by) "
                        + "VALUES ($1, $2, $3::text[], $4) ON CONFLICT (table_name) DO NOTHING",
                    [.text(table.name), .text(HubJSON.text(table.columnsJSON)), .textArray(table.key), .text(region)],
                    name: "hub.register.insert")
                let rows = try connection.query(
                    "SELECT columns, array_to_json(key_columns)::text, registered_by FROM starling_hub.table_shapes "
                        + "WHERE table_name = $1", [.text(table.name)], name: "hub.register.read")
                guard let row = rows.first else { continue }
                let stored = TableShape(
                    name: table.name, columns: try TableShape.columns(json: try JSONValue(parsing: try row.string(0))),
                    key: try JSONValue(parsing: try row.string(1)).arrayValue?.compactMap(\.stringValue) ?? [])
                guard let mismatch = compare(table, stored: stored, registeredBy: try row.string(2)) else { continue }
                // A region that has not applied every schema change yet registers an earlier version; it applies
                // the rest from the log (images it pushes meanwhile are read with the names in force).
                let earlier = try connection.query(
                    "SELECT previous_columns FROM starling_hub.schema_changes WHERE table_name = $1",
                    [.text(table.name)], name: "hub.register.earlier")
                let matchesEarlier = try earlier.contains { version in
                    let columns = try TableShape.columns(json: try JSONValue(parsing: try version.string(0)))
                    return compare(table, stored: TableShape(name: table.name, columns: columns, key: stored.key),
                        registeredBy: "") == nil
                }
                if !matchesEarlier { return mismatch }
            }
            return nil
        }
    }

    /// The first difference between `table` and the `stored` shape (columns by name and type, in any order; key
    /// columns in order), as a sentence; nil when equal.
    static func compare(_ table: TableShape, stored: TableShape, registeredBy: String) -> String? {
        let prefix = "table \(table.name): column"
        let storedTypes = stored.columnTypes
        let localTypes = table.columnTypes
        for column in table.columns {
            guard let storedType = storedTypes[column.name] else {
                return "\(prefix) \(column.name) (\(column.type)) is not in the shape registered by \(registeredBy)"
            }
            if storedType != column.type {
                return "\(prefix) \(column.name) is \(column.type) here but \(storedType) in the shape registered by "
                    + registeredBy
            }
        }
        for column in stored.columns where localTypes[column.name] == nil {
            return "\(prefix) \(column.name) (\(column.type)) is missing here; the shape registered by "
                + "\(registeredBy) has it"
        }
        if stored.key != table.key {
            let column = zip(stored.key, table.key).first { $0 != $1 }?.0 ?? stored.key.last ?? table.key.last ?? "?"
            return "table \(table.name): primary key column \(column) differs: (\(table.key.joined(separator: ", "))) "
                + "here, (\(stored.key.joined(separator: ", "))) registered by \(registeredBy)"
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
            do {
                let decoded = try DeadLetter(json: letter)
                result.append(DeadLetterReport(decoded, policy: settings.tablesByName[decoded.table]?.policy ?? .lww))
            } catch {
                let field = error.field.map { "." + $0 } ?? ""
                throw HTTPError(400, code: "invalid_request", "dead_letters[\(index)]\(field) \(error.message)")
            }
        }
        return result
    }
}

/// One dead letter as a region reports it, with the table's policy at the hub (recorded with the conflict).
struct DeadLetterReport: Sendable, Hashable {
    var letter: DeadLetter
    var policy: ConflictPolicy = .lww

    init(_ letter: DeadLetter, policy: ConflictPolicy) {
        self.letter = letter
        self.policy = policy
    }

    var id: Int64 { letter.id }
    var seq: Int64 { letter.seq }
    var table: String { letter.table }
    var entry: JSONValue { letter.entry }
    var sqlState: String? { letter.sqlState }
    var error: String { letter.error }

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
