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
    /// The applied entries' keys, in their order, when the caller made them already (``Agent/applyPage``): the
    /// one-trip apply then makes none again (each is the table and the key's canonical JSON, hashed).
    public var keys: [TableKey]?

    public init(
        pendingKeys: Set<TableKey>, versions: [TableKey: Int64]?, deferredThrough: StreamPosition? = nil,
        keys: [TableKey]? = nil
    ) {
        self.pendingKeys = pendingKeys
        self.versions = versions
        self.deferredThrough = deferredThrough
        self.keys = keys
    }
}

/// Applying under WAL capture with no bookkeeping write (DESIGN.md "Engine v2"): the skip decisions are made
/// here from versions held in memory, and the table's WAL apply functions (``TableSQL/applyWALRowsFunctionSQL()``)
/// write the user rows only.
extension AgentStore {
    /// Whether `entry` is older than what the key holds: a version at or above its seq (for a repair, above the
    /// head seq it re-asserts, see AgentStore+Repair.swift). `versions` holds the versions above the cursor
    /// (verdict images): every other version is at most the cursor, below every pulled entry.
    static func isSuperseded(_ entry: LogEntry, key: TableKey? = nil, versions: [TableKey: Int64]) -> Bool {
        guard !versions.isEmpty, let version = versions[key ?? entry.tableKey] else {
            return false
        }
        return entry.kind == .repair ? version > (entry.base ?? 0) : version >= entry.seq
    }

    /// Writes `images` (in seq order) inside the caller's transaction, with no version check: the caller skipped
    /// what is superseded. Images of tables not synced here are skipped. Per table (in order of first
    /// appearance) only the newest image of each key is written, by the table's WAL batch function (one call, or a
    /// few in key order for a large batch: ``walBatch(_:indices:table:inCalls:)``, then in one call if one of those
    /// raises); when that raises, nothing of the table's calls remains and its images are written one by one in seq
    /// order, where only the failing ones become dead letters holding `deadLetter(index)`.
    func applyImagesInMemory(
        _ images: [Image], tables: Set<String>, connection: PostgresConnection, deadLetter: (Int) -> JSONValue
    ) throws -> ImageStatuses {
        var statuses = [ApplyStatus](repeating: .applied, count: images.count)
        let groups = Self.groupByTable(images, tables: tables)
        for index in groups.notInstalled { statuses[index] = .skippedVersion }
        var fallbacks = 0
        for (table, indices) in groups.tables {
            let batch = try Self.walBatch(images, indices: indices, table: table)
            if batch.locksFirst { try connection.query(Self.lockingRows(of: table, images: images, indices: batch.newest)) }
            func written(_ calls: [WALBatch.Call]) throws -> Bool {
                for call in calls {
                    let result = try connection.query(
                        "SELECT error_state FROM \(batch.function)($1::jsonb, $2::jsonb)", call.documents(images),
                        name: "agent.apply.walBatch", prepared: true)[0]
                    if try result.optionalString("error_state") != nil { return false }
                }
                return true
            }
            if batch.calls.count == 1 {
                if try written(batch.calls) { continue }
            } else {
                // Calls that all must write or none: a savepoint undoes the ones before a failing one. Then the batch
                // in one call: a constraint checked at the end of each statement (a foreign key of the table to
                // itself, a deferrable unique index) may fail between calls where one statement passes.
                try connection.execute("SAVEPOINT wal_batch", name: "agent.apply.savepoint")
                defer { _ = try? connection.execute("RELEASE SAVEPOINT wal_batch", name: "agent.apply.savepoint") }
                if try written(batch.calls) { continue }
                try connection.execute("ROLLBACK TO SAVEPOINT wal_batch", name: "agent.apply.savepoint")
                let whole = try Self.walBatch(images, indices: indices, table: table, inCalls: false)
                if try written(whole.calls) { continue }
            }
            let (newest, sql) = (batch.newest, try QuotedNames.of(table))
            fallbacks += 1
            // One by one in seq order: the rows are locked in key order first (the failed calls' locks are gone).
            if newest.count > 1 { try connection.query(Self.lockingRows(of: table, images: images, indices: newest)) }
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

    /// Rows written per call of a table's WAL batch function, when the calls can keep primary-key order
    /// (``walBatch(_:indices:table:inCalls:)``). A call's documents are parsed into memory that the backend gets fresh from
    /// the kernel each time past a few hundred kilobytes: upserting 20,000 rows of the benchmark's table in calls of
    /// 5,000 page-faulted about 0.8 times per row and took 17 % more CPU than in calls of 1,000 (0.05 faults per row;
    /// 250 gave the same as 1,000), on PostgreSQL 15 with glibc's allocator (2026-12-06).
    static let walBatchRows = 1000

    /// One table's calls of its WAL batch function (``WALBatch``): the newest image of each key among `indices` (the
    /// older ones would be overwritten in this transaction anyway; `newest` in seq order), as the functions' two
    /// documents, upserts and deletes. One call, unless `inCalls`, there are more than ``walBatchRows`` images and the
    /// key is one column holding integers: then the images go in key order (as the function writes them within a
    /// call), deletes first, ``walBatchRows`` a call.
    static func walBatch(_ images: [Image], indices: [Int], table: String, inCalls: Bool = true) throws -> WALBatch {
        var seen = Set<TableKey>()
        seen.reserveCapacity(indices.count)
        let newest = Array(
            indices.reversed().filter { seen.insert(images[$0].tableKey).inserted }.reversed())
        let function = try QuotedNames.of(table).applyWALRowsFunction
        func isDelete(_ index: Int) -> Bool { images[index].row == nil && images[index].rowJSON == nil }
        // The function deletes in the document's order, then upserts in key order: with a delete among other rows,
        // the rows are locked in key order first.
        let locksFirst = newest.count > 1 && newest.contains(where: isDelete)
        func batch(_ calls: [WALBatch.Call]) -> WALBatch {
            WALBatch(function: function, calls: calls, newest: newest, locksFirst: locksFirst)
        }
        guard inCalls, newest.count > walBatchRows, let keyed = integerKeyOrder(newest.map { images[$0].key }) else {
            return batch([WALBatch.Call(upserts: newest.filter { !isDelete($0) }, deletes: newest.filter(isDelete))])
        }
        let ordered = keyed.map { newest[$0] }
        func slices(_ list: [Int]) -> [[Int]] {
            stride(from: 0, to: list.count, by: walBatchRows).map { Array(list[$0..<min($0 + walBatchRows, list.count)]) }
        }
        return batch(
            slices(ordered.filter(isDelete)).map { WALBatch.Call(upserts: [], deletes: $0) }
                + slices(ordered.filter { !isDelete($0) }).map { WALBatch.Call(upserts: $0, deletes: []) })
    }

    /// ``walBatch(_:indices:table:inCalls:)``'s calls of one table's WAL batch function.
    struct WALBatch {
        /// The function's quoted name.
        var function: String
        /// The calls, in the order they go.
        var calls: [Call]
        /// The images written: the newest of each key, in seq order.
        var newest: [Int]
        /// Whether the rows of `newest` are locked in key order before the calls (``lockingRows(of:images:indices:)``):
        /// the calls write them in more than one run (a delete among other rows).
        var locksFirst: Bool

        /// One call's images (indices into the caller's images): upserted and deleted.
        struct Call {
            var upserts: [Int]
            var deletes: [Int]

            /// The call's two documents (upserts, deletes; NULL for none), made when the call goes: the one-trip
            /// apply sends most batches' upserts as arrays instead (``AgentStore/columnArrays(_:indices:columns:)``).
            func documents(_ images: [Image]) -> [PostgresValue] {
                var upsertDocument = JSONBatchWriter()
                var deleteDocument = JSONBatchWriter()
                for index in upserts { upsertDocument.append(row: images[index].row, rowJSON: images[index].rowJSON) }
                for index in deletes { deleteDocument.append(key: images[index].key) }
                return [
                    upserts.isEmpty ? .null : .text(upsertDocument.finish()),
                    deletes.isEmpty ? .null : .text(deleteDocument.finish()),
                ]
            }
        }
    }

    /// Locks the rows of `keys` in primary-key order, table by table (by name), inside the caller's transaction,
    /// before it writes them in more than one run: each run in key order, as the batch functions write, but not
    /// the runs together, and an application transaction updating the same rows in key order could deadlock with
    /// the agent's, and be the one PostgreSQL aborts (W3 of the replication benchmark, where the verdict transaction
    /// wrote its images and then the deferred entries the verdicts released).
    static func lockRows(_ keys: [TableKey], connection: PostgresConnection) throws {
        var byTable: [String: [JSONObject]] = [:]
        for tableKey in Set(keys) { byTable[tableKey.table, default: []].append(tableKey.key) }
        for (table, keys) in byTable.sorted(by: { $0.key < $1.key }) {
            try connection.query(lockingRows(of: table, keys: keys))
        }
    }

    /// ``lockingRows(of:keys:)`` for the rows of `images` at `indices` (all of `table`).
    static func lockingRows(of table: String, images: [Image], indices: [Int]) -> PostgresStatement {
        lockingRows(of: table, keys: indices.map { images[$0].key })
    }

    /// The statement locking `keys`' rows of `table` in primary-key order (`starling.lock_rows`,
    /// Migrations/agent/0015; a key the table no longer fits locks nothing there).
    static func lockingRows(of table: String, keys: [JSONObject]) -> PostgresStatement {
        var document = JSONBatchWriter()
        for key in keys { document.append(key: key) }
        return PostgresStatement(
            "SELECT starling.lock_rows($1, $2::jsonb) AS locked", [.text(table), .text(document.finish())],
            name: "agent.apply.lockRows", prepared: true)
    }

    /// The positions of `keys` in ascending key order when every key is one column holding a JSON integer number
    /// (the order PostgreSQL gives an integer column); nil otherwise: a text key's order depends on its collation, and
    /// a string of digits may be text (an int8 key travels as a string too, and is not ordered here).
    static func integerKeyOrder(_ keys: [JSONObject]) -> [Int]? {
        var values: [Int64] = []
        values.reserveCapacity(keys.count)
        for key in keys {
            guard key.count == 1, case .number(let text)? = key.first?.value, let value = Int64(text) else { return nil }
            values.append(value)
        }
        return values.indices.sorted { values[$0] < values[$1] }
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
        try insertPosition(try connection.query(Self.insertPositionSQL, name: "agent.wal.insertLSN", prepared: true))
    }

    /// The position in the result of ``insertPositionSQL``.
    static func insertPosition(_ result: PostgresResult) throws -> LSN {
        try LSN(parsing: try result[0].string("lsn"), what: "pg_current_wal_insert_lsn")
    }
}
