public import StarlingCore
public import StarlingPostgres

/// Origin transactions larger than the agent holds in memory while their pages arrive (README "Large
/// transactions"): the pull keeps reading a transaction until it ends, but past ``AgentStore/spillEntries``
/// entries it writes what it has read to `starling.spilled_entries` and lets go of it; the apply transaction
/// that applies the whole origin transaction reads them back a slice at a time (``AgentStore/spillSlice``).
/// A reader of the region's tables still sees none or all of the transaction: the spilled rows are bookkeeping,
/// the user rows are written only by the one apply transaction.
extension AgentStore {
    /// Entries a pull holds of an unfinished origin transaction before it spills them.
    public static let spillEntries = 20_000
    /// Spilled entries read back and applied at a time.
    static let spillSlice = 5_000

    /// What a batch left in `starling.spilled_entries`: its entries after the batch's `after` up to `through`.
    public struct Spill: Sendable {
        /// The newest spilled seq.
        public var through: Int64 = 0
        /// The newest HLC among them (the clock observes it with the rest of the batch).
        public var maxHLC: Int64 = 0
        /// Their tables (locked and checked with the batch's).
        public var tables: Set<String> = []
        /// WAL capture: what memory says of a slice's keys — pending local changes, versions above the cursor
        /// (``WALApply``); nil under trigger capture (the version rows and the outbox decide).
        public var wal: (@Sendable ([LogEntry]) -> WALApply)?

        public init() {}

        /// Records `entries`, spilled in seq order.
        public mutating func spilled(_ entries: [LogEntry]) {
            guard let last = entries.last else { return }
            through = max(through, last.seq)
            for entry in entries {
                maxHLC = max(maxHLC, entry.hlc)
                tables.insert(entry.table)
            }
        }
    }

    /// Writes pulled entries to `starling.spilled_entries` (a seq written twice, by two pulls of the same page,
    /// is kept once: log entries never change under a seq the agent has not rewound past).
    public func spill(_ entries: [LogEntry], connection: PostgresConnection) throws {
        guard !entries.isEmpty else { return }
        try connection.query(
            """
            INSERT INTO starling.spilled_entries (seq, entry)
            SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT (seq) DO NOTHING
            """, [.int64Array(entries.map(\.seq)), .textArray(entries.map(\.json.canonicalText))],
            name: "agent.spill")
    }

    /// Deletes spilled entries up to `seq` (applied), or all of them (`nil`: at start and at a rewind, when no
    /// pull is under way).
    public static func dropSpilled(through seq: Int64?, connection: PostgresConnection) throws {
        if let seq {
            try connection.query(
                "DELETE FROM starling.spilled_entries WHERE seq <= $1", [.int64(seq)], name: "agent.spill.drop")
        } else {
            try connection.query("DELETE FROM starling.spilled_entries", name: "agent.spill.clear")
        }
    }

    /// Applies the spilled entries after `after` up to `spill.through`, a slice at a time, inside the caller's
    /// transaction, as ``apply(_:after:next:wal:spill:connection:)`` applies its in-memory entries: under WAL
    /// capture, entries of keys with a pending local change are deferred and superseded ones skipped by the
    /// versions memory holds (`inMemory`).
    func applySpilled(
        _ spill: Spill, after: Int64, inMemory: Bool, tables: Set<String>, summary: inout ApplySummary,
        connection: PostgresConnection
    ) throws {
        var from = after
        while from < spill.through {
            let rows = try connection.query(
                "SELECT seq, entry FROM starling.spilled_entries WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3",
                [.int64(from), .int64(spill.through), .int(Self.spillSlice)], name: "agent.spill.read")
            guard let last = rows.last else { break }
            from = try last.int64(0)
            var slice = try rows.map { row throws in try LogEntry(json: try JSONValue(parsing: try row.string(1))) }
            var versions: [TableKey: Int64]?
            if let wal = spill.wal?(slice) {
                try deferPending(&slice, pendingKeys: wal.pendingKeys, summary: &summary, connection: connection)
                versions = inMemory ? wal.versions : nil
            }
            // Under WAL capture the caller tells the capture queue which keys this transaction wrote.
            if spill.wal != nil {
                summary.spilledKeys.append(contentsOf: slice.map { TableKey(table: $0.table, key: $0.key) })
            }
            try applyPulled(
                slice, tables: tables, drift: summary.stoppedTables, versions: versions, summary: &summary,
                connection: connection)
            if rows.count < Self.spillSlice { break }
        }
    }
}
