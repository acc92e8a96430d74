public import StarlingCore
import StarlingPostgres

extension HubLink {
    /// `GET /v1/snapshot?table=&after=&limit=`. Default for test doubles without snapshots: an empty page
    /// at seq 0 without a head count (so nothing is adopted or loaded).
    public func snapshot(table: String, after: String?, limit: Int) async throws(AgentError) -> SnapshotPage {
        SnapshotPage(table: table, seq: 0, rows: [])
    }

    /// `POST /v1/snapshot/adopt`. Default: unsupported.
    public func adopt(table: String, rows: Int64) async throws(AgentError) {
        throw AgentError(code: .hubRejected, message: "this hub link cannot adopt tables")
    }
}

/// Loads a region from the hub's snapshot, per synced table, on the agent's
/// database thread; runs at start while the region was never bootstrapped, and again when a pull answers
/// `410 cursor_pruned`.
///
/// Per table: every snapshot page goes into `starling.snapshot_rows`; then
/// * the region's table is empty, or this is a re-bootstrap: the heads are applied with the ordinary apply
///   function (version check, pending-outbox check), so local writes not yet pushed survive and keys already
///   newer are kept;
/// * a fresh region holds rows and the hub holds none (and nobody adopted the table): the region claims the
///   table (`POST /v1/snapshot/adopt`) and its rows enter the outbox as inserts, becoming the initial state
///   with this region as origin;
/// * a fresh region holds rows and the hub does too: equal rows (jsonb comparison with the capture image)
///   are adopted as they are; differing rows refuse the start with `adoption_refused` naming the table and
///   the adopting region, unless `bootstrap.replace_local` is set: then the differing local rows are copied
///   to `starling.replaced_rows`, local rows the hub lacks are deleted, and the snapshot is applied.
/// Finally the cursor moves to the smallest snapshot `seq` of the tables (entries after it that a snapshot
/// already reflects are skipped by the version check) and `bootstrapped_at` is set. A crash before that
/// repeats the whole bootstrap, which is idempotent.
struct Bootstrapper: Sendable {
    var region: String
    var hub: any HubLink
    var database: PostgresWorker
    var store: AgentStore
    var replaceLocal: Bool
    var pageLimit = 1000

    /// Whether this region still needs its first bootstrap.
    func isNeeded() async throws(AgentError) -> Bool {
        try await db { connection in
            try connection.query("SELECT bootstrapped_at IS NULL AS fresh FROM starling.state", name: "agent.boot.state")[0]
                .bool("fresh")
        }
    }

    /// Bootstraps every table in `tables`; `isFresh` allows adoption of existing rows.
    ///
    /// With `marksVersions` (WAL capture), the last transaction also announces the new cursor and the versions
    /// above it in a marker (``CaptureLedger``), and returns those versions: a table whose snapshot is newer
    /// than the cursor holds heads above it, and under WAL capture applies skip entries by the versions above
    /// the cursor held in memory, not by version rows.
    func run(tables: [String], isFresh: Bool, marksVersions: Bool = false) async throws(AgentError)
        -> (cursor: Int64, applied: Int, versions: [TableKey: Int64])
    {
        var cursor = Int64.max
        var applied = 0
        for table in tables {
            let (seq, count) = try await bootstrap(table: table, isFresh: isFresh)
            cursor = min(cursor, seq)
            applied += count
        }
        let final = cursor == .max ? 0 : cursor
        let versions = try await db { connection in
            try connection.transaction(name: "agent.boot.finish") { connection -> [TableKey: Int64] in
                try connection.query(
                    "UPDATE starling.state SET cursor = $1, bootstrapped_at = now(), updated_at = now()",
                    [.int64(final)], name: "agent.boot.cursor")
                try connection.query("DELETE FROM starling.snapshot_rows", name: "agent.boot.clear")
                try connection.query("DELETE FROM starling.apply_parts", name: "agent.boot.parts")
                try TableLifecycle.markBootstrapped(nil, connection: connection)
                guard marksVersions else { return [:] }
                let versions = try AgentStore.versions(above: final, connection: connection)
                try AgentStore.emit(CaptureLedger.Marker(cursor: final, versions: versions), connection: connection)
                return versions
            }
        }
        return (final, applied, versions)
    }

    /// Bootstraps tables that joined the synced set after the region's own bootstrap, one by one, with the
    /// rules of a new region (adopt, take over equal data, refuse differing data unless `replace_local`); the
    /// cursor stays where it is: entries of the table between it and the snapshot are older than the heads
    /// loaded, and the apply's version check skips them. Each table is marked bootstrapped in its own
    /// transaction after it is done, so a crash repeats only the table in progress (idempotent). With
    /// `marksVersions` (WAL capture), as ``run(tables:isFresh:marksVersions:)``: the loaded heads are above the
    /// cursor, so their versions go into a marker (a local change's base) and are returned (the applies' skip).
    func runJoined(tables: [String], marksVersions: Bool = false) async throws(AgentError)
        -> (applied: Int, versions: [TableKey: Int64])
    {
        var applied = 0
        var versions: [TableKey: Int64] = [:]
        for table in tables {
            let (_, count) = try await bootstrap(table: table, isFresh: true)
            applied += count
            // The marker commits with the mark: a write the application makes once the table shows bootstrapped
            // is decoded after the versions it builds on.
            let marked = try await db { connection in
                try connection.transaction(name: "agent.boot.joined") { connection -> [TableKey: Int64] in
                    try connection.query(
                        "DELETE FROM starling.snapshot_rows WHERE table_name = $1", [.text(table)],
                        name: "agent.boot.clear")
                    var versions: [TableKey: Int64] = [:]
                    if marksVersions {
                        let cursor = try connection.query(
                            "SELECT cursor FROM starling.state", name: "agent.boot.cursorNow")[0].int64("cursor")
                        versions = try AgentStore.versions(above: cursor, connection: connection)
                            .filter { $0.key.table == table }
                        try AgentStore.emit(CaptureLedger.Marker(versions: versions), connection: connection)
                    }
                    try TableLifecycle.markBootstrapped([table], connection: connection)
                    return versions
                }
            }
            versions.merge(marked) { max($0, $1) }
        }
        return (applied, versions)
    }

    private func bootstrap(table: String, isFresh: Bool) async throws(AgentError) -> (seq: Int64, applied: Int) {
        let first = try await load(table: table)
        let shape = try await db { connection in try TableShape.load(table: table, connection: connection) }
        let sql: TableSQL
        do { sql = try TableSQL(shape: shape) } catch { throw AgentError.database(error, during: "bootstrap") }
        let localRows = isFresh && first.heads != nil ? try await db { connection in try Self.count(sql, connection: connection) } : 0
        // A hub that gives no head count (a test double) has nothing to adopt or compare against.
        if localRows > 0, let heads = first.heads {
            if heads == 0 && (first.adoptedBy == nil || first.adoptedBy == region) {
                do {
                    try await hub.adopt(table: table, rows: localRows)
                } catch where error.code == .adoptionRefused {
                    // Another region adopted the table first (regions started at once): wait for its rows to
                    // reach the hub, then compare and take them over, as a region started later would.
                    throw AgentError(
                        code: .hubUnavailable,
                        message: "\(table) was adopted by another region first; waiting for its rows, then comparing "
                            + "(\(error.message))", isRetryable: true)
                }
                try await db { connection in try Self.enqueueAll(sql, connection: connection) }
                return (first.seq, 0)
            }
            if let adopter = first.adoptedBy, adopter != region, heads < first.adoptedRows ?? 0 {
                throw AgentError(
                    code: .hubUnavailable, message: "waiting for region \(adopter)'s rows of \(table) to reach the hub",
                    isRetryable: true)
            }
            let differing = try await db { connection in try Self.differing(sql, connection: connection) }
            if differing > 0 {
                let source = first.adoptedBy.map { "region \($0)" } ?? "the hub"
                guard replaceLocal else {
                    throw AgentError(
                        code: .adoptionRefused,
                        message: "\(table): \(differing) rows here differ from \(source)'s data; set "
                            + "bootstrap.replace_local: true to replace them (kept in starling.replaced_rows), or "
                            + "make the data equal", key: "bootstrap.replace_local")
                }
                try await db { connection in
                    try Self.replace(sql, source: first.adoptedBy, connection: connection)
                }
            }
        }
        let applied = try await apply(table: table)
        return (first.seq, applied)
    }

    /// Loads every page into `starling.snapshot_rows`; returns the first page (its seq and adoption record).
    func load(table: String) async throws(AgentError) -> SnapshotPage {
        try await db { connection in
            try connection.query(
                "DELETE FROM starling.snapshot_rows WHERE table_name = $1", [.text(table)], name: "agent.boot.reset")
        }
        let first = try await hub.snapshot(table: table, after: nil, limit: pageLimit)
        var page = first
        while true {
            let rows = page.rows
            try await db { connection in
                try connection.query(
                    """
                    INSERT INTO starling.snapshot_rows (table_name, key, row, seq, origin)
                    SELECT $1, k::jsonb, r::jsonb, s, o FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[])
                        AS u(k, r, s, o)
                    ON CONFLICT (table_name, key) DO UPDATE SET row = EXCLUDED.row, seq = EXCLUDED.seq,
                        origin = EXCLUDED.origin
                    """,
                    [
                        .text(table), .textArray(rows.map { AgentStore.text($0.key) }),
                        .textArray(rows.map { $0.row.map(AgentStore.text) }), .int64Array(rows.map(\.seq)),
                        .textArray(rows.map(\.origin)),
                    ], name: "agent.boot.page")
            }
            guard let next = page.next else { return first }
            page = try await hub.snapshot(table: table, after: next, limit: pageLimit)
        }
    }

    /// Applies the loaded heads in chunks, one transaction each, through the table's apply function.
    ///
    /// Chunks go in jsonb order of `s.key`, the column the `>` cursor compares. The qualification matters:
    /// a bare `ORDER BY key` names the output column `key::text AS key`, whose text order (`{"k": 54}` before
    /// `{"k": 5}`) differs from jsonb order (5 before 54), so the next chunk's `key > last` skipped every key
    /// that sorts below `last` as jsonb but after it as text (BootstrapperTests).
    private func apply(table: String) async throws(AgentError) -> Int {
        var after: String?
        var applied = 0
        let store = self.store
        let limit = pageLimit
        while true {
            let from = after
            let (count, last, chunkApplied) = try await db { connection in
                try connection.transaction(name: "agent.boot.apply") { connection -> (Int, String?, Int) in
                    let rows = try connection.query(
                        """
                        SELECT s.key::text AS key, s.row::text AS row, s.seq, s.origin FROM starling.snapshot_rows s
                        WHERE s.table_name = $1 AND ($2::jsonb IS NULL OR s.key > $2::jsonb) ORDER BY s.key LIMIT $3
                        """, [.text(table), from.map(PostgresValue.text) ?? .null, .int(limit)],
                        name: "agent.boot.chunk")
                    var images: [AgentStore.Image] = []
                    for row in rows {
                        let key = try JSONValue(parsing: try row.string("key")).objectValue ?? [:]
                        let image = try row.optionalString("row").flatMap { try JSONValue(parsing: $0).objectValue }
                        images.append(
                            AgentStore.Image(
                                table: table, key: key, row: image, seq: try row.int64("seq"),
                                origin: try row.string("origin")))
                    }
                    let statuses = try store.applyImages(images, tables: [table], connection: connection) { index in
                        .object(["table": .string(table), "key": .object(images[index].key), "seq": .integer(images[index].seq)])
                    }
                    let last = try rows.last.map { try $0.string("key") }
                    return (images.count, last, statuses.statuses.filter { $0 == .applied }.count)
                }
            }
            applied += chunkApplied
            if count < limit { return applied }
            after = last
        }
    }

    // MARK: - SQL on the region's table

    /// Session settings of the capture function, so images compare equal to captured ones.
    static let imageSettings =
        "SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true), "
        + "set_config('extra_float_digits', '1', true), set_config('bytea_output', 'hex', true), "
        + "set_config('IntervalStyle', 'postgres', true), set_config('search_path', 'pg_catalog, pg_temp', true)"

    static func count(_ sql: TableSQL, connection: PostgresConnection) throws -> Int64 {
        try connection.query("SELECT count(*) FROM \(sql.table)", name: "agent.boot.count")[0].int64(0)
    }

    /// Local rows (as captured images) that differ from, or are missing in, the loaded live heads, and heads
    /// missing locally — except rows with a pending local change: capture was in place when the application
    /// wrote them (a change in `starling.outbox` for the key, or a row `xmin` newer than the table's
    /// `capture_xid`, see ``TableLifecycle``), so they are new writes on their way to the hub, not differing data.
    static func differing(_ sql: TableSQL, connection: PostgresConnection) throws -> Int64 {
        try connection.transaction(name: "agent.boot.compare") { connection in
            try connection.query(imageSettings, name: "agent.boot.settings")
            return try connection.query(
                """
                SELECT count(*) FROM (SELECT \(try sql.keyExpression(record: "t")) AS k,
                                             \(try sql.imageExpression(record: "t")) AS r, age(t.xmin) AS a
                                      FROM \(sql.table) t) l
                FULL JOIN (SELECT key AS k, row AS r FROM starling.snapshot_rows
                           WHERE table_name = \(sql.tableLiteral) AND row IS NOT NULL) h ON l.k = h.k
                WHERE l.r IS DISTINCT FROM h.r
                  AND NOT EXISTS (SELECT 1 FROM starling.outbox o
                                  WHERE o.table_name = \(sql.tableLiteral) AND o.key = coalesce(l.k, h.k))
                  AND NOT coalesce(l.a < (SELECT age((s.capture_xid % 4294967296)::text::xid)
                                          FROM starling.synced_tables s
                                          WHERE s.table_name = \(sql.tableLiteral)), false)
                """, name: "agent.boot.differing")[0].int64(0)
        }
    }

    /// Keeps the differing local rows in `starling.replaced_rows` and deletes the local rows the hub lacks
    /// (without capture: the agent's apply marker is set).
    static func replace(_ sql: TableSQL, source: String?, connection: PostgresConnection) throws {
        try connection.transaction(name: "agent.boot.replace") { connection in
            try connection.query(imageSettings, name: "agent.boot.settings")
            try connection.query("SELECT set_config('starling.applying', 'on', true)", name: "agent.boot.applying")
            try connection.query(
                """
                INSERT INTO starling.replaced_rows (table_name, key, row, source_region)
                SELECT \(sql.tableLiteral), l.k, l.r, $1 FROM (\(try localImages(sql))) l
                LEFT JOIN starling.snapshot_rows h ON h.table_name = \(sql.tableLiteral) AND h.key = l.k
                WHERE l.r IS DISTINCT FROM h.row
                """, [source.map(PostgresValue.text) ?? .null], name: "agent.boot.keepReplaced")
            try connection.query(
                """
                DELETE FROM \(sql.table) AS t WHERE NOT EXISTS (SELECT 1 FROM starling.snapshot_rows s
                    WHERE s.table_name = \(sql.tableLiteral) AND s.row IS NOT NULL AND s.key = \(try sql.keyExpression(record: "t")))
                """, name: "agent.boot.deleteMissing")
        }
    }

    /// Puts every local row into the outbox as an insert (base 0), 1000 rows per origin transaction (ids far
    /// above real transaction ids), so adoption pushes go through the ordinary push path.
    static func enqueueAll(_ sql: TableSQL, connection: PostgresConnection) throws {
        try connection.transaction(name: "agent.boot.adopt") { connection in
            try connection.query(imageSettings, name: "agent.boot.settings")
            try connection.query(
                """
                INSERT INTO starling.outbox (tx, table_name, op, key, before, after, base, captured_at)
                SELECT txid_current() * 1000000 + (row_number() OVER () - 1) / 1000, \(sql.tableLiteral), 'insert',
                       l.k, NULL, l.r, 0, (extract(epoch FROM clock_timestamp()) * 1000000)::bigint
                FROM (\(try localImages(sql))) l
                """, name: "agent.boot.enqueue")
        }
    }

    /// Every local row as `(k, r)`: its key and its image, as captured (with ``imageSettings`` in force).
    static func localImages(_ sql: TableSQL) throws -> String {
        "SELECT \(try sql.keyExpression(record: "t")) AS k, \(try sql.imageExpression(record: "t")) AS r FROM \(sql.table) t"
    }

    private func db<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws(AgentError)
        -> T
    {
        try await database.run(during: "bootstrap", body)
    }
}
