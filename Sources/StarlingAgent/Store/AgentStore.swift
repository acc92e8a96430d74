public import StarlingCore
public import StarlingPostgres

/// The agent's work on the region's database, one blocking function per step of the loop: read a push
/// batch, stamp it with HLCs, act on the hub's verdicts, apply a pulled batch. Every function takes the
/// connection it runs on (the agent's dedicated `PostgresWorker` thread, or a test's own connection) and
/// keeps its invariants inside one transaction; nothing is cached between calls, so a crash at any point
/// resumes from what the database holds.
public struct AgentStore: Sendable {
    /// This region's name: the prefix of change ids and the origin of versions it records for itself.
    public let region: String
    /// Added to every `captured_at` before it feeds the HLC: a region whose clock runs ahead, for fault
    /// tests only (``Agent``'s `clockOffset`, which the CLI reads from `STARLING_CLOCK_OFFSET_MS`); 0 in
    /// production.
    public let clockOffsetMicros: Int64

    /// Whether the agent's own transactions (HLC stamps, verdicts, applies) wait for their WAL flush. Off by
    /// default, as pglogical's apply workers run: everything the agent commits can be redone from what stays
    /// durable elsewhere — a lost stamp is stamped again (the hub answers a decided id by its stored verdict,
    /// and physical time has passed every lost stamp by the restart), a lost verdict transaction gets the
    /// same verdict again from a re-push, a lost apply is pulled again from the hub's log (retention keeps
    /// entries far longer than the moment a crash can lose) — and each flush on the way from one region's
    /// commit to another's is latency (about three per change at this machine's fsync cost). The application's
    /// own transactions keep whatever the application set.
    public let isSynchronousCommit: Bool
    /// The region's log history, stored with every applied page and every verdict batch (nil in tests that
    /// drive the store without an agent).
    public let history: LogHistory?
    /// What applies read from the catalog, by the key it was read at, shared by this store's copies
    /// (``CatalogCache``).
    public let catalog: CatalogCache
    /// Whether applies list the keys they write (``WrittenKeys``: the slot decodes with `starling_pgoutput`),
    /// shared by this store's copies.
    public let writtenKeys: WrittenKeysSetting

    public init(
        region: String, clockOffsetMicros: Int64 = 0, isSynchronousCommit: Bool = false, history: LogHistory? = nil,
        catalog: CatalogCache = CatalogCache(), writtenKeys: WrittenKeysSetting = WrittenKeysSetting()
    ) {
        self.region = region
        self.clockOffsetMicros = clockOffsetMicros
        self.isSynchronousCommit = isSynchronousCommit
        self.history = history
        self.catalog = catalog
        self.writtenKeys = writtenKeys
    }

    /// A transaction without the WAL flush wait unless ``isSynchronousCommit`` (set with its `BEGIN`, which goes
    /// with the body's first statement): one lost in a crash is done again (its cursor move or its verdicts'
    /// handling is lost with it).
    func relaxedTransaction<T>(
        _ connection: PostgresConnection, name: String, _ body: (PostgresConnection) throws -> T
    ) throws -> T {
        try connection.transaction(name: name, settings: relaxedSettings, deferBegin: true, body)
    }

    /// What ``relaxedTransaction(_:name:_:)`` sets with its `BEGIN` (one statement, a `SELECT` so that it goes with
    /// the session's prologue: ``PostgresConnection/transactionPrologue``).
    var relaxedSettings: String? { isSynchronousCommit ? nil : "SELECT set_config('synchronous_commit', 'off', true)" }

    /// What the one-trip apply sets with its `BEGIN`, in one statement: ``relaxedSettings``' and the lock wait of
    /// ``lockStatements(_:)`` for the whole transaction (the batch functions set the same wait for their own
    /// statements), so its `LOCK TABLE` goes alone; a `SELECT`, so the session's prologue joins it
    /// (``PostgresConnection/transactionPrologue``). Three statements fewer of the ten a one-entry apply sent, each
    /// about 10 µs of the ~270 µs of CPU such an apply took in its database (W2 R=8 is one-entry applies, 2026-12-06).
    /// Its upsert statements (``TableSQL/upsertRowsSQL()``) parse images under the settings the apply functions set
    /// for themselves (``TableSQL/settings``) that reading a value depends on: set here for the transaction.
    var oneTripSettings: String {
        "SELECT set_config('lock_timeout', '\(TableSQL.applyLockTimeout)', true)"
            + (isSynchronousCommit ? "" : ", set_config('synchronous_commit', 'off', true)")
            + ", set_config('search_path', 'pg_catalog, pg_temp', true), set_config('DateStyle', 'ISO, YMD', true)"
            + ", set_config('IntervalStyle', 'postgres', true), set_config('TimeZone', 'UTC', true)"
    }

    /// The pull cursor and the last HLC.
    public func state(connection: PostgresConnection) throws -> (cursor: Int64, lastHLC: Int64) {
        let row = try connection.query(
            "SELECT cursor, last_hlc FROM starling.state", name: "agent.state", prepared: true)[0]
        return (try row.int64("cursor"), try row.int64("last_hlc"))
    }

    /// Rows waiting in the outbox.
    public func outboxDepth(connection: PostgresConnection) throws -> Int {
        Int(try connection.query("SELECT count(*) AS n FROM starling.outbox", name: "agent.outbox.depth")[0].int64("n"))
    }

    // MARK: - Push side

    static let outboxColumns = """
        id, tx, table_name, op, key::text AS key, before::text AS before, after::text AS after, base,
        captured_at, hlc, reassert
        """

    /// The next push batch: whole origin transactions in `id` order within the bounds (see
    /// ``OutboxBatcher``). Empty when the outbox is. Tests' reader; the agent reads ``nextPage``.
    public func nextBatch(
        connection: PostgresConnection, maxCount: Int, maxBytes: Int, holding: Set<String> = []
    ) throws -> [OutboxChange] {
        switch try nextPage(
            connection: connection, maxCount: maxCount, maxBytes: maxBytes, holding: holding, largeAt: Int(Int32.max))
        {
        case .batch(let rows): rows
        case .large: []
        }
    }

    /// The next push batch: whole origin transactions in `id` order within the bounds (see ``OutboxBatcher``),
    /// or, when the oldest transaction has more than `largeAt` rows, that transaction as an
    /// ``OutboxTransaction`` (its rows are then read a chunk at a time). One statement in the common case: every
    /// row of the transactions that have a row among the first `maxCount` (a committed transaction's rows are all
    /// visible at once, so a transaction cut by the limit or interleaved with others comes whole), at most
    /// `largeAt + 1` of them; past that, the oldest transaction is counted and read alone.
    ///
    /// Transactions that touch a table in `holding` (a stopped stream, ``ShapeGuard``) stay in the outbox,
    /// whole: the batch is read from the rows of the other tables, minus every transaction with a held row.
    public func nextPage(
        connection: PostgresConnection, maxCount: Int, maxBytes: Int, holding: Set<String> = [], largeAt: Int
    ) throws -> OutboxPage {
        let rows =
            holding.isEmpty
            ? try connection.query(
                """
                SELECT \(Self.outboxColumns) FROM starling.outbox
                WHERE tx IN (SELECT p.tx FROM (SELECT tx FROM starling.outbox ORDER BY id LIMIT $1) p) ORDER BY id
                LIMIT $2
                """, [.int(maxCount), .int(largeAt + 1)], name: "agent.outbox.page", prepared: true)
            : try connection.query(
                """
                SELECT \(Self.outboxColumns) FROM starling.outbox
                WHERE tx IN (SELECT p.tx FROM (SELECT tx FROM starling.outbox WHERE table_name <> ALL($2::text[])
                                               ORDER BY id LIMIT $1) p)
                  AND tx NOT IN (SELECT h.tx FROM starling.outbox h WHERE h.table_name = ANY($2::text[]))
                ORDER BY id LIMIT $3
                """, [.int(maxCount), .textArray(holding.sorted()), .int(largeAt + 1)], name: "agent.outbox.pageHolding",
                prepared: true)
        guard !rows.isEmpty else { return .batch([]) }
        let changes = try rows.map(Self.outboxChange)
        guard changes.count > largeAt, let oldest = changes.first?.tx else {
            return .batch(OutboxBatcher.select(changes, maxCount: maxCount, maxBytes: maxBytes))
        }
        // Cut by the limit: the transactions read whole, in order, up to the first one cut; when that is the
        // oldest, it alone, read whole or, when it is large, a chunk at a time.
        var order: [Int64] = []
        var read: [Int64: Int] = [:]
        for change in changes {
            if read[change.tx] == nil { order.append(change.tx) }
            read[change.tx, default: 0] += 1
        }
        let counted = try connection.query(
            "SELECT tx, count(*) AS n FROM starling.outbox WHERE tx = ANY($1::bigint[]) GROUP BY tx",
            [.int64Array(order)], name: "agent.outbox.txCounts", prepared: true)
        var counts: [Int64: Int] = [:]
        for row in counted { counts[try row.int64("tx")] = Int(try row.int64("n")) }
        let whole = Set(order.prefix { read[$0] == counts[$0] })
        if whole.contains(oldest) {
            return .batch(OutboxBatcher.select(changes.filter { whole.contains($0.tx) }, maxCount: maxCount, maxBytes: maxBytes))
        }
        if let count = counts[oldest], count > largeAt {
            return .large(try outboxTransaction(oldest, connection: connection))
        }
        return .batch(
            try connection.query(
                "SELECT \(Self.outboxColumns) FROM starling.outbox WHERE tx = $1 ORDER BY id", [.int64(oldest)],
                name: "agent.outbox.transaction"
            ).map(Self.outboxChange))
    }

    /// Stamps rows that have no HLC yet with `max(captured_at, last + 1)` (in `id` order) and persists both
    /// the stamps and the clock in one statement, so a re-push after a crash sends the very same change.
    /// Returns the wire changes. The clock is read without a lock: only this agent's one connection writes
    /// `starling.state`, and the saved clock only ever grows (`greatest`).
    public func prepare(_ batch: [OutboxChange], connection: PostgresConnection) throws -> [Change] {
        var stamped = batch
        guard stamped.contains(where: { $0.hlc == nil }) else {
            return try stamped.map { row throws in try row.change(region: region) }
        }
        let row = try connection.query("SELECT last_hlc FROM starling.state", name: "agent.hlc.read")[0]
        var clock = HybridLogicalClock(seed: try row.int64("last_hlc"))
        var ids: [Int64?] = []
        var stamps: [Int64?] = []
        for index in stamped.indices where stamped[index].hlc == nil {
            let stamp = clock.tick(nowMicros: stamped[index].capturedAt &+ clockOffsetMicros)
            stamped[index].hlc = stamp
            ids.append(stamped[index].id)
            stamps.append(stamp)
        }
        try relaxedTransaction(connection, name: "agent.hlc") { connection in
            try connection.query(
                """
                WITH stamped AS (
                    UPDATE starling.outbox o SET hlc = u.hlc
                    FROM unnest($1::bigint[], $2::bigint[]) AS u(id, hlc) WHERE o.id = u.id)
                UPDATE starling.state SET last_hlc = greatest(last_hlc, $3), updated_at = now()
                """, [.int64Array(ids), .int64Array(stamps), .int64(clock.last)], name: "agent.hlc.stamp",
                prepared: true)
        }
        return try stamped.map { row throws in try row.change(region: region) }
    }

    /// Acts on the hub's verdicts for `changes` (same order, same ids), in one transaction: each change
    /// leaves the outbox; `accepted` records the key's version; `merged` and `rejected` apply the returned
    /// image (and its version) unless a newer local change of the key is still pending.
    ///
    /// Set-wise, with the outcome of handling the verdicts one by one in order: one statement deletes the
    /// batch's outbox rows, one records the accepted versions (the newest per key), then the images go
    /// through ``applyImages(_:tables:connection:)``. An image whose key has a later change in this same
    /// batch is skipped as pending: one by one, that change would still have been in the outbox.
    ///
    /// With WAL capture (`wal`), the changes come from the capture queue, not the outbox: the transaction starts
    /// with its marker (the last handled position and the version each handled key holds now, see
    /// ``CaptureLedger``), an image for a key with a later local change still queued is skipped as pending, and
    /// an accepted change that an agent transaction overwrote locally gets its own image back. Once trigger
    /// capture is switched off (`wal.versionRows` false) no version row is written: the marker carries each
    /// handled key's version, returned in ``VerdictSummary/versions`` for the agent's memory, and images are
    /// written as they are (AgentStore+WALApply.swift).
    public func handleVerdicts(
        _ verdicts: [Verdict], for changes: [Change], wal: WALVerdicts? = nil, connection: PostgresConnection
    ) throws -> VerdictSummary {
        if let wal, !wal.versionRows, !wal.journal {
            do {
                if let summary = try handleVerdictsInOneTrip(verdicts, for: changes, wal: wal, connection: connection) {
                    return summary
                }
            } catch let error as PostgresError where Self.oneTripFallsBack(error, connection: connection) {
                // Refused (deferred entries to release) or failed: nothing of it remains; the full way below.
            }
        }
        return try relaxedTransaction(connection, name: "agent.verdicts") { connection in
            return try settleVerdicts(verdicts, for: changes, wal: wal, emitsMarker: true, connection: connection)
        }
    }

    /// Whether a one-trip transaction that failed with `error` is done again the full way: a statement's error on the
    /// server (nothing of the transaction remains, the connection is idle again), but not a deadlock, a serialization
    /// failure or a lock timeout (the caller retries the whole page, as after the full way's) nor an error on this side
    /// (a lost connection; results lost after the COMMIT, when the full way would find the page applied and stale).
    static func oneTripFallsBack(_ error: PostgresError, connection: PostgresConnection) -> Bool {
        guard let state = error.sqlState, !error.isConnectionLost, connection.isIdle else { return false }
        return !["40P01", "40001", "55P03"].contains(state)
    }

    /// The verdicts' work (``VerdictWork``) in the changes' order, and the outbox ids of the changes (trigger capture
    /// and version rows only). Throws when the verdicts do not answer `changes` one by one.
    private func verdictWork(_ verdicts: [Verdict], for changes: [Change], wal: WALVerdicts?) throws
        -> (work: VerdictWork, outboxIDs: [Int64?])
    {
        guard verdicts.count == changes.count, zip(verdicts, changes).allSatisfy({ $0.id == $1.id }) else {
            throw AgentError(
                code: .invalidResponse,
                message: "the hub answered \(verdicts.count) verdicts for \(changes.count) changes, or out of order")
        }
        var work = VerdictWork(region: region, isWAL: wal != nil, versionRows: wal.map { $0.versionRows } ?? true)
        var outboxIDs: [Int64?] = []
        var laterKeys = wal?.stillPending ?? []
        if work.versionRows { outboxIDs.reserveCapacity(changes.count) }
        for index in changes.indices.reversed() {
            let (verdict, change) = (verdicts[index], changes[index])
            if work.versionRows { outboxIDs.append(ChangeID(change.id)?.number ?? -1) }
            let tableKey = TableKey(table: change.table, key: change.key)
            work.add(
                verdict, for: change, key: tableKey, isSuperseded: !laterKeys.insert(tableKey).inserted,
                isOverwritten: wal?.overwritten.contains(index) ?? false)
        }
        work.images.reverse()
        work.letters.reverse()
        return (work, outboxIDs)
    }

    /// ``handleVerdicts(_:for:wal:connection:)`` in one round trip when no image is to be written (WAL capture with
    /// no version rows and no journal): the history and the marker, then the release of the decided keys' deferred
    /// entries, refused (`starling.refuse_unless`) when it releases any (they must be applied in the same
    /// transaction), then the `COMMIT`, in one pipeline. Nil when an image is to be written.
    private func handleVerdictsInOneTrip(
        _ verdicts: [Verdict], for changes: [Change], wal: WALVerdicts, connection: PostgresConnection
    ) throws -> VerdictSummary? {
        var (work, _) = try verdictWork(verdicts, for: changes, wal: wal)
        guard work.images.isEmpty else { return nil }
        var summary = work.summary
        summary.versions = work.markerVersions
        let marker = CaptureLedger.Marker(handledThrough: wal.handledThrough, versions: work.markerVersions)
        let statements = [
            PostgresStatement(
                """
                WITH u AS (UPDATE starling.state SET known_seq = greatest(known_seq, $1), log_terms = $2::jsonb
                           WHERE $1::bigint IS NOT NULL)
                SELECT pg_logical_emit_message(true, $3, $4)::text AS lsn
                """, historyParameters + [.text(CaptureLedger.Marker.prefix), .text(marker.text)],
                name: "agent.verdicts.oneTrip", prepared: true),
            PostgresStatement(
                Self.releaseSQL(refusingAny: true), [.text(work.decided.finish())], name: "agent.deferred.releaseNone",
                prepared: true),
        ]
        _ = try connection.transaction(settings: relaxedSettings, pipelining: statements)
        summary.inOneTrip = true
        return summary
    }

    /// ``handleVerdicts(_:for:wal:connection:)`` inside the caller's transaction. `emitsMarker` false: the caller
    /// writes one marker with every version for the whole transaction (the decoder keeps one marker per
    /// transaction, the last it reads).
    func settleVerdicts(
        _ verdicts: [Verdict], for changes: [Change], wal: WALVerdicts?, emitsMarker: Bool, connection: PostgresConnection
    ) throws -> VerdictSummary {
        var (work, outboxIDs) = try verdictWork(verdicts, for: changes, wal: wal)
        // No outbox row to delete and no version row to write: the marker carries the versions.
        let inMemory = !work.versionRows
        var summary = work.summary
        let (images, letters, markerVersions) = (work.images, work.letters, work.markerVersions)
        summary.versions = markerVersions
        try saveHistory(
            emitting: wal.flatMap { wal in
                emitsMarker ? CaptureLedger.Marker(handledThrough: wal.handledThrough, versions: markerVersions) : nil
            }, connection: connection)
        if let wal, wal.journal { try journal(changes, verdicts: verdicts, connection: connection) }
        if !inMemory {
            // Deleting the outbox rows and recording the accepted versions is one statement (atomic on its own).
            try connection.query(
                """
                WITH done AS (DELETE FROM starling.outbox WHERE id = ANY($1::bigint[]))
                INSERT INTO starling.versions (table_name, key, seq, origin, last_sync_time)
                SELECT DISTINCT ON (a.t, a.k) a.t, a.k, a.s, $3, now()
                FROM jsonb_to_recordset($2::jsonb) AS a(t text, k jsonb, s bigint)
                ORDER BY a.t, a.k, a.s DESC
                ON CONFLICT (table_name, key) DO UPDATE
                SET seq = EXCLUDED.seq, origin = EXCLUDED.origin, last_sync_time = EXCLUDED.last_sync_time
                WHERE starling.versions.seq < EXCLUDED.seq
                """, [.int64Array(outboxIDs), .text(work.accepted.finish()), .text(region)], name: "agent.verdict.settle",
                prepared: true)
        }
        var tables: Set<String>?
        let released = try releaseDeferredEntries(keys: work.decided.finish(), connection: connection)
        if !images.isEmpty, !released.isEmpty {
            // Two runs, each in key order but not together: their rows are locked in key order first.
            try Self.lockRows(images.map(\.tableKey) + released.map(\.tableKey), connection: connection)
        }
        if !images.isEmpty {
            let installed = try installedTables(connection: connection)
            tables = installed
            let statuses: ImageStatuses
            if inMemory {
                statuses = try applyImagesInMemory(images, tables: installed, connection: connection) { letters[$0] }
            } else {
                let displaced = try displaceVersions(work.rejectedWinners, connection: connection)
                statuses = try applyImages(images, tables: installed, connection: connection) { letters[$0] }
                try restoreVersions(displaced, connection: connection)
            }
            for status in statuses { summary.count(status) }
        }
        summary.deferredApplied += try applyReleased(
            released, tables: tables, versions: inMemory ? markerVersions : nil, connection: connection)
        return summary
    }

    /// Applies the deferred entries the handled keys released (``releaseDeferredEntries(keys:connection:)``), with
    /// `versions` (WAL capture: the marker's) to skip by; returns how many applied.
    func applyReleased(
        _ released: [LogEntry], tables: Set<String>?, versions: [TableKey: Int64]?, connection: PostgresConnection
    ) throws -> Int {
        guard !released.isEmpty else { return 0 }
        let installed = try tables ?? installedTables(connection: connection)
        var applied = ApplySummary()
        applied.stoppedTables = try lockAndCheckShapes(
            of: Set(released.map(\.table)), tables: installed, how: nil, connection: connection
        ).drift
        try applyPulled(
            released, tables: installed, drift: applied.stoppedTables, versions: versions,
            renames: try loadRenames(connection: connection), summary: &applied, connection: connection)
        return applied.applied
    }

    /// Records WAL-captured `changes` with their verdicts in `starling.journal` (once per change id; a verdict
    /// handled again after a restart counts in `handled`).
    func journal(_ changes: [Change], verdicts: [Verdict], connection: PostgresConnection) throws {
        var rows: [JSONValue] = []
        rows.reserveCapacity(changes.count)
        for (change, verdict) in zip(changes, verdicts) {
            let number = ChangeID(change.id)?.number ?? -1
            let tx = ChangeID(change.tx)?.number ?? -1
            rows.append(.object([
                "i": .integer(number), "x": .integer(tx), "t": .string(change.table), "o": .string(change.op.rawValue),
                "k": .object(change.key), "b": change.before.map(JSONValue.object) ?? .null,
                "a": change.after.map(JSONValue.object) ?? .null, "s": .integer(change.base), "h": .integer(change.hlc),
                "v": .string(verdict.json.canonicalText),
            ]))
        }
        try connection.query(
            """
            INSERT INTO starling.journal (id, tx, table_name, op, key, before, after, base, captured_at, hlc, verdict)
            SELECT j.i, j.x, j.t, j.o, j.k, j.b, j.a, j.s, j.h, j.h, j.v
            FROM jsonb_to_recordset($1::jsonb) AS j(i bigint, x bigint, t text, o text, k jsonb, b jsonb, a jsonb,
                                                    s bigint, h bigint, v text)
            ON CONFLICT (id) DO UPDATE SET handled = starling.journal.handled + 1, handled_at = now()
            """, [.text(JSONValue.array(rows).canonicalText)], name: "agent.journal", prepared: true)
    }

    /// Takes the deferred entries (``deferEntries(_:connection:)``) of `keys` (`[{"t":…,"k":…,"s":version}]`,
    /// the keys whose last pending verdict was handled, with the version it gave them) whose key has no outbox
    /// row left, oldest first. Also drops the held entries (``ShapeGuard``) of those keys that the version
    /// supersedes: under WAL capture the version is in memory only while above the cursor, and a held entry is
    /// applied when its table's shape is back, however far the cursor has moved by then.
    func releaseDeferredEntries(keys: String, connection: PostgresConnection) throws -> [LogEntry] {
        let rows = try connection.query(Self.releaseSQL(), [.text(keys)], name: "agent.deferred.release", prepared: true)
        return try rows.map { row throws in (try row.int64("seq"), try row.string("entry")) }
            .sorted { $0.0 < $1.0 }
            .map { try LogEntry(json: try JSONValue(parsing: $0.1)) }
    }

    /// ``releaseDeferredEntries(keys:connection:)``'s statement (`$1`: the decided keys' document): the held entries
    /// the verdicts supersede go, and the deferred entries of the decided keys are deleted and returned. With
    /// `refusingAny`, it returns no row but refuses (`starling.refuse_unless`) when it would release an entry.
    static func releaseSQL(refusingAny: Bool = false) -> String {
        let release = """
            DELETE FROM starling.deferred_entries d
            USING (SELECT DISTINCT b.t, b.k FROM jsonb_to_recordset($1::jsonb) AS b(t text, k jsonb)) b
            WHERE EXISTS (SELECT 1 FROM starling.deferred_entries LIMIT 1)
              AND d.table_name = b.t AND d.key = b.k
              AND NOT EXISTS (SELECT 1 FROM starling.outbox o WHERE o.table_name = d.table_name AND o.key = d.key)
            RETURNING d.seq, d.entry
            """
        return """
            WITH superseded AS (
                DELETE FROM starling.held_entries h USING jsonb_to_recordset($1::jsonb) AS v(t text, k jsonb, s bigint)
                WHERE EXISTS (SELECT 1 FROM starling.held_entries LIMIT 1)
                  AND h.table_name = v.t AND (h.entry::jsonb -> 'key') = v.k AND h.seq <= v.s)
            """ + (refusingAny
                ? ", released AS (\(release))\nSELECT starling.refuse_unless(count(*) = 0, 'deferred entries to apply') AS ok FROM released"
                : "\n" + release)
    }

    /// Takes the entries of `pendingKeys` (keys with a local change waiting for its verdict, WAL capture) out of
    /// `entries` and defers them (``deferEntries(_:connection:)``), counting them as skipped pending.
    func deferPending(
        _ entries: inout [LogEntry], pendingKeys: Set<TableKey>, summary: inout ApplySummary,
        connection: PostgresConnection
    ) throws {
        let deferred = Self.takePending(&entries, pendingKeys: pendingKeys)
        guard !deferred.isEmpty else { return }
        try deferEntries(deferred, connection: connection)
        summary.skippedPending += deferred.count
    }

    /// Takes the entries of `pendingKeys` out of `entries` and returns them (in order).
    static func takePending(_ entries: inout [LogEntry], pendingKeys: Set<TableKey>) -> [LogEntry] {
        guard !pendingKeys.isEmpty else { return [] }
        let isPending = entries.map { pendingKeys.contains($0.tableKey) }
        guard isPending.contains(true) else { return [] }
        let taken = zip(entries, isPending).compactMap { $1 ? $0 : nil }
        entries = zip(entries, isPending).compactMap { $1 ? nil : $0 }
        return taken
    }

    /// Keeps pulled entries skipped because a local change of their key waits for its verdict: the
    /// transaction that handles the key's last pending verdict applies them again.
    func deferEntries(_ entries: [LogEntry], connection: PostgresConnection) throws {
        guard !entries.isEmpty else { return }
        let statement = Self.deferring(entries)
        try connection.query(statement.sql, statement.params, name: statement.name, prepared: statement.prepared)
    }

    /// The statement of ``deferEntries(_:connection:)``.
    static func deferring(_ entries: [LogEntry]) -> PostgresStatement {
        PostgresStatement(
            """
            INSERT INTO starling.deferred_entries (seq, table_name, key, entry)
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::jsonb[], $4::text[]) ON CONFLICT (seq) DO NOTHING
            """,
            [
                .int64Array(entries.map(\.seq)), .textArray(entries.map(\.table)),
                .textArray(entries.map { Self.text($0.key) }), .textArray(entries.map(\.json.canonicalText)),
            ], name: "agent.deferred.insert", prepared: true)
    }

    /// The log history's position as two parameters, `known_seq` and `log_terms` (both NULL without a history).
    var historyParameters: [PostgresValue] {
        guard let (position, termsText) = history?.currentWithTermsText else { return [.null, .null] }
        return [.int64(position.known), .text(termsText)]
    }

    /// The `SET` list of an apply's move of `starling.state`: the cursor to `next`, the last HLC up to `hlc`, and the
    /// log history (``historyParameters``'s two placeholders; NULL keeps what is stored). Placeholders as SQL text.
    static func cursorMove(next: String, hlc: String, history: (known: String, terms: String)) -> String {
        """
        cursor = \(next), last_hlc = greatest(last_hlc, \(hlc)), updated_at = now(),
            known_seq = CASE WHEN \(history.known)::bigint IS NULL THEN known_seq ELSE greatest(known_seq, \(history.known)) END,
            log_terms = coalesce(\(history.terms)::jsonb, log_terms)
        """
    }

    /// Saves the log history (``LogHistory/save(connection:)``) and writes `marker` (if any) into the WAL, in one
    /// statement when there are both.
    func saveHistory(emitting marker: CaptureLedger.Marker?, connection: PostgresConnection) throws {
        guard let history, let marker else {
            if let marker { try Self.emit(marker, connection: connection) }
            try history?.save(connection: connection)
            return
        }
        let (position, termsText) = history.currentWithTermsText
        let rows = try connection.query(
            "UPDATE starling.state SET known_seq = greatest(known_seq, $1), log_terms = $2::jsonb "
                + "RETURNING pg_logical_emit_message(true, $3, $4)::text AS lsn",
            [
                .int64(position.known), .text(termsText), .text(CaptureLedger.Marker.prefix),
                .text(marker.text),
            ], name: "agent.verdicts.history", prepared: true)
        if rows.rowCount == 0 { try Self.emit(marker, connection: connection) }
    }

    /// Writes `marker` into the WAL at this point of the caller's transaction (WAL capture), and after it the
    /// ``WrittenKeys`` message `written` when there is one, in one statement.
    static func emit(_ marker: CaptureLedger.Marker, written: String? = nil, connection: PostgresConnection) throws {
        guard let written else {
            try connection.query(
                "SELECT pg_logical_emit_message(true, $1, $2)::text AS lsn",
                [.text(CaptureLedger.Marker.prefix), .text(marker.text)], name: "agent.wal.marker", prepared: true)
            return
        }
        try connection.query(
            "SELECT pg_logical_emit_message(true, $1, $2)::text AS lsn, pg_logical_emit_message(true, $3, $4)::text AS written",
            [.text(CaptureLedger.Marker.prefix), .text(marker.text), .text(WrittenKeys.prefix), .text(written)],
            name: "agent.wal.markerWritten", prepared: true)
    }

    // MARK: - Pull side

    /// Applies a pulled batch in one transaction (DESIGN.md "Agent rules"): skip own non-rewritten entries,
    /// skip when the local version is ≥ the entry's seq or a local change of the key is pending, else write
    /// the image and the version; an entry that fails goes to the dead letters and the batch goes on. Then
    /// the cursor moves from `after` to `next` and the clock observes the entries' HLCs. When the stored
    /// cursor is not `after` (the batch was applied already, or by someone else) nothing is written and
    /// `.stale` is returned: exactly-once. The images are applied set-wise per table
    /// (``applyImages(_:tables:connection:deadLetter:)``).
    ///
    /// Entries of a table whose shape changed (``ShapeGuard``, checked after a row-exclusive lock on the
    /// batch's tables) are not applied but kept in `starling.held_entries`; held entries of a table whose
    /// shape is back are applied first, in seq order. ``ApplySummary/stoppedTables`` says which are stopped.
    ///
    /// With WAL capture (`wal` non-nil), the transaction starts with a marker announcing the new cursor
    /// (``CaptureLedger``), entries on its pending keys (keys with a local change in the capture queue) are
    /// deferred as the outbox check defers them in trigger capture, and — once trigger capture is switched off —
    /// entries are skipped by the versions it holds in memory and written with no version row
    /// (AgentStore+WALApply.swift).
    ///
    /// With `spill`, the batch's first entries wait in `starling.spilled_entries` (an origin transaction too large to
    /// hold while its pages arrived): they are read back and applied a slice at a time, in this transaction, before
    /// `entries`, then deleted (AgentStore+Spill.swift).
    ///
    /// `clearsParts`: parts of this page were applied in parallel before (AgentStore+Parallel.swift); this
    /// transaction deletes their records with the cursor move.
    public func apply(
        _ entries: [LogEntry], after: Int64, next: Int64, wal: WALApply? = nil, spill: Spill? = nil,
        clearsParts: Bool = false, connection: PostgresConnection
    ) throws -> ApplySummary {
        let maxHLC = max(entries.reduce(Int64(0)) { max($0, $1.hlc) }, spill?.maxHLC ?? 0)
        // The marker, with the apply's promise (``CaptureLedger/Marker/deferredThrough``) for when it writes nothing
        // but the batch's keys: held and spilled entries are not deferred by `pendingKeys`, and a table's triggers or
        // cascading foreign keys may write other keys, so with any of them it promises nothing.
        let marker = wal.map { wal in
            CaptureLedger.Marker(cursor: next, observedHLC: maxHLC > 0 ? maxHLC : nil)
        }
        var promised = marker
        promised?.deferredThrough = spill == nil ? wal?.deferredThrough : nil
        let batchTables = Set(entries.map(\.table)).union(spill?.tables ?? []).sorted()
        // The BEGIN goes with the cursor's statement; under WAL capture the commit's WAL position comes back with
        // the COMMIT (``ApplySummary/position``): two round trips fewer.
        func body(_ connection: PostgresConnection) throws -> ApplySummary {
            // One statement moves the cursor (taking the state row's lock; no row means the batch is stale), saves
            // the log history, finds the tables to lock and whether entries are held, and writes the marker into the
            // WAL before any row of a synced table (what it writes earlier is Starling's own bookkeeping). What it
            // finds in the catalog is read only when the catalog's key is not the one it was last read at for these
            // tables (``CatalogCache``): a `CASE` branch's subquery runs only when taken.
            let cached = catalog.applyCatalog(for: batchTables)
            let state = try connection.query(
                """
                UPDATE starling.state SET \(Self.cursorMove(next: "$1", hlc: "$2", history: ("$5", "$6")))
                FROM (SELECT c.key, c.held,
                             CASE WHEN c.key = $10 THEN $11::boolean ELSE \(Self.sideWritesSQL(batchTables: "$4")) END
                                 AS side_writes
                      FROM (SELECT \(CatalogCache.keyExpression) AS key,
                                   EXISTS (SELECT 1 FROM starling.held_entries) AS held) c) k
                WHERE cursor = $3
                RETURNING k.key, k.held, k.side_writes,
                          CASE WHEN k.key = $10 THEN NULL ELSE
                              (SELECT coalesce(json_agg(t.table_name), '[]') FROM starling.synced_tables t)::text
                          END AS tables,
                          CASE WHEN k.key = $10 THEN NULL ELSE
                              (SELECT coalesce(json_object_agg(t.table_name, t.renamed), '{}') FROM starling.synced_tables t
                               WHERE t.renamed <> '{}')::text
                          END AS renamed,
                          CASE WHEN k.key = $10 AND NOT k.held THEN NULL
                               ELSE \(Self.lockableExpression(batchTables: "$4")) END AS lockable,
                          CASE WHEN $7::text IS NOT NULL THEN pg_logical_emit_message(true, $7,
                              CASE WHEN $9::text IS NOT NULL AND NOT k.held AND NOT k.side_writes
                                   THEN $9 ELSE $8 END)::text END AS marker
                """,
                [
                    .int64(next), .int64(maxHLC), .int64(after), .textArray(batchTables),
                ] + historyParameters + [
                    marker == nil ? .null : .text(CaptureLedger.Marker.prefix), marker.map { .text($0.text) } ?? .null,
                    promised?.deferredThrough == nil ? .null : promised.map { .text($0.text) } ?? .null,
                    cached.map { .text($0.key) } ?? .null, cached.map { .bool($0.catalog.sideWrites) } ?? .null,
                ], name: "agent.apply.cursor", prepared: true)
            guard let row = state.first else { return ApplySummary(isStale: true) }
            if clearsParts { try Self.clearParts(after: after, next: next, connection: connection) }
            let found = try applyCatalog(row, batchTables: batchTables, cached: cached)
            let (renames, tables) = (found.renames, found.tables)
            var summary = ApplySummary()
            var entries = entries
            if let pendingKeys = wal?.pendingKeys {
                try deferPending(&entries, pendingKeys: pendingKeys, summary: &summary, connection: connection)
            }
            let how = SchemaApply(captureTriggers: wal == nil || wal?.versions == nil, announce: wal != nil)
            // A stopped table's schema change is tried again by the held-entries round, not by every apply.
            let shapes = try lockAndCheckShapes(found.lockable, held: try row.bool("held"), how: nil, connection: connection)
            summary.stoppedTables = shapes.drift
            let versions = wal?.versions
            if shapes.hasHeldEntries {
                try applyHeldEntries(
                    drift: shapes.drift, tables: tables, inMemory: versions != nil, how: how, renames: renames,
                    summary: &summary, connection: connection)
            }
            if let spill {
                try applySpilled(
                    spill, after: after, inMemory: wal != nil && versions != nil, tables: tables, summary: &summary,
                    connection: connection)
            }
            try applyPulled(
                entries, tables: tables, drift: summary.stoppedTables, versions: versions, renames: renames,
                summary: &summary, connection: connection)
            if spill != nil { try Self.dropSpilled(through: next, connection: connection) }
            return summary
        }
        guard let wal, let marker, let promised else {
            return try connection.transaction(name: "agent.apply", settings: relaxedSettings, deferBegin: true, body)
        }
        var refused = false
        if let versions = wal.versions, spill == nil, !clearsParts {
            do {
                let page = OneTripPage(
                    entries: entries, after: after, next: next, maxHLC: maxHLC, batchTables: batchTables,
                    marker: marker, promised: promised, pendingKeys: wal.pendingKeys, versions: versions,
                    keys: wal.keys)
                if let summary = try applyInOneTrip(page, connection: connection) { return summary }
            } catch let error as PostgresError where Self.oneTripFallsBack(error, connection: connection) {
                // A check failed on the server (`starling.refuse_unless`), or a statement built from what the agent
                // knew failed (a table dropped since): nothing of it remains. The page is applied the full way below,
                // which decides as it always did.
                refused = true
            }
        }
        var (summary, then) = try connection.transaction(
            name: "agent.apply", settings: relaxedSettings, deferBegin: true, thenQuery: Self.insertPositionSQL, body)
        summary.position = try Self.insertPosition(then)
        summary.refusedOneTrip = refused
        return summary
    }

    /// Applies pulled entries inside the caller's transaction: own non-rewritten ones are skipped, those of a
    /// stopped table held, the rest applied; the ones skipped as pending are deferred. With `versions` (WAL
    /// capture: the versions above the cursor, in memory) superseded entries are skipped here and the rest
    /// written with no version row; without, the version rows decide.
    func applyPulled(
        _ entries: [LogEntry], tables: Set<String>, drift: ShapeGuard.Drift, versions: [TableKey: Int64]?,
        renames: [String: [String: String]] = [:], summary: inout ApplySummary, connection: PostgresConnection
    ) throws {
        let (applicable, held) = sortPulled(
            entries, drift: drift, versions: versions, renames: renames, summary: &summary)
        try hold(held, connection: connection)
        summary.held += held.count
        try applyEntries(applicable, tables: tables, inMemory: versions != nil, summary: &summary, connection: connection)
    }

    /// Sorts pulled entries: own non-rewritten ones and (with `versions`) superseded ones are counted as skipped,
    /// those of a stopped table are to be held, the rest are to be applied (renamed columns renamed).
    func sortPulled(
        _ entries: [LogEntry], drift: ShapeGuard.Drift, versions: [TableKey: Int64]?, renames: [String: [String: String]],
        summary: inout ApplySummary
    ) -> (applicable: [LogEntry], held: [LogEntry]) {
        var applicable: [LogEntry] = []
        var held: [LogEntry] = []
        applicable.reserveCapacity(entries.count)
        for entry in entries {
            switch pulledDecision(entry, key: nil, drift: drift, versions: versions, renames: renames) {
            case .own: summary.skippedOwn += 1
            case .superseded: summary.skippedVersion += 1
            case .held: held.append(entry)
            case .apply(let renamed): applicable.append(renamed ?? entry)
            }
        }
        return (applicable, held)
    }

    /// What becomes of one pulled entry (``sortPulled(_:drift:versions:renames:summary:)``).
    enum PulledDecision {
        /// The region's own change, not rewritten by the hub: it is here already.
        case own
        /// Older than the version the key holds (with `versions`).
        case superseded
        /// Its table's stream is stopped (a shape drift): kept until the shape is back.
        case held
        /// To be written; with the entry its renamed columns renamed, when the table has renames that apply.
        case apply(LogEntry?)
    }

    /// The decision for `entry` (`key`: its key when the caller made it).
    func pulledDecision(
        _ entry: LogEntry, key: TableKey?, drift: ShapeGuard.Drift, versions: [TableKey: Int64]?,
        renames: [String: [String: String]]
    ) -> PulledDecision {
        if entry.origin == region && !entry.rewritten { return .own }
        if let versions, Self.isSuperseded(entry, key: key, versions: versions) { return .superseded }
        if drift[entry.table] != nil { return .held }
        guard let renamed = renames[entry.table] else { return .apply(nil) }
        return .apply(Self.renaming(entry, renamed))
    }

    /// Applies the held entries of tables whose shape is back (when no new batch is pulled), in one
    /// transaction; returns what it did, with the tables still stopped.
    /// `inMemory`: WAL capture with trigger capture switched off (no version rows; superseded held entries were
    /// dropped when their verdicts were handled).
    public func applyHeldEntries(
        inMemory: Bool = false, how: SchemaApply? = nil, connection: PostgresConnection
    ) throws -> ApplySummary {
        try relaxedTransaction(connection, name: "agent.held") { connection in
            let tables = try installedTables(connection: connection)
            var summary = ApplySummary()
            let how = how ?? SchemaApply(captureTriggers: !inMemory, announce: inMemory)
            let shapes = try lockAndCheckShapes(of: [], tables: tables, how: how, connection: connection)
            summary.stoppedTables = shapes.drift
            if shapes.hasHeldEntries {
                try applyHeldEntries(
                    drift: shapes.drift, tables: tables, inMemory: inMemory, how: how,
                    renames: try loadRenames(connection: connection), summary: &summary, connection: connection)
            }
            return summary
        }
    }

    /// Applies entries (own non-rewritten ones already taken out) inside the caller's transaction; `inMemory`:
    /// superseded ones are taken out too, and no version row is read or written.
    private func applyEntries(
        _ entries: [LogEntry], tables: Set<String>, inMemory: Bool, summary: inout ApplySummary,
        connection: PostgresConnection
    ) throws {
        guard !entries.isEmpty else { return }
        let images = entries.map { Image(pulled: $0) }
        if inMemory {
            let statuses = try applyImagesInMemory(images, tables: tables, connection: connection) { entries[$0].json }
            for status in statuses { summary.count(status) }
            summary.batchFallbacks += statuses.batchFallbacks
            return
        }
        let displaced = try displaceRepairedVersions(entries, connection: connection)
        let statuses = try applyImages(images, tables: tables, connection: connection) { entries[$0].json }
        try restoreVersions(displaced, connection: connection)
        for status in statuses { summary.count(status) }
        summary.batchFallbacks += statuses.batchFallbacks
        let pending = zip(entries, statuses.statuses).compactMap { $1 == .skippedPending ? $0 : nil }
        try deferEntries(pending, connection: connection)
    }

    // MARK: - Stopped streams (ShapeGuard)

    /// How many held entries are read and applied at a time when a stream resumes (memory bound).
    static let heldChunk = 5000

    /// Takes a row-exclusive lock on `batchTables` and on every table with held entries (those synced and
    /// present), so no `ALTER TABLE` commits before this transaction does, then returns the drifted tables and
    /// whether any entry is held (so an apply without held entries does not look for them again).
    /// Waits at most ``TableSQL/applyLockTimeout`` behind a DDL statement; the apply is then retried.
    private func lockAndCheckShapes(
        of batchTables: Set<String>, tables: Set<String>, how: SchemaApply?, connection: PostgresConnection
    ) throws -> (drift: ShapeGuard.Drift, hasHeldEntries: Bool) {
        let found = try connection.query(
            "SELECT \(Self.lockableSQL(batchTables: "$1::text[]"))",
            [.textArray(batchTables.intersection(tables).sorted())], name: "agent.shape.lockable")[0]
        return try lockAndCheckShapes(Self.lockable(found), held: try found.bool("held"), how: how, connection: connection)
    }

    /// True when writing a synced table among `batchTables` (a `text[]` expression) may write other rows: it has
    /// a trigger of the application's (enabled, not Starling's own), a rule, or a foreign key that references it
    /// with an action (cascade, set null, set default).
    private static func sideWritesSQL(batchTables: String) -> String {
        """
        EXISTS (SELECT 1 FROM starling.synced_tables s JOIN pg_class c ON c.oid = s.relation_oid
                WHERE s.table_name = ANY(\(batchTables))
                  AND (c.relhasrules
                       OR EXISTS (SELECT 1 FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal
                                  AND t.tgenabled <> 'D' AND t.tgname NOT IN ('\(TableSQL.captureTrigger)',
                                  '\(TableSQL.truncateGuard)', '\(TableSQL.legacyLockTrigger)'))
                       OR EXISTS (SELECT 1 FROM pg_constraint f WHERE f.confrelid = c.oid AND f.contype = 'f'
                                  AND (f.confdeltype NOT IN ('a', 'r') OR f.confupdtype NOT IN ('a', 'r')))))
        """
    }

    /// The columns `lockable` (the synced tables present among `batchTables`, a `text[]` expression, and those with
    /// held entries, as a JSON array) and `held` (whether any entry is held).
    static func lockableSQL(batchTables: String) -> String {
        "\(lockableExpression(batchTables: batchTables)) AS lockable, EXISTS (SELECT 1 FROM starling.held_entries) AS held"
    }

    /// `lockable` of ``lockableSQL(batchTables:)`` alone.
    static func lockableExpression(batchTables: String) -> String {
        """
        (SELECT array_to_json(array(
             SELECT s.table_name FROM starling.synced_tables s JOIN pg_class c ON c.oid = s.relation_oid
             WHERE s.table_name = ANY(\(batchTables))
                OR s.table_name IN (SELECT DISTINCT h.table_name FROM starling.held_entries h)
             ORDER BY s.table_name)))::text
        """
    }

    static func lockable(_ row: PostgresRow) throws -> [String] {
        try names(try row.string("lockable"))
    }

    /// A JSON array of names.
    static func names(_ text: String) throws -> [String] {
        (try JSONValue(parsing: text).arrayValue ?? []).compactMap(\.stringValue)
    }

    /// What the apply's cursor statement found in the catalog: read by it (and kept for the next apply on the same
    /// tables, unless entries are held: its `lockable` then names their tables too), or the cached one when the
    /// statement found the catalog's key unchanged (``CatalogCache``).
    private func applyCatalog(
        _ row: PostgresRow, batchTables: [String], cached: (key: String, catalog: CatalogCache.ApplyCatalog)?
    ) throws -> CatalogCache.ApplyCatalog {
        let key = try row.optionalString("key")
        let lockable = try row.optionalString("lockable").map(Self.names)
        if let cached, key == cached.key {
            var found = cached.catalog
            if let lockable { found.lockable = lockable }
            return found
        }
        let found = CatalogCache.ApplyCatalog(
            tables: Set(try Self.names(try row.string("tables"))), renames: try Self.renames(try row.string("renamed")),
            lockable: lockable ?? [], sideWrites: try row.bool("side_writes"))
        catalog.keep(found, for: batchTables, at: key, held: try row.bool("held"))
        return found
    }

    /// Locks `lockable` and checks the shapes (see above); `held`: whether entries are held.
    func lockAndCheckShapes(
        _ lockable: [String], held: Bool, how: SchemaApply?, connection: PostgresConnection
    ) throws -> (drift: ShapeGuard.Drift, hasHeldEntries: Bool) {
        let lock = try lockable.isEmpty ? nil : Self.lockStatements(lockable)
        // A schema change a stopped table waits on is tried again (not while handling verdicts: `how` nil), between
        // the lock and the check; otherwise the lock and the check are one round trip.
        if let how, held {
            if let lock { try connection.executeScript(lock.joined(separator: "; "), name: "agent.shape.lock") }
            try retryStoppedSchemas(how: how, connection: connection)
            return (try ShapeGuard().check(connection: connection), held)
        }
        return (try ShapeGuard().check(after: lock ?? [], cache: catalog, connection: connection), held)
    }

    /// The statements that take a row-exclusive lock on `lockable` (not empty), waiting at most
    /// ``TableSQL/applyLockTimeout`` behind a DDL statement: a timeout aborts the transaction (the apply is retried).
    static func lockStatements(_ lockable: [String]) throws -> [String] {
        [
            "SET LOCAL lock_timeout = '\(TableSQL.applyLockTimeout)'", try lockStatement(lockable),
            "SET LOCAL lock_timeout = DEFAULT",
        ]
    }

    /// The `LOCK TABLE` of ``lockStatements(_:)`` alone, for a transaction whose settings already bound the wait.
    static func lockStatement(_ lockable: [String]) throws -> String {
        "LOCK TABLE \(try lockable.map { table throws in try QuotedNames.of(table).table }.joined(separator: ", ")) "
            + "IN ROW EXCLUSIVE MODE"
    }

    /// Keeps `entries` in `starling.held_entries` (a re-delivered entry is kept once).
    func hold(_ entries: [LogEntry], connection: PostgresConnection) throws {
        guard !entries.isEmpty else { return }
        try connection.query(
            """
            INSERT INTO starling.held_entries (seq, table_name, entry)
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[]) ON CONFLICT (seq) DO NOTHING
            """,
            [
                .int64Array(entries.map(\.seq)), .textArray(entries.map(\.table)),
                .textArray(entries.map(\.json.canonicalText)),
            ], name: "agent.held.insert")
    }

    /// Applies, in seq order and chunk by chunk, the held entries of every table not in `drift`, and deletes
    /// them; inside the caller's transaction.
    private func applyHeldEntries(
        drift: ShapeGuard.Drift, tables: Set<String>, inMemory: Bool, how: SchemaApply,
        renames: [String: [String: String]], summary: inout ApplySummary, connection: PostgresConnection
    ) throws {
        var stopped: [String: String] = [:]
        var after: Int64 = 0
        while true {
            let rows = try connection.query(
                """
                DELETE FROM starling.held_entries WHERE seq IN (
                    SELECT seq FROM starling.held_entries WHERE table_name <> ALL($1::text[]) AND seq > $2
                    ORDER BY seq LIMIT $3)
                RETURNING seq, entry
                """, [.textArray(drift.keys.sorted()), .int64(after), .int(Self.heldChunk)], name: "agent.held.take")
            guard !rows.isEmpty else { return }
            var entries = try rows.map { row throws in
                (try row.int64("seq"), try LogEntry(json: try JSONValue(parsing: try row.string("entry"))))
            }
            entries.sort { $0.0 < $1.0 }
            after = entries.last?.0 ?? after
            summary.resumed += entries.count
            // A schema change among them is applied alone, at its place; a table it stops holds its later ones.
            var run: [LogEntry] = []
            for (_, entry) in entries {
                if entry.kind == .schema {
                    try applyEntries(run, tables: tables, inMemory: inMemory, summary: &summary, connection: connection)
                    run.removeAll()
                    if stopped[entry.table] != nil {
                        try hold([entry], connection: connection)
                    } else if case .stopped(let reason) = try applySchemaEntry(entry, how: how, connection: connection) {
                        stopped[entry.table] = reason
                        summary.stoppedTables[entry.table] = reason
                    }
                } else if stopped[entry.table] != nil {
                    try hold([entry], connection: connection)
                } else {
                    run.append(renames[entry.table].map { Self.renaming(entry, $0) } ?? entry)
                }
            }
            try applyEntries(run, tables: tables, inMemory: inMemory, summary: &summary, connection: connection)
        }
    }

    /// Each table's renamed columns (old name → new name), for the tables that have any.
    func loadRenames(connection: PostgresConnection) throws -> [String: [String: String]] {
        let rows = try connection.query(
            "SELECT coalesce(json_object_agg(table_name, renamed), '{}')::text AS renamed FROM starling.synced_tables "
                + "WHERE renamed <> '{}'", name: "agent.renames")
        return try Self.renames(try rows[0].string("renamed"))
    }

    /// Parses `{"table":{"old":"new"}}`.
    static func renames(_ text: String) throws -> [String: [String: String]] {
        guard text != "{}" else { return [:] }
        var result: [String: [String: String]] = [:]
        for (table, value) in try JSONValue(parsing: text).objectValue ?? [:] {
            result[table] = (value.objectValue ?? [:]).compactMapValues(\.stringValue)
        }
        return result
    }

    /// `entry` with its image's members under renamed columns' old names moved to the new names (an image
    /// written before its region applied the rename).
    static func renaming(_ entry: LogEntry, _ renamed: [String: String]) -> LogEntry {
        guard let row = entry.row, row.keys.contains(where: { renamed[$0] != nil }) else { return entry }
        var image: JSONObject = [:]
        for (name, value) in row {
            let target = renamed[name] ?? name
            if renamed[name] == nil || row[target] == nil { image[target] = value }
        }
        var result = entry
        result.row = image
        return result
    }

    /// One image to write: a pulled entry, or the image a verdict returned.
    ///
    /// A class: the apply's steps pick images out of arrays by index again and again (grouping, the newest image of
    /// each key, the arrays of each column); copying a struct of six reference-counted fields for each access was a
    /// tenth of an agent's retains and releases in W1 R=8 (2026-12-07). Immutable, so sharing one is safe.
    final class Image: Sendable {
        let table: String
        let key: JSONObject
        let row: JSONObject?
        let seq: Int64
        let origin: String
        /// A pulled entry's image as the page carried it (``LogEntry/rowJSON``): written as is, `row` unused.
        let rowJSON: [UInt8]?
        /// `tableKey` when the caller made it with the image (`table` and `key` never change).
        private let knownKey: TableKey?

        /// A pulled entry's image: a repair is applied with the head seq it re-asserts (see AgentStore+Repair.swift);
        /// the image stays the text the page carried (parsed only if a statement falls back to it). `key`: the
        /// entry's key, when the caller made it.
        convenience init(pulled entry: LogEntry, key: TableKey? = nil) {
            let rowJSON = entry.rowJSON
            self.init(
                table: entry.table, key: entry.key, row: rowJSON == nil ? entry.row : nil,
                seq: entry.kind == .repair ? entry.base ?? 0 : entry.seq, origin: entry.origin, rowJSON: rowJSON,
                knownKey: key)
        }

        /// The row the image writes.
        var tableKey: TableKey { knownKey ?? TableKey(table: table, key: key) }

        init(
            table: String, key: JSONObject, row: JSONObject?, seq: Int64, origin: String, rowJSON: [UInt8]? = nil,
            knownKey: TableKey? = nil
        ) {
            self.table = table
            self.key = key
            self.row = row
            self.seq = seq
            self.origin = origin
            self.rowJSON = rowJSON
            self.knownKey = knownKey
        }

        /// The image's JSON text for a statement's parameter (nil for a delete).
        var rowText: String? {
            if let rowJSON { return String(decoding: rowJSON, as: UTF8.self) }
            return row.map(AgentStore.text)
        }
    }

    /// What ``applyImages(_:tables:connection:deadLetter:)`` did, per image in order.
    struct ImageStatuses: Sequence {
        var statuses: [ApplyStatus]
        /// Table groups whose set-wise apply raised and were applied entry by entry instead.
        var batchFallbacks = 0
        func makeIterator() -> IndexingIterator<[ApplyStatus]> { statuses.makeIterator() }
    }

    /// Applies `images` (in seq order) as if one by one with the per-entry apply function, inside the
    /// caller's transaction. Images of tables not synced here are skipped. The rest go per table, in
    /// order of first appearance, to the table's set-wise apply function (one statement each). When one
    /// raises, its table's work is rolled back inside the function and every image not yet applied set-wise
    /// goes through the per-entry function in seq order (an image applied already is skipped there by its
    /// version), where only the failing ones become dead letters holding `deadLetter(index)`.
    func applyImages(
        _ images: [Image], tables: Set<String>, connection: PostgresConnection, deadLetter: (Int) -> JSONValue
    ) throws -> ImageStatuses {
        var statuses = [ApplyStatus?](repeating: nil, count: images.count)
        let groups = Self.groupByTable(images, tables: tables)
        for index in groups.notInstalled { statuses[index] = .skippedVersion }
        var fallbacks = 0
        for (table, indices) in groups.tables {
            guard let letters = try applyBatch(indices.map { images[$0] }, table: table, connection: connection) else {
                fallbacks += 1
                break
            }
            for (index, status) in zip(indices, letters) { statuses[index] = status }
        }
        if fallbacks > 0 {
            // Entry by entry in seq order: the rows are locked in key order first, as the set-wise function does.
            for (table, indices) in groups.tables where indices.count > 1 {
                try connection.query(Self.lockingRows(of: table, images: images, indices: indices))
            }
            for index in images.indices where statuses[index] == nil {
                statuses[index] = try applyImage(images[index], deadLetter: deadLetter(index), connection: connection)
            }
        }
        return ImageStatuses(statuses: statuses.map { $0 ?? .failed }, batchFallbacks: fallbacks)
    }

    /// `images`' indexes per synced table, the tables in order of first appearance, and the indexes of images of
    /// tables not installed here: a table that has just joined the hub's set (its bootstrap, from a snapshot at
    /// or after these entries, is still to come) or has left it (Agent+Tables), with nothing to apply.
    static func groupByTable(_ images: [Image], tables: Set<String>) -> (tables: [(String, [Int])], notInstalled: [Int]) {
        var groups: [String: Int] = [:]
        var ordered: [(String, [Int])] = []
        var notInstalled: [Int] = []
        for index in images.indices {
            let table = images[index].table
            guard tables.contains(table) else {
                notInstalled.append(index)
                continue
            }
            if let position = groups[table] {
                ordered[position].1.append(index)
            } else {
                groups[table] = ordered.count
                ordered.append((table, [index]))
            }
        }
        return (ordered, notInstalled)
    }

    /// Runs the table's set-wise apply function; nil when it raised (nothing of it remains).
    private func applyBatch(_ images: [Image], table: String, connection: PostgresConnection) throws -> [ApplyStatus]? {
        var document = JSONBatchWriter()
        for (ordinal, image) in images.enumerated() {
            document.append(
                ordinal: ordinal, key: image.key, row: image.row, rowJSON: image.rowJSON, seq: image.seq,
                origin: image.origin)
        }
        let function = try QuotedNames.of(table).applyBatchFunction
        let result = try connection.query(
            "SELECT statuses FROM \(function)($1::jsonb)", [.text(document.finish())], name: "agent.apply.batch",
            prepared: true)[0]
        guard let text = try result.optionalString("statuses"), text.utf8.count == images.count else { return nil }
        return text.utf8.map { code in
            switch code {
            case UInt8(ascii: "a"): .applied
            case UInt8(ascii: "v"): .skippedVersion
            default: .skippedPending
            }
        }
    }

    /// Runs the table's per-entry apply function; a failure becomes a dead letter holding `deadLetter`.
    private func applyImage(_ image: Image, deadLetter: JSONValue, connection: PostgresConnection) throws
        -> ApplyStatus
    {
        let function = try QuotedNames.of(image.table).applyFunction
        let result = try connection.query(
            "SELECT status, error_state, error_message FROM \(function)($1::jsonb, $2::jsonb, $3, $4)",
            [
                .text(Self.text(image.key)), image.rowText.map { .text($0) } ?? .null, .int64(image.seq),
                .text(image.origin),
            ], name: "agent.apply.entry", prepared: true)[0]
        switch try result.string("status") {
        case "applied": return .applied
        case "version": return .skippedVersion
        case "pending": return .skippedPending
        default:
            try recordDeadLetter(
                deadLetter, seq: image.seq, table: image.table, sqlState: try result.optionalString("error_state"),
                error: try result.optionalString("error_message") ?? "apply failed", connection: connection)
            return .failed
        }
    }

    func recordDeadLetter(
        _ entry: JSONValue, seq: Int64, table: String, sqlState: String?, error: String,
        connection: PostgresConnection
    ) throws {
        try connection.query(
            """
            INSERT INTO starling.dead_letters (seq, table_name, entry, sqlstate, error)
            VALUES ($1, $2, $3::json, $4, $5)
            """,
            [.int64(seq), .text(table), .text(entry.canonicalText), .optionalText(sqlState), .text(error)],
            name: "agent.deadLetter.insert")
    }

    func installedTables(connection: PostgresConnection) throws -> Set<String> {
        let rows = try connection.query("SELECT table_name FROM starling.synced_tables", name: "agent.tables")
        return Set(try rows.map { row throws in try row.string("table_name") })
    }

    // MARK: - Dead letters

    /// Dead letters not yet reported to the hub, oldest first.
    public func unreportedDeadLetters(limit: Int, connection: PostgresConnection) throws -> [DeadLetter] {
        let rows = try connection.query(
            """
            SELECT id, seq, table_name, entry::text AS entry, sqlstate, error FROM starling.dead_letters
            WHERE reported_at IS NULL ORDER BY id LIMIT $1
            """, [.int(limit)], name: "agent.deadLetter.unreported")
        return try rows.map { row throws in
            DeadLetter(
                id: try row.int64("id"), seq: try row.int64("seq"), table: try row.string("table_name"),
                entry: try JSONValue(parsing: try row.string("entry")), sqlState: try row.optionalString("sqlstate"),
                error: try row.string("error"))
        }
    }

    /// Marks dead letters as reported.
    public func markReported(_ ids: [Int64], connection: PostgresConnection) throws {
        try connection.query(
            "UPDATE starling.dead_letters SET reported_at = now() WHERE id = ANY($1::bigint[])",
            [.int64Array(ids.map { $0 })], name: "agent.deadLetter.reported")
    }

    // MARK: - Helpers

    /// Canonical JSON text of an object.
    static func text(_ object: JSONObject) -> String {
        JSONValue.object(object).canonicalText
    }

    static func outboxChange(_ row: PostgresRow) throws -> OutboxChange {
        let key = try row.string("key")
        let before = try row.optionalString("before")
        let after = try row.optionalString("after")
        func object(_ text: String?, _ what: String) throws -> JSONObject? {
            guard let text else { return nil }
            guard let object = try JSONValue(parsing: text).objectValue else {
                throw AgentError(code: .database, message: "outbox \(what) is not a JSON object")
            }
            return object
        }
        guard let op = ChangeOperation(rawValue: try row.string("op")) else {
            throw AgentError(code: .database, message: "outbox op is not insert, update or delete")
        }
        var change = OutboxChange(
            id: try row.int64("id"), tx: try row.int64("tx"), table: try row.string("table_name"), op: op,
            key: try object(key, "key") ?? [:], before: try object(before, "before"), after: try object(after, "after"),
            base: try row.int64("base"), capturedAt: try row.int64("captured_at"), hlc: try row.optionalInt64("hlc"),
            approximateBytes: 96 + key.utf8.count + (before?.utf8.count ?? 0) + (after?.utf8.count ?? 0))
        change.reassert = try row.optionalInt64("reassert")
        return change
    }
}

/// What verdict handling needs to know of WAL-captured changes (``AgentStore/handleVerdicts(_:for:wal:connection:)``).
public struct WALVerdicts: Sendable {
    /// The position of the batch's last change (nil: outbox changes, whose verdicts only give versions).
    public var handledThrough: StreamPosition?
    /// Indexes of changes an agent transaction overwrote locally.
    public var overwritten: Set<Int>
    /// Keys with a later local change still in the capture queue.
    public var stillPending: Set<TableKey>
    /// Record the changes and their verdicts in `starling.journal` (`journal: true`).
    public var journal: Bool
    /// Whether version rows are still written: outbox changes while trigger capture is being switched off (the
    /// capture triggers take their bases from them).
    public var versionRows: Bool

    public init(
        handledThrough: StreamPosition?, overwritten: Set<Int>, stillPending: Set<TableKey>, journal: Bool = false,
        versionRows: Bool = false
    ) {
        self.handledThrough = handledThrough
        self.overwritten = overwritten
        self.stillPending = stillPending
        self.journal = journal
        self.versionRows = versionRows
    }
}

/// What applying one image did.
public enum ApplyStatus: Sendable, Hashable {
    case applied
    case skippedVersion
    case skippedPending
    case failed
}

/// Counts of one applied batch.
public struct ApplySummary: Sendable, Hashable {
    /// The stored cursor was not the batch's `after`: nothing was applied.
    public var isStale = false
    public var applied = 0
    public var skippedOwn = 0
    public var skippedVersion = 0
    public var skippedPending = 0
    public var deadLettered = 0
    /// Table groups whose set-wise apply raised and were applied entry by entry.
    public var batchFallbacks = 0
    /// Entries kept in `starling.held_entries` because their table's stream is stopped.
    public var held = 0
    /// Held entries applied because their table's shape is back.
    public var resumed = 0
    /// Parts of the page applied in parallel before the cursor's transaction (Agent+ParallelApply.swift).
    public var parts = 0
    /// The tables whose stream is stopped, with the reason (``ShapeGuard``).
    public var stoppedTables: ShapeGuard.Drift = [:]
    /// Under WAL capture, the keys of the spilled entries applied (the caller knows its in-memory entries' keys):
    /// the capture queue's overwrite check needs them (``CaptureQueue/wrote(_:at:)``).
    public var spilledKeys: [TableKey] = []
    /// Under WAL capture, the WAL insert position read right after the commit (at or after its commit record).
    public var position: LSN?
    /// The page went to the database in one round trip (AgentStore+OneTripApply.swift).
    public var inOneTrip = false
    /// A one-trip apply of the page was refused by one of its checks on the server, and the page applied the full way.
    public var refusedOneTrip = false
    /// Rows the one trip wrote with one array per column (``TableSQL/upsertArraysSQL()``), not a jsonb document.
    public var upsertedByArrays = 0

    public init(isStale: Bool = false) {
        self.isStale = isStale
    }

    mutating func count(_ status: ApplyStatus) {
        switch status {
        case .applied: applied += 1
        case .skippedVersion: skippedVersion += 1
        case .skippedPending: skippedPending += 1
        case .failed: deadLettered += 1
        }
    }
}

/// Counts of one batch of verdicts.
public struct VerdictSummary: Sendable, Hashable {
    public var accepted = 0
    public var merged = 0
    public var rejected = 0
    /// Returned images written locally.
    public var imagesApplied = 0
    /// Returned images skipped: a newer local change is pending, or the local version is already newer.
    public var imagesSkipped = 0
    public var deadLettered = 0
    /// Deferred entries (skipped as pending earlier) applied once the verdicts of their key were handled.
    public var deferredApplied = 0
    /// Accepted changes whose image was written again (an agent transaction had overwritten it; WAL capture).
    public var restored = 0
    /// The version each handled key holds now (WAL capture: what the marker carried).
    public var versions: [TableKey: Int64] = [:]
    /// The verdicts were handled in one round trip (nothing to write but the marker and the history).
    public var inOneTrip = false

    public init() {}

    /// Adds the counts and versions of a later slice of the same transaction (a later version of a key wins).
    mutating func add(_ slice: VerdictSummary) {
        accepted += slice.accepted
        merged += slice.merged
        rejected += slice.rejected
        imagesApplied += slice.imagesApplied
        imagesSkipped += slice.imagesSkipped
        deadLettered += slice.deadLettered
        deferredApplied += slice.deferredApplied
        restored += slice.restored
        versions.merge(slice.versions) { _, later in later }
    }

    mutating func count(_ status: ApplyStatus) {
        switch status {
        case .applied: imagesApplied += 1
        case .skippedVersion, .skippedPending: imagesSkipped += 1
        case .failed: deadLettered += 1
        }
    }
}
