import Foundation
import StarlingCore
import StarlingPostgres

/// A table and a key, the identity of a row everywhere (hub heads, log entries, region rows).
struct TableKey: Hashable, Sendable, CustomStringConvertible {
    var table: String
    var key: JSONObject
    var description: String {
        "\(table) "
            + key.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.canonicalText)" }.joined(separator: ",")
    }
}

/// What the hub's database holds after a run, read once for the oracles (`ConvergenceOracle`).
struct HubSnapshot: Sendable {
    struct Entry: Sendable {
        var seq: Int64
        var origin: String
        var changeID: String
        var tx: String
        var tableKey: TableKey
        var op: String
        var row: JSONObject?
        var hlc: Int64
        var kind: String
        var rewritten: Bool
        /// The one region a repair is meant for (nil: every region).
        var target: String?
    }

    struct StoredHead: Sendable, Equatable {
        var seq: Int64
        var origin: String
        var hlc: Int64
        var row: JSONObject?
        var op: String
        var prevForeignSeq: Int64
    }

    struct StoredConflict: Sendable {
        var id: Int64
        var tableKey: TableKey
        var policy: String
        var provisional: String?
        var status: String
        var winner: String
        var current: (seq: Int64, origin: String, op: String, row: JSONObject?)
        var incoming: (id: String, origin: String, op: String, base: Int64, row: JSONObject?)
    }

    var entries: [Entry] = []
    var heads: [TableKey: StoredHead] = [:]
    var conflicts: [Int64: StoredConflict] = [:]
    /// Rejected change id → conflict id.
    var decisions: [String: Int64] = [:]
    /// Every seq at or below this was pruned (0: the log is whole).
    var prunedThrough: Int64 = 0

    /// Reads heads and, unless `headsOnly`, log, conflicts and decisions of the synced `tables`.
    static func read(_ connection: PostgresConnection, tables: [String], headsOnly: Bool = false) throws -> HubSnapshot
    {
        var snapshot = HubSnapshot()
        let tableList = PostgresValue.textArray(tables.map { Optional($0) })
        snapshot.prunedThrough = try connection.query("SELECT pruned_through FROM starling_hub.retention")[0].int64(0)
        try snapshot.readHeads(connection, tableList)
        guard !headsOnly else { return snapshot }
        for row in try connection.query(
            "SELECT seq, origin, change_id, tx, table_name, key, op, row, hlc, kind, rewritten, target "
                + "FROM starling_hub.log WHERE table_name = ANY($1) ORDER BY seq", [tableList])
        {
            snapshot.entries.append(
                Entry(
                    seq: try row.int64(0), origin: try row.string(1), changeID: try row.string(2),
                    tx: try row.string(3),
                    tableKey: TableKey(table: try row.string(4), key: try object(try row.string(5)) ?? [:]),
                    op: try row.string(6), row: try object(try row.optionalString(7)), hlc: try row.int64(8),
                    kind: try row.string(9), rewritten: try row.bool(10), target: try row.optionalString(11)))
        }
        for row in try connection.query(
            "SELECT id, table_name, key, policy, provisional, status, winner, current_seq, current_origin, current_op, "
                + "current_row, incoming_id, incoming_origin, incoming_op, incoming_base, incoming_row "
                + "FROM starling_hub.conflicts WHERE table_name = ANY($1)", [tableList])
        {
            let id = try row.int64(0)
            snapshot.conflicts[id] = StoredConflict(
                id: id, tableKey: TableKey(table: try row.string(1), key: try object(try row.string(2)) ?? [:]),
                policy: try row.string(3), provisional: try row.optionalString(4), status: try row.string(5),
                winner: try row.string(6),
                current: (
                    try row.int64(7), try row.string(8), try row.string(9), try object(try row.optionalString(10))
                ),
                incoming: (
                    try row.string(11), try row.string(12), try row.string(13), try row.int64(14),
                    try object(try row.optionalString(15))
                ))
        }
        for row in try connection.query(
            "SELECT change_id, conflict_id FROM starling_hub.decisions WHERE table_name = ANY($1)", [tableList])
        {
            snapshot.decisions[try row.string(0)] = try row.int64(1)
        }
        return snapshot
    }

    private mutating func readHeads(_ connection: PostgresConnection, _ tableList: PostgresValue) throws {
        for row in try connection.query(
            "SELECT table_name, key, seq, origin, hlc, row, op, prev_foreign_seq FROM starling_hub.heads "
                + "WHERE table_name = ANY($1)", [tableList])
        {
            let tableKey = TableKey(table: try row.string(0), key: try object(try row.string(1)) ?? [:])
            heads[tableKey] = StoredHead(
                seq: try row.int64(2), origin: try row.string(3), hlc: try row.int64(4),
                row: try object(try row.optionalString(5)), op: try row.string(6), prevForeignSeq: try row.int64(7))
        }
    }
}

/// What one region's database holds after a run: its synced rows, and what the test's hooks
/// (`Fixtures/oracle_hooks.sql`) recorded: every pushed change, every version write, every row write.
struct RegionSnapshot: Sendable {
    struct Pushed: Sendable {
        var id: Int64
        var tx: Int64
        var tableKey: TableKey
        var op: String
        var before: JSONObject?
        var after: JSONObject?
        var base: Int64
        var capturedAt: Int64
        var hlc: Int64?
        var removals: Int
        /// The transaction that removed it (a verdict's).
        var xid: Int64
    }

    struct VersionWrite: Sendable {
        var id: Int64
        var tableKey: TableKey
        var seq: Int64
        var oldSeq: Int64?
        var xid: Int64
    }

    struct RowWrite: Sendable {
        var tableKey: TableKey
        var op: String
        var image: JSONObject
        var isApply: Bool
        var xid: Int64
    }

    /// A key whose row differs from the hub's head (either side nil: no row / a tombstone or no head).
    struct Mismatch: Sendable {
        var tableKey: TableKey
        var regionRow: String?
        var headRow: String?
    }

    var region: String
    /// Whether the hooks were installed (false: only `rowCount`, `mismatches` and `versions` are known).
    var isInstrumented = false
    var rowCount = 0
    /// Every key whose row differs from the hub's head.
    var mismatches: [Mismatch] = []
    var versions: [TableKey: Int64] = [:]
    var pushed: [Int64: Pushed] = [:]
    var versionWrites: [VersionWrite] = []
    var rowWrites: [RowWrite] = []
    /// Transactions that removed outbox rows: the verdicts' (they write winner images and release deferred entries).
    var verdictTransactions: Set<Int64> { Set(pushed.values.map(\.xid)).union(verdictXIDs) }
    /// Transactions that handled a WAL-captured change's verdict again (after an agent restart; journal hook).
    var verdictXIDs: Set<Int64> = []

    /// Reads `region`'s differences from the hub's `heads` in `tables` (keyed by `keyColumns[table]`), its versions
    /// and, unless `rowsOnly`, its hook records.
    static func read(
        _ connection: PostgresConnection, region: String, tables: [String], keyColumns: [String: [String]],
        heads: [TableKey: HubSnapshot.StoredHead], rowsOnly: Bool = false
    ) throws -> RegionSnapshot {
        var snapshot = RegionSnapshot(region: region)
        func tableKey(_ table: String, image: JSONObject) -> TableKey {
            TableKey(table: table, key: image.filter { (keyColumns[table] ?? ["k"]).contains($0.key) })
        }
        for table in tables {
            let (count, mismatches) = try compare(
                connection, table: table, keyColumns: keyColumns[table] ?? ["k"],
                heads: heads.filter { $0.key.table == table })
            snapshot.rowCount += count
            snapshot.mismatches += mismatches
        }
        // Under WAL capture (trigger capture switched off) the applies write no version rows: the ones there are a
        // bootstrap's or trigger capture's, and say nothing about the keys' versions now.
        let versionRows = try connection.query(
            "SELECT NOT EXISTS (SELECT 1 FROM starling.wal_state WHERE NOT switching) AS kept")[0].bool(0)
        for row in try connection.query("SELECT table_name, key::text, seq FROM starling.versions") where versionRows {
            snapshot.versions[TableKey(table: try row.string(0), key: try object(try row.string(1)) ?? [:])] =
                try row.int64(2)
        }
        snapshot.isInstrumented =
            try !rowsOnly && connection.query("SELECT to_regclass('e2e_oracle.pushed') IS NOT NULL")[0].bool(0)
        guard snapshot.isInstrumented else { return snapshot }
        for row in try connection.query(
            "SELECT id, tx, table_name, key::text, op, before::text, after::text, base, captured_at, hlc, removals, "
                + "xid FROM e2e_oracle.pushed")
        {
            let pushed = Pushed(
                id: try row.int64(0), tx: try row.int64(1),
                tableKey: TableKey(table: try row.string(2), key: try object(try row.string(3)) ?? [:]),
                op: try row.string(4), before: try object(try row.optionalString(5)),
                after: try object(try row.optionalString(6)), base: try row.int64(7), capturedAt: try row.int64(8),
                hlc: try row.optionalInt64(9), removals: Int(try row.int64(10)), xid: try row.int64(11))
            snapshot.pushed[pushed.id] = pushed
        }
        if try connection.query("SELECT to_regclass('e2e_oracle.verdict_xids') IS NOT NULL")[0].bool(0) {
            for row in try connection.query("SELECT xid FROM e2e_oracle.verdict_xids") {
                snapshot.verdictXIDs.insert(try row.int64(0))
            }
        }
        for row in try connection.query(
            "SELECT id, table_name, key::text, seq, old_seq, xid FROM e2e_oracle.version_writes ORDER BY id")
        {
            snapshot.versionWrites.append(
                VersionWrite(
                    id: try row.int64(0),
                    tableKey: TableKey(table: try row.string(1), key: try object(try row.string(2)) ?? [:]),
                    seq: try row.int64(3), oldSeq: try row.optionalInt64(4), xid: try row.int64(5)))
        }
        for row in try connection.query(
            "SELECT table_name, op, image::text, applying, xid FROM e2e_oracle.row_writes ORDER BY id")
        {
            let table = try row.string(0)
            let image = try object(try row.string(2)) ?? [:]
            snapshot.rowWrites.append(
                RowWrite(
                    tableKey: tableKey(table, image: image), op: try row.string(1), image: image,
                    isApply: try row.bool(3), xid: try row.int64(4)))
        }
        return snapshot
    }
}

extension RegionSnapshot {
    /// Compares `table`'s rows with the hub's heads inside the region's database, decoding each head's image the
    /// way the apply does (`jsonb_populate_record`: bigints and numerics sent as strings, bytea as `\\x` hex,
    /// timestamps as ISO text all parse back), so any column type compares by value: both sides as `to_jsonb` of a
    /// row of the table. A `json` column travels as its text, so it is parsed first (and then compares by value,
    /// not by text; FidelityTests checks the text). The row alias is one no column is named (a column `t` would
    /// win over an alias `t`). Returns the number of rows and the differing keys.
    static func compare(
        _ connection: PostgresConnection, table: String, keyColumns: [String], heads: [TableKey: HubSnapshot.StoredHead]
    ) throws -> (Int, [Mismatch]) {
        let jsonColumns = Set(
            try connection.query(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 "
                    + "AND NOT attisdropped AND atttypid = 'json'::regtype", [.text(table)]
            ).map { try $0.string(0) })
        var items: [JSONValue] = []
        var byIndex: [TableKey] = []
        for (tableKey, head) in heads {
            var image = head.row
            for column in jsonColumns {
                if let text = image?[column]?.stringValue, let parsed = try? JSONValue(parsing: text) {
                    image?[column] = parsed
                }
            }
            items.append(
                .object([
                    "i": .number(String(byIndex.count)), "k": .object(tableKey.key),
                    "r": image.map(JSONValue.object) ?? .null,
                ]))
            byIndex.append(tableKey)
        }
        let keyMatch = keyColumns.map { "x.img -> '\($0)' = h.key -> '\($0)'" }.joined(separator: " AND ")
        let rows = try connection.query(
            """
            WITH h AS (
                SELECT (e ->> 'i')::int AS i,
                       CASE WHEN e -> 'r' = 'null'::jsonb THEN NULL
                            ELSE to_jsonb(jsonb_populate_record(NULL::\(table), e -> 'r')) END AS img,
                       to_jsonb(jsonb_populate_record(NULL::\(table), e -> 'k')) AS key
                FROM jsonb_array_elements($1::jsonb) e),
            x AS (SELECT to_jsonb(e2e_row) AS img FROM \(table) e2e_row)
            SELECT h.i, x.img::text, h.img::text, (SELECT count(*) FROM \(table)) AS n
            FROM h FULL JOIN x ON \(keyMatch)
            WHERE h.img IS DISTINCT FROM x.img
            UNION ALL SELECT NULL, NULL, NULL, (SELECT count(*) FROM \(table))
            """, [.text(JSONValue.array(items).canonicalText)])
        var mismatches: [Mismatch] = []
        var count = 0
        for row in rows {
            count = Int(try row.int64(3))
            let regionRow = try row.optionalString(1)
            guard let index = try row.optionalInt64(0) else {
                guard let regionRow else { continue }  // the count row
                let image = try object(regionRow) ?? [:]
                mismatches.append(
                    Mismatch(
                        tableKey: TableKey(table: table, key: image.filter { keyColumns.contains($0.key) }),
                        regionRow: regionRow, headRow: nil))
                continue
            }
            mismatches.append(
                Mismatch(tableKey: byIndex[Int(index)], regionRow: regionRow, headRow: try row.optionalString(2)))
        }
        return (count, mismatches)
    }
}

/// Parses JSON text (canonical or jsonb's) into an object; nil for SQL NULL or JSON null.
func object(_ text: String?) throws -> JSONObject? {
    guard let text else { return nil }
    let value = try JSONValue(parsing: text)
    if value.isNull { return nil }
    guard let object = value.objectValue else { throw E2EError("not a JSON object: \(text.prefix(200))") }
    return object
}

/// Short text of a row image for messages.
func describe(_ row: JSONObject?) -> String {
    guard let row else { return "(deleted)" }
    return JSONValue.object(row).canonicalText
}
