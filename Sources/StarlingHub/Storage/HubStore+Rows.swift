import StarlingCore
import StarlingPostgres

/// A key's metadata and history, read from the log, the heads and the conflicts (`GET /v1/rows/{table}`): what
/// DESIGN.md's `_version`, `_source_region` and `_last_sync_time` would say, answered by the hub instead of being
/// written beside every row in every region.
extension HubStore {
    /// The key's head (its current version), its newest `limit` log entries (newest first) and every conflict
    /// recorded on it. The log has no index on the key: the query reads the retained log (an admin's lookup,
    /// not a hot path; retention bounds it).
    static func rowHistory(_ connection: PostgresConnection, table: String, key: String, limit: Int) throws -> JSONValue {
        let head = try connection.query(
            """
            SELECT h.seq, h.origin, h.hlc, h.op, h.row,
                   (SELECT to_char(l.committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')
                    FROM starling_hub.log l WHERE l.seq = h.seq) AS committed
            FROM starling_hub.heads h WHERE h.table_name = $1 AND h.key = $2
            """, [.text(table), .text(key)], name: "hub.rows.head")
        let entries = try connection.query(
            """
            SELECT seq, origin, change_id, kind, op, row, hlc, rewritten,
                   to_char(committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS committed
            FROM starling_hub.log WHERE table_name = $1 AND key = $2 ORDER BY seq DESC LIMIT $3
            """, [.text(table), .text(key), .int(limit)], name: "hub.rows.log")
        let conflicts = try connection.query(
            "SELECT \(conflictColumns) FROM starling_hub.conflicts WHERE table_name = $1 AND key = $2 ORDER BY id",
            [.text(table), .text(key)], name: "hub.rows.conflicts")
        func image(_ text: String?) throws -> JSONValue {
            guard let text else { return .null }
            return try JSONValue(parsing: text)
        }
        var body: JSONObject = ["table": .string(table), "key": try JSONValue(parsing: key)]
        if let row = head.first {
            let committed = try row.optionalString(5).map(JSONValue.string) ?? .null
            body["head"] = .object([
                "seq": .integer(try row.int64(0)), "origin": .string(try row.string(1)), "hlc": .integer(try row.int64(2)),
                "op": .string(try row.string(3)), "row": try image(try row.optionalString(4)), "committed_at": committed,
            ])
            // The row metadata a region would have kept beside the row.
            body["version"] = .integer(try row.int64(0))
            body["source_region"] = .string(try row.string(1))
            body["last_sync_time"] = committed
        } else {
            body["head"] = .null
            body["version"] = .null
            body["source_region"] = .null
            body["last_sync_time"] = .null
        }
        body["history"] = .array(
            try entries.map { row throws in
                .object([
                    "seq": .integer(try row.int64(0)), "origin": .string(try row.string(1)),
                    "id": .string(try row.string(2)), "kind": .string(try row.string(3)), "op": .string(try row.string(4)),
                    "row": try image(try row.optionalString(5)), "hlc": .integer(try row.int64(6)),
                    "rewritten": .bool(try row.bool(7)), "committed_at": .string(try row.string(8)),
                ])
            })
        body["conflicts"] = .array(try conflicts.map { row throws in try conflictRecord(row).json })
        return .object(body)
    }
}
