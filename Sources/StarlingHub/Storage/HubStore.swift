import StarlingCore
import StarlingPostgres

/// Read queries of the hub (pulls, conflicts, status), run on the read pool's threads.
enum HubStore {
    /// Columns of `starling_hub.conflicts` in the order ``conflictRecord(_:)`` reads them.
    static let conflictColumns =
        "id, table_name, key, policy, provisional, status, winner, current_seq, current_origin, current_op, "
        + "current_row, incoming_id, incoming_origin, incoming_op, incoming_base, incoming_row, "
        + "to_char(detected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS detected"

    static func conflictRecord(_ row: PostgresRow) throws -> ConflictRecord {
        let provisional = try row.optionalString(4).flatMap(ConflictPolicy.ManualProvisional.init(rawValue:))
        let policy = try ConflictPolicy(name: try row.string(3), manualProvisional: provisional ?? .keepHead)
        func op(_ column: Int) throws -> ChangeOperation {
            guard let op = ChangeOperation(rawValue: try row.string(column)) else {
                throw HubError(code: .storageFailed, message: "stored op is not insert, update or delete")
            }
            return op
        }
        return ConflictRecord(
            id: try row.int64(0), table: try row.string(1), key: try HubJSON.optionalObject(row.string(2)) ?? [:],
            policy: policy, status: ConflictRecord.Status(rawValue: try row.string(5)) ?? .auto,
            winner: ConflictRecord.Winner(rawValue: try row.string(6)) ?? .current,
            current: .init(
                seq: try row.int64(7), origin: try row.string(8), op: try op(9),
                row: try HubJSON.optionalObject(row.optionalString(10))),
            incoming: .init(
                id: try row.string(11), origin: try row.string(12), op: try op(13), base: try row.int64(14),
                row: try HubJSON.optionalObject(row.optionalString(15))),
            detectedAt: try row.optionalString(16))
    }

    /// One page of the log after `after`: the JSON of the entries the requester gets and the last seq scanned.
    struct PullPage: Sendable {
        var entriesJSON: [UInt8]
        var count: Int
        var lastScanned: Int64
    }

    /// Reads up to `limit` entries after `after` and writes those not filtered out (the requester's own,
    /// non-rewritten entries) as a JSON array body (without brackets), straight from the stored text.
    /// Entries after `after` up to `through` (the head this hub published: a hub that lost its lock without
    /// knowing it yet never serves what another hub logged since, under its own stale terms).
    static func pull(
        _ connection: PostgresConnection, region: String, after: Int64, through: Int64 = .max, limit: Int
    ) throws -> PullPage {
        let rows = try connection.query(
            "SELECT seq, origin, change_id, tx, table_name, op, key, row, hlc, kind, rewritten, target, base "
                + "FROM starling_hub.log WHERE seq > $1 AND seq <= $3 ORDER BY seq LIMIT $2",
            [.int64(after), .int(limit), .int64(through)], name: "hub.pull", prepared: true)
        var output: [UInt8] = []
        output.reserveCapacity(rows.count * 200)
        var count = 0
        var last = after
        for row in rows {
            let seq = try row.int64(0)
            last = seq
            let origin = try row.string(1)
            let rewritten = try row.bool(10)
            if origin == region && !rewritten { continue }
            // A repair is for its target region only; `base` is the head seq it re-asserts.
            if let target = try row.optionalString(11), target != region { continue }
            if count > 0 { output.append(UInt8(ascii: ",")) }
            count += 1
            LogEntry.write(
                base: try row.optionalInt64(12), hlc: try row.int64(8), id: try row.string(2),
                keyJSON: try row.string(6),
                kind: try row.string(9), op: try row.string(5), origin: origin, isRewritten: rewritten,
                rowJSON: try row.optionalString(7), seq: seq, table: try row.string(4), tx: try row.string(3),
                to: &output)
        }
        return PullPage(entriesJSON: output, count: count, lastScanned: last)
    }

    /// A page of conflicts with id > `after`, ascending; `openOnly` keeps status `open`.
    static func conflicts(_ connection: PostgresConnection, openOnly: Bool, after: Int64, limit: Int) throws
        -> [ConflictRecord]
    {
        let filter = openOnly ? "status = 'open' AND " : ""
        let rows = try connection.query(
            "SELECT \(conflictColumns) FROM starling_hub.conflicts WHERE \(filter)id > $1 ORDER BY id LIMIT $2",
            [.int64(after), .int(limit)], name: "hub.conflicts")
        return try rows.map(conflictRecord)
    }

    /// Open and total conflict counts.
    static func conflictCounts(_ connection: PostgresConnection) throws -> (open: Int64, total: Int64) {
        let row = try connection.query(
            "SELECT count(*) FILTER (WHERE status = 'open') AS open, count(*) AS total FROM starling_hub.conflicts",
            name: "hub.conflictCounts")[0]
        return (try row.int64(0), try row.int64(1))
    }

    /// Commit times (epoch microseconds) of the entries at `seqs`.
    static func commitTimes(_ connection: PostgresConnection, seqs: [Int64]) throws -> [Int64: Int64] {
        guard !seqs.isEmpty else { return [:] }
        let rows = try connection.query(
            "SELECT seq, (extract(epoch FROM committed_at) * 1000000)::bigint FROM starling_hub.log "
                + "WHERE seq = ANY($1::bigint[])", [.int64Array(seqs)], name: "hub.commitTimes")
        var result: [Int64: Int64] = [:]
        for row in rows { result[try row.int64(0)] = try row.int64(1) }
        return result
    }

    /// Every region's stored activity.
    static func loadRegions(_ connection: PostgresConnection) throws -> [(String, RegionActivity.Entry)] {
        let rows = try connection.query(
            "SELECT name, cursor, (extract(epoch FROM last_pull_at) * 1000000)::bigint, "
                + "(extract(epoch FROM last_push_at) * 1000000)::bigint, outbox_depth, apply_lag, last_error, "
                + "(extract(epoch FROM reported_at) * 1000000)::bigint FROM starling_hub.regions",
            name: "hub.loadRegions")
        return try rows.map { row in
            (
                try row.string(0),
                RegionActivity.Entry(
                    cursor: try row.int64(1), lastPullAt: try row.optionalInt64(2),
                    lastPushAt: try row.optionalInt64(3),
                    outboxDepth: try row.optionalInt64(4), applyLag: try row.optionalDouble(5),
                    lastError: try row.optionalString(6), reportedAt: try row.optionalInt64(7))
            )
        }
    }

    /// Writes region activity in one statement.
    static func saveRegions(_ connection: PostgresConnection, _ entries: [(String, RegionActivity.Entry)]) throws {
        guard !entries.isEmpty else { return }
        try connection.execute(
            "INSERT INTO starling_hub.regions (name, cursor, last_pull_at, last_push_at, outbox_depth, apply_lag, "
                + "last_error, reported_at) SELECT n, c, to_timestamp(pl / 1e6), to_timestamp(ps / 1e6), o, a, e, "
                + "to_timestamp(r / 1e6) FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], "
                + "$5::bigint[], $6::float8[], $7::text[], $8::bigint[]) AS u(n, c, pl, ps, o, a, e, r) "
                + "ON CONFLICT (name) DO UPDATE SET cursor = EXCLUDED.cursor, last_pull_at = EXCLUDED.last_pull_at, "
                + "last_push_at = EXCLUDED.last_push_at, outbox_depth = EXCLUDED.outbox_depth, "
                + "apply_lag = EXCLUDED.apply_lag, last_error = EXCLUDED.last_error, "
                + "reported_at = EXCLUDED.reported_at",
            [
                .textArray(entries.map { $0.0 }), .int64Array(entries.map { $0.1.cursor }),
                .int64Array(entries.map { $0.1.lastPullAt }), .int64Array(entries.map { $0.1.lastPushAt }),
                .int64Array(entries.map { $0.1.outboxDepth }), .doubleArray(entries.map { $0.1.applyLag }),
                .textArray(entries.map { $0.1.lastError }), .int64Array(entries.map { $0.1.reportedAt }),
            ], name: "hub.saveRegions")
    }

    /// Every registered shape with its version and image rules (what ``ShapeCache`` holds).
    static func loadShapeEntries(_ connection: PostgresConnection) throws -> [String: ShapeCache.Entry] {
        let rows = try connection.query(
            "SELECT table_name, rules, version FROM starling_hub.table_shapes", name: "hub.loadShapeRules")
        let shapes = try loadShapes(connection)
        var entries: [String: ShapeCache.Entry] = [:]
        for row in rows {
            let name = try row.string(0)
            guard let shape = shapes[name] else { continue }
            entries[name] = ShapeCache.Entry(
                shape, rules: try ImageRules(json: try JSONValue(parsing: try row.string(1))), version: try row.int64(2))
        }
        return entries
    }

    /// Registered table shapes by table name (the registration's columns, as stored, and key).
    static func loadShapes(_ connection: PostgresConnection) throws -> [String: TableShape] {
        let rows = try connection.query(
            "SELECT table_name, array_to_json(key_columns)::text, columns FROM starling_hub.table_shapes",
            name: "hub.loadShapes")
        var shapes: [String: TableShape] = [:]
        for row in rows {
            let name = try row.string(0)
            let key = try JSONValue(parsing: try row.string(1)).arrayValue?.compactMap(\.stringValue) ?? []
            let columns = try TableShape.columns(json: try JSONValue(parsing: try row.string(2)))
            shapes[name] = TableShape(name: name, columns: columns, key: key)
        }
        return shapes
    }
}
