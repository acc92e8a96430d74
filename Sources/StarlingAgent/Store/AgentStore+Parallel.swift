public import StarlingCore
public import StarlingPostgres

/// Parallel apply under WAL capture (``ApplyPlan``; README "Apply"): a page's key-disjoint parts commit on their
/// own connections, then the cursor's transaction
/// (``AgentStore/apply(_:after:next:wal:spill:clearsParts:connection:)``) applies the serial rest and moves the
/// cursor past the page.
///
/// The records also count as known log history (``LogHistory/load(connection:)``, the rewind's `cursorBefore`):
/// seqs a part applied are seqs this region knows, whether the cursor moved past them or not.
///
/// Exactly once: each part records the seqs it decided (`starling.apply_parts`) in its own transaction, and a pull
/// from the same cursor after a crash skips them (``appliedParts(after:connection:)``); the cursor's transaction
/// deletes the rows it covers. Bases stay right without a cursor move per part: a part's marker gives each key it
/// writes the version of the newest entry it applies there, so a local change committed after the part and
/// before the cursor moves has that base (``CaptureLedger``), not the older cursor.
extension AgentStore {
    /// What one part did.
    public enum PartOutcome: Sendable, Hashable {
        case applied(ApplySummary)
        /// The stored cursor is not the page's start: nothing applied (the pipeline restarts from the cursor).
        case stale
        /// Found under the part's locks: a table stream is stopped, entries are held, or one of its tables must
        /// apply in commit order (`dueToTables`: a foreign key, a unique index, a trigger added since the plan).
        /// Nothing applied: the cursor's transaction applies these entries.
        case serial(reason: String, dueToTables: Bool)
    }

    /// Thrown inside a part's transaction to roll it back (``PartOutcome/serial(reason:dueToTables:)``).
    private struct SerialNeeded: Error {
        var reason: String
        var dueToTables = false
    }

    /// Applies `entries` (one part, in seq order) in their own transaction on `connection`, whose session carries
    /// a replication origin of the agent's: checks the cursor is still `after` and, under row-exclusive locks on
    /// the part's tables, that no stream is stopped, no entry held and none of the tables must apply serially;
    /// writes the part's marker, applies as ``apply(_:after:next:wal:spill:clearsParts:connection:)`` does, and
    /// records the part's seqs.
    public func applyPart(_ entries: [LogEntry], after: Int64, wal: WALApply, connection: PostgresConnection) throws
        -> PartOutcome
    {
        let batchTables = Set(entries.map(\.table)).sorted()
        let marker = partMarker(entries, wal: wal)
        do {
            return try relaxedTransaction(connection, name: "agent.apply.part") { connection in
                let row = try connection.query(
                    """
                    SELECT EXISTS (SELECT 1 FROM starling.state WHERE cursor = $1) AS current,
                           (SELECT coalesce(json_agg(t.table_name), '[]')
                            FROM starling.synced_tables t)::text AS tables,
                           (SELECT coalesce(json_object_agg(t.table_name, t.renamed), '{}')
                            FROM starling.synced_tables t WHERE t.renamed <> '{}')::text AS renamed,
                           \(Self.lockableSQL(batchTables: "$2::text[]"))
                    """, [.int64(after), .textArray(batchTables)], name: "agent.apply.partState", prepared: true)[0]
                guard try row.bool("current") else { return .stale }
                if try row.bool("held") { throw SerialNeeded(reason: "entries are held for a stopped table") }
                let shapes = try lockAndCheckShapes(
                    Self.lockable(row), held: false, how: nil, connection: connection)
                if let (table, reason) = shapes.drift.first {
                    throw SerialNeeded(reason: "the stream of \(table) is stopped: \(reason)")
                }
                // Read under the locks: a constraint or trigger added since the plan shows.
                let serial = try Self.serialTables(among: batchTables, connection: connection)
                if !serial.isEmpty {
                    throw SerialNeeded(
                        reason: "\(serial.sorted().joined(separator: ", ")) must apply in commit order",
                        dueToTables: true)
                }
                // The part writes the keys its marker gives versions, and nothing else (its tables apply in parallel:
                // no trigger, no foreign key): its rows need not be decoded (``WrittenKeys``).
                try Self.emit(
                    marker, written: writtenKeys.isOn ? WrittenKeys.markerVersionsContent : nil, connection: connection)
                let tables = Set(try Self.names(try row.string("tables")))
                var summary = ApplySummary()
                var applicable = entries
                try deferPending(&applicable, pendingKeys: wal.pendingKeys, summary: &summary, connection: connection)
                try applyPulled(
                    applicable, tables: tables, drift: [:], versions: wal.versions,
                    renames: try Self.renames(try row.string("renamed")), summary: &summary, connection: connection)
                let seqs = entries.map(\.seq)
                try connection.query(
                    "INSERT INTO starling.apply_parts (after, max_seq, seqs) VALUES ($1, $2, $3::bigint[])",
                    [.int64(after), .int64(seqs.max() ?? after), .int64Array(seqs)], name: "agent.apply.partDone",
                    prepared: true)
                return .applied(summary)
            }
        } catch let needed as SerialNeeded {
            return .serial(reason: needed.reason, dueToTables: needed.dueToTables)
        }
    }

    /// A part's marker: the cursor stays; each key the part writes gets the seq of its newest entry there as its
    /// version; the clock observes the part's entries; the part promises what the cursor's apply promises
    /// (``CaptureLedger/Marker/deferredThrough``: its tables have no side writes, nothing is held or spilled).
    func partMarker(_ entries: [LogEntry], wal: WALApply) -> CaptureLedger.Marker {
        var versions: [TableKey: Int64] = [:]
        var maxHLC: Int64 = 0
        for entry in entries {
            maxHLC = max(maxHLC, entry.hlc)
            guard entry.origin != region || entry.rewritten else { continue }
            let key = TableKey(table: entry.table, key: entry.key)
            guard !wal.pendingKeys.contains(key), !Self.isSuperseded(entry, versions: wal.versions ?? [:]) else {
                continue
            }
            versions[key] = max(versions[key] ?? 0, entry.seq)
        }
        return CaptureLedger.Marker(
            versions: versions, observedHLC: maxHLC > 0 ? maxHLC : nil, deferredThrough: wal.deferredThrough)
    }

    /// The seqs above `after` that parts applied (or decided) before the cursor moved: skipped when the page from
    /// `after` is pulled again.
    public func appliedParts(after: Int64, connection: PostgresConnection) throws -> Set<Int64> {
        Set(try connection.query(
            "SELECT unnest(seqs) AS seq FROM starling.apply_parts WHERE after = $1", [.int64(after)],
            name: "agent.apply.partsDone", prepared: true
        ).map { row throws in try row.int64("seq") })
    }

    /// In the cursor's transaction, moving the cursor from `after` to `next`: deletes the part rows it covers, and
    /// moves a row holding seqs beyond `next` (a page pulled again after a crash came back shorter) to `next`.
    static func clearParts(after: Int64, next: Int64, connection: PostgresConnection) throws {
        try connection.query(
            """
            WITH covered AS (DELETE FROM starling.apply_parts WHERE after <> $1 OR max_seq <= $2)
            UPDATE starling.apply_parts SET after = $2 WHERE after = $1 AND max_seq > $2
            """, [.int64(after), .int64(next)], name: "agent.apply.partsClear", prepared: true)
    }

    /// The tables among `batchTables` (names) that must apply in commit order (``ApplyPlan``).
    public static func serialTables(among batchTables: [String], connection: PostgresConnection) throws
        -> Set<String>
    {
        let text = try connection.query(
            "SELECT (\(serialTablesSQL(batchTables: "$1::text[]")))::text AS serial", [.textArray(batchTables)],
            name: "agent.apply.serialTables", prepared: true)[0].string("serial")
        return Set((try JSONValue(parsing: text).arrayValue ?? []).compactMap(\.stringValue))
    }

    /// A JSON array of the synced tables among `batchTables` (a `text[]` expression) whose rows may depend on other
    /// rows or write other rows: a foreign key from or to it, a unique or exclusion index besides the primary key
    /// (so a table keyed by a unique index without a primary key applies serially), a trigger of the application's
    /// (enabled, not Starling's own) or a rule.
    static func serialTablesSQL(batchTables: String) -> String {
        """
        SELECT coalesce(json_agg(s.table_name), '[]')
        FROM starling.synced_tables s JOIN pg_class c ON c.oid = s.relation_oid
        WHERE s.table_name = ANY(\(batchTables))
          AND (c.relhasrules
               OR EXISTS (SELECT 1 FROM pg_constraint f
                          WHERE f.contype = 'f' AND (f.conrelid = c.oid OR f.confrelid = c.oid))
               OR EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid
                          AND ((i.indisunique AND NOT i.indisprimary) OR i.indisexclusion))
               OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal
                          AND t.tgenabled <> 'D' AND t.tgname NOT IN ('\(TableSQL.captureTrigger)',
                          '\(TableSQL.truncateGuard)', '\(TableSQL.legacyLockTrigger)')))
        """
    }
}
