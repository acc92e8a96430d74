public import StarlingCore
import StarlingPostgres

/// What an apply under WAL capture knows from memory (``CaptureQueue``) instead of reading bookkeeping rows.
public struct WALApply: Sendable {
    /// Keys with a local change waiting for its verdict: their entries are deferred.
    public var pendingKeys: Set<TableKey>
    /// The versions above the cursor that the batch's keys hold (verdict images, ``CaptureQueue/recordVersions(_:)``);
    /// nil while trigger capture is still being switched off: the version rows are read and written then, since
    /// the capture triggers take their bases from them.
    public var versions: [TableKey: Int64]?
    /// The newest decoded position when `pendingKeys` was taken (``CaptureQueue/pendingSnapshot(among:)``): every
    /// change decoded up to it that is still pending and in the batch has its key there. Announced in the apply's
    /// marker (``CaptureLedger/Marker/deferredThrough``) when the apply writes nothing else.
    public var deferredThrough: StreamPosition?

    public init(pendingKeys: Set<TableKey>, versions: [TableKey: Int64]?, deferredThrough: StreamPosition? = nil) {
        self.pendingKeys = pendingKeys
        self.versions = versions
        self.deferredThrough = deferredThrough
    }
}

/// Applying under WAL capture with no bookkeeping write (DESIGN.md "Engine v2"): the skip decisions are made
/// here from versions held in memory, and the table's WAL apply functions (``TableSQL/applyWALBatchFunctionSQL()``)
/// write the user rows only.
extension AgentStore {
    /// Whether `entry` is older than what the key holds: a version at or above its seq (for a repair, above the
    /// head seq it re-asserts, see AgentStore+Repair.swift). `versions` holds the versions above the cursor
    /// (verdict images): every other version is at most the cursor, below every pulled entry.
    static func isSuperseded(_ entry: LogEntry, versions: [TableKey: Int64]) -> Bool {
        guard !versions.isEmpty, let version = versions[TableKey(table: entry.table, key: entry.key)] else {
            return false
        }
        return entry.kind == .repair ? version > (entry.base ?? 0) : version >= entry.seq
    }

    /// Writes `images` (in seq order) inside the caller's transaction, with no version check: the caller skipped
    /// what is superseded. Images of tables not synced here are skipped. Per table (in order of first
    /// appearance) only the newest image of each key is written, by one call of the table's WAL batch function;
    /// when it raises, nothing of it remains and that table's images are written one by one, where only the
    /// failing ones become dead letters holding `deadLetter(index)`.
    func applyImagesInMemory(
        _ images: [Image], tables: Set<String>, connection: PostgresConnection, deadLetter: (Int) -> JSONValue
    ) throws -> ImageStatuses {
        var statuses = [ApplyStatus](repeating: .applied, count: images.count)
        let groups = Self.groupByTable(images, tables: tables)
        for index in groups.notInstalled { statuses[index] = .skippedVersion }
        var fallbacks = 0
        for (table, indices) in groups.tables {
            let batch = try Self.walBatch(images, indices: indices, table: table)
            let result = try connection.query(
                "SELECT error_state FROM \(batch.function)($1::jsonb, $2::jsonb)", batch.documents,
                name: "agent.apply.walBatch", prepared: true)[0]
            guard try result.optionalString("error_state") != nil else { continue }
            let (newest, sql) = (batch.newest, try TableSQL(shape: TableShape(name: table, columns: [], key: [])))
            fallbacks += 1
            for index in newest {
                let image = images[index]
                let single = try connection.query(
                    "SELECT error_state, error_message FROM \(sql.applyWALFunction)($1::jsonb, $2::jsonb)",
                    [.text(Self.text(image.key)), image.rowText.map { .text($0) } ?? .null],
                    name: "agent.apply.walEntry", prepared: true)[0]
                guard let state = try single.optionalString("error_state") else { continue }
                try recordDeadLetter(
                    deadLetter(index), seq: image.seq, table: table, sqlState: state,
                    error: try single.optionalString("error_message") ?? "apply failed", connection: connection)
                statuses[index] = .failed
            }
        }
        return ImageStatuses(statuses: statuses, batchFallbacks: fallbacks)
    }

    /// One table's call of its WAL batch function: the newest image of each key among `indices` (in seq order; the
    /// older ones would be overwritten in this transaction anyway) as its two documents, upserts and deletes.
    static func walBatch(_ images: [Image], indices: [Int], table: String) throws
        -> (function: String, documents: [PostgresValue], newest: [Int])
    {
        var seen = Set<TableKey>()
        seen.reserveCapacity(indices.count)
        let newest = Array(
            indices.reversed().filter { seen.insert(TableKey(table: table, key: images[$0].key)).inserted }.reversed())
        var upserts = JSONBatchWriter()
        var deletes = JSONBatchWriter()
        for index in newest {
            let image = images[index]
            if image.row == nil && image.rowJSON == nil {
                deletes.append(deleting: image.key)
            } else {
                upserts.append(row: image.row, rowJSON: image.rowJSON)
            }
        }
        let sql = try TableSQL(shape: TableShape(name: table, columns: [], key: []))
        return (
            sql.applyWALBatchFunction,
            [upserts.isEmpty ? .null : .text(upserts.finish()), deletes.isEmpty ? .null : .text(deletes.finish())],
            newest
        )
    }

    /// The version rows above `cursor` (written by trigger capture's verdicts, or by a bootstrap's heads): what
    /// WAL capture must know in memory when it takes over from them.
    static func versions(above cursor: Int64, connection: PostgresConnection) throws -> [TableKey: Int64] {
        var versions: [TableKey: Int64] = [:]
        for row in try connection.query(
            "SELECT table_name, key::text AS key, seq FROM starling.versions WHERE seq > $1", [.int64(cursor)],
            name: "agent.versions.above", prepared: true)
        {
            let key = try JSONValue(parsing: try row.string("key")).objectValue ?? [:]
            versions[TableKey(table: try row.string("table_name"), key: key)] = try row.int64("seq")
        }
        return versions
    }

    /// A WAL position at or after every commit so far on this connection (the insert position).
    static let insertPositionSQL = "SELECT pg_current_wal_insert_lsn()::text AS lsn"

    static func walInsertPosition(connection: PostgresConnection) throws -> LSN {
        let text = try connection.query(Self.insertPositionSQL, name: "agent.wal.insertLSN", prepared: true)[0]
            .string("lsn")
        return try LSN(parsing: text, what: "pg_current_wal_insert_lsn")
    }
}
