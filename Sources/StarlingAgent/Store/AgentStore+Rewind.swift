public import StarlingCore
public import StarlingPostgres

/// The rewind after the hub's store was restored to an earlier point (README "Restoring the hub's store";
/// Agent+Rewind.swift drives it): this region saw entries the hub no longer holds, under seqs the hub hands out
/// again for other changes. One transaction puts the region back at the point where the histories part and
/// re-asserts, as ordinary outbox rows marked with a priority (``Change/reassert``), the row images the lost
/// history left here, so the hub gets them back from the regions that hold them.
extension AgentStore {
    /// What a rewind did.
    public struct RewindSummary: Sendable, Hashable {
        /// The cursor before (the region's pull position in the lost history).
        public var cursorBefore: Int64 = 0
        /// Rows re-asserted (outbox rows), per table.
        public var reasserted: [String: Int] = [:]
    }

    /// What the agent holds in memory under WAL capture that a rewind must see.
    public struct RewindWAL: Sendable {
        /// Keys with a decoded local change waiting for its verdict: not re-asserted (that change is newer).
        public var pendingKeys: Set<TableKey>
        /// Versions above the cursor (verdict images), which trigger capture would have in version rows.
        public var versions: [TableKey: Int64]

        public init(pendingKeys: Set<TableKey>, versions: [TableKey: Int64]) {
            self.pendingKeys = pendingKeys
            self.versions = versions
        }
    }

    /// Rewinds to `point` in one transaction, with the hub's heads of every table of `tables` loaded in
    /// `starling.snapshot_rows` (``Bootstrapper/loadSnapshot(table:)``):
    /// 1. re-asserts each row that differs from the hub's head and that the lost history changed here — its
    ///    version is above `point` (a version row, or `wal.versions`), or, under WAL capture, which keeps no
    ///    version per applied entry, the cursor was above `point` and the hub's head is not newer than it — unless
    ///    a local change of the key is pending (it is newer and on its way) or the key has entries held at or below
    ///    `point` (its table's stream is stopped: the row is behind the hub, not ahead of it). The priority is the furthest seq the
    ///    image is known at: its version, or the cursor before the rewind when that is further.
    /// 2. clamps what referred to the lost history: versions and pending changes' bases above `point` become
    ///    `point`; deferred, held and spilled entries above it are dropped (their seqs now name other changes);
    /// 3. moves the cursor back to `point` (when beyond it) and stores `position`;
    /// 4. under WAL capture, a marker announces the rewind to the decoder (``CaptureLedger/Marker/rewind``).
    public func rewind(
        to point: Int64, tables: [TableShape], position: LogHistory.Position, wal: RewindWAL?,
        connection: PostgresConnection
    ) throws -> RewindSummary {
        try connection.transaction(name: "agent.rewind") { connection in
            var summary = RewindSummary()
            // Seqs parallel parts applied above the cursor count as passed (AgentStore+Parallel.swift).
            summary.cursorBefore = try connection.query(
                """
                SELECT greatest(cursor, (SELECT max(p.max_seq) FROM starling.apply_parts p WHERE p.after = s.cursor))
                       AS cursor
                FROM starling.state s FOR UPDATE
                """, name: "agent.rewind.cursor")[0].int64("cursor")
            let lostByCursor = wal != nil && summary.cursorBefore > point
            var pending = JSONBatchWriter()
            for key in wal?.pendingKeys ?? [] { pending.append(table: key.table, key: key.key, seq: 0) }
            var versions = JSONBatchWriter()
            for (key, seq) in wal?.versions ?? [:] { versions.append(table: key.table, key: key.key, seq: seq) }
            let (pendingText, versionsText) = (pending.finish(), versions.finish())
            try connection.query(Bootstrapper.imageSettings, name: "agent.boot.settings")
            for shape in tables {
                let sql = try TableSQL(shape: shape)
                let rows = try connection.query(
                    """
                    WITH l AS (\(try Bootstrapper.localImages(sql))),
                         h AS (SELECT key AS k, row AS r, seq FROM starling.snapshot_rows
                               WHERE table_name = \(sql.tableLiteral)),
                         m AS (SELECT v.k, v.s FROM jsonb_to_recordset($4::jsonb) AS v(t text, k jsonb, s bigint)
                               WHERE v.t = \(sql.tableLiteral)),
                         p AS (SELECT v.k FROM jsonb_to_recordset($5::jsonb) AS v(t text, k jsonb, s bigint)
                               WHERE v.t = \(sql.tableLiteral)),
                         d AS (SELECT coalesce(l.k, h.k) AS k, l.r AS mine, h.r AS hub, coalesce(h.seq, 0) AS head,
                                      greatest(coalesce(v.seq, 0), coalesce(m.s, 0)) AS version
                               FROM l FULL JOIN h ON l.k = h.k
                               LEFT JOIN starling.versions v
                                 ON v.table_name = \(sql.tableLiteral) AND v.key = coalesce(l.k, h.k)
                               LEFT JOIN m ON m.k = coalesce(l.k, h.k)
                               WHERE l.r IS DISTINCT FROM h.r)
                    INSERT INTO starling.outbox (tx, table_name, op, key, before, after, base, captured_at, reassert)
                    SELECT txid_current() * 1000000 + 500000 + (row_number() OVER () - 1) / 1000, \(sql.tableLiteral),
                           CASE WHEN d.mine IS NULL THEN 'delete' WHEN d.hub IS NULL THEN 'insert' ELSE 'update' END,
                           d.k, d.hub, d.mine, $1, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint, greatest(d.version, CASE WHEN $2 THEN $3 ELSE 0 END)
                    FROM d
                    WHERE (d.version > $1 OR ($2 AND d.head <= $1))
                      AND NOT EXISTS (SELECT 1 FROM starling.outbox o
                                      WHERE o.table_name = \(sql.tableLiteral) AND o.key = d.k)
                      AND NOT EXISTS (SELECT 1 FROM p WHERE p.k = d.k)
                      AND NOT EXISTS (SELECT 1 FROM starling.held_entries he
                                      WHERE he.table_name = \(sql.tableLiteral) AND he.seq <= $1
                                        AND (he.entry::jsonb -> 'key') = d.k)
                    RETURNING 1
                    """,
                    [.int64(point), .bool(lostByCursor), .int64(summary.cursorBefore), .text(versionsText), .text(pendingText)], name: "agent.rewind.reassert")
                if !rows.isEmpty { summary.reasserted[shape.name] = rows.count }
            }
            try connection.query(
                "UPDATE starling.versions SET seq = $1 WHERE seq > $1", [.int64(point)], name: "agent.rewind.versions")
            try connection.query(
                "UPDATE starling.outbox SET base = $1 WHERE base > $1", [.int64(point)], name: "agent.rewind.bases")
            try connection.query(
                "DELETE FROM starling.deferred_entries WHERE seq > $1", [.int64(point)], name: "agent.rewind.deferred")
            try connection.query(
                "DELETE FROM starling.held_entries WHERE seq > $1", [.int64(point)], name: "agent.rewind.held")
            try connection.query("DELETE FROM starling.snapshot_rows", name: "agent.rewind.snapshot")
            // Seqs parts applied above the cursor named entries of the history the hub lost.
            try connection.query("DELETE FROM starling.apply_parts", name: "agent.rewind.parts")
            try Self.dropSpilled(through: nil, connection: connection)
            try connection.query(
                """
                UPDATE starling.state SET cursor = least(cursor, $1), known_seq = $2, log_terms = $3::jsonb,
                    updated_at = now()
                """, [.int64(point), .int64(position.known), .text(position.terms.json.canonicalText)],
                name: "agent.rewind.state")
            if wal != nil { try Self.emit(CaptureLedger.Marker(rewind: point), connection: connection) }
            return summary
        }
    }

    /// The keys with a re-assertion in the outbox (deferred at apply under WAL capture until their verdicts).
    public static func reassertedKeys(connection: PostgresConnection) throws -> Set<TableKey> {
        var keys = Set<TableKey>()
        for row in try connection.query(
            "SELECT table_name, key::text AS key FROM starling.outbox WHERE reassert IS NOT NULL",
            name: "agent.rewind.keys")
        {
            guard let key = try JSONValue(parsing: try row.string("key")).objectValue else { continue }
            keys.insert(TableKey(table: try row.string("table_name"), key: key))
        }
        return keys
    }
}
