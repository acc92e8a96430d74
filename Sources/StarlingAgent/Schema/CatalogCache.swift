import StarlingPostgres
import Synchronization

/// What applies read from the catalog, kept by the key it was read at: the database's DDL count (with its epoch) and
/// the versions of the synced tables' rows (Migrations/agent/0012). Two things are kept:
/// * the last shape check (``ShapeGuard``): an apply locks its tables and reads the key in the same round trip, and
///   runs the catalog query (a quarter of a small apply's time in its database) only when the key differs;
/// * per set of batch tables, what the apply's cursor statement finds (``ApplyCatalog``): the statement reads the
///   key and computes those subqueries only when it is not the cached one (Postgres evaluates a `CASE` branch's
///   subquery only when the branch is taken).
///
/// What both read changes with DDL only (columns, keys, triggers, rules, foreign keys, a dropped table: the event
/// trigger counts them in their own transaction) or with a row of `starling.synced_tables` (a stop, a new shape, a
/// rename): either changes the key. Without the counting event trigger (a role that may not create one, or one
/// disabled) the key is NULL and every apply reads everything, as it always did; enabling it again changes its
/// catalog row, which is part of the key too (DDL run while it was disabled was not counted). A result older than
/// ``maxAge`` is read again all the same.
///
/// Shared by the copies of one ``AgentStore`` (its apply connections); a lock guards the values.
public final class CatalogCache: Sendable {
    /// What an apply's cursor statement reads besides the cursor, for one set of batch tables (no entry held).
    struct ApplyCatalog: Sendable, Equatable {
        /// The synced tables.
        var tables: Set<String>
        /// Renamed columns by table (old name → new).
        var renames: [String: [String: String]]
        /// The batch's synced tables that exist (to lock).
        var lockable: [String]
        /// Whether writing one of them may write other rows (``AgentStore``'s `sideWritesSQL`).
        var sideWrites: Bool
    }

    private struct Kept<Value: Sendable>: Sendable {
        var key: String
        var value: Value
        var at: ContinuousClock.Instant
    }

    private struct State: Sendable {
        var shapes: Kept<ShapeGuard.Drift>?
        var applies: [[String]: Kept<ApplyCatalog>] = [:]
        /// Per table, its upsert statements (``TableUpserts``) made from the shape read at the key.
        var upserts: [String: Kept<TableUpserts>] = [:]
    }

    private let state = Mutex(State())
    /// Catalog reads made (tests): shape checks and cursor statements that computed the apply's catalog part.
    private let shapeReads = Atomic<Int>(0)
    private let applyReads = Atomic<Int>(0)
    private let upsertReads = Atomic<Int>(0)
    var shapeChecks: Int { shapeReads.load(ordering: .relaxed) }
    var applyCatalogReads: Int { applyReads.load(ordering: .relaxed) }
    /// Shapes read for upsert statements (tests).
    var upsertShapeReads: Int { upsertReads.load(ordering: .relaxed) }
    static let maxAge: Duration = .seconds(5)
    /// Sets of batch tables kept at most (a workload writes a few).
    static let maxApplySets = 64

    public init() {}

    /// The key as one scalar: NULL without the counting event trigger.
    static let keyExpression = """
        (SELECT e.xmin::text || '/' || g.epoch::text || '/' || d.n::text || '.' || d.newest::text || '/'
                || coalesce((SELECT string_agg(s.xmin::text, ',' ORDER BY s.table_name) FROM starling.synced_tables s), '')
         FROM pg_event_trigger e, starling.ddl_epoch g,
              (SELECT count(*) AS n, coalesce(max(id), 0) AS newest FROM starling.ddl_events) d
         WHERE e.evtname = '\(AgentSchema.ddlCountTrigger)' AND e.evtenabled = 'A')
        """

    /// Rows of `starling.ddl_events` past which ``compact(connection:)`` deletes the older ones. Every apply counts
    /// them (the key): with 1,000 rows the key's query took 172 µs against 103 µs with 11 (pgbench on a copy of a
    /// region, 2026-12-06), a quarter of what a one-entry apply costs its database, so they are kept few. A compaction
    /// moves the epoch, so the next apply reads the catalog again: one more read per 64 DDL transactions, each of
    /// which changes the key anyway.
    static let compactAbove = 64

    /// Deletes all but the newest DDL event once there are more than ``compactAbove``, moving the epoch in the same
    /// transaction (the count goes down: the epoch keeps keys from repeating). Cheap otherwise (one count).
    static func compact(connection: PostgresConnection) throws {
        try connection.query(
            """
            WITH n AS (SELECT count(*) AS n FROM starling.ddl_events),
                 gone AS (DELETE FROM starling.ddl_events WHERE (SELECT n FROM n) > $1
                          AND id < (SELECT max(id) FROM starling.ddl_events) RETURNING 1)
            UPDATE starling.ddl_epoch SET epoch = epoch + 1 WHERE EXISTS (SELECT 1 FROM gone)
            """, [.int(compactAbove)], name: "agent.catalog.compact", prepared: true)
    }

    /// One row with the key (NULL without the counting event trigger).
    static let keySQL = "SELECT \(keyExpression) AS key"

    /// The drift checked at `key`, when it is recent.
    func drift(at key: String?) -> ShapeGuard.Drift? {
        guard let key else { return nil }
        return state.withLock { Self.recent($0.shapes, key: key) }
    }

    /// Keeps `drift`, just checked at `key`. Without a key (the counting trigger is gone or disabled: DDL is not
    /// counted meanwhile) everything kept goes, so a trigger enabled again cannot bring back an old key's values.
    func keep(_ drift: ShapeGuard.Drift, at key: String?) {
        shapeReads.add(1, ordering: .relaxed)
        guard let key else { return forgetAll() }
        state.withLock { $0.shapes = Kept(key: key, value: drift, at: .now) }
    }

    /// The key of the apply catalog kept for `batchTables` when it is recent (the cursor statement compares it with
    /// the current one), and that catalog.
    func applyCatalog(for batchTables: [String]) -> (key: String, catalog: ApplyCatalog)? {
        state.withLock { state in
            guard let kept = state.applies[batchTables], let catalog = Self.recent(kept, key: kept.key) else {
                return nil
            }
            return (kept.key, catalog)
        }
    }

    /// Keeps `catalog`, just read for `batchTables` at `key` (nil: as in ``keep(_:at:)``). Not while entries are
    /// `held`: its `lockable` then names their tables too.
    func keep(_ catalog: ApplyCatalog, for batchTables: [String], at key: String?, held: Bool) {
        applyReads.add(1, ordering: .relaxed)
        guard let key else { return forgetAll() }
        guard !held else { return }
        state.withLock { state in
            if state.applies[batchTables] == nil && state.applies.count >= Self.maxApplySets {
                state.applies.removeAll()
            }
            state.applies[batchTables] = Kept(key: key, value: catalog, at: .now)
        }
    }

    /// The upsert statements of `table` made from its shape read at `key`, when they are recent.
    func upsert(for table: String, at key: String) -> TableUpserts? {
        state.withLock { Self.recent($0.upserts[table], key: key) }
    }

    /// Keeps `sql`, the upsert statements of `table` made from its shape read after the key was `key`: used only
    /// while the key is still `key` (an apply checks it in its transaction), so no DDL came between.
    func keep(upsert sql: TableUpserts, for table: String, at key: String) {
        upsertReads.add(1, ordering: .relaxed)
        state.withLock { state in
            if state.upserts[table] == nil && state.upserts.count >= Self.maxApplySets { state.upserts.removeAll() }
            state.upserts[table] = Kept(key: key, value: sql, at: .now)
        }
    }

    private func forgetAll() {
        state.withLock { $0 = State() }
    }

    private static func recent<Value>(_ kept: Kept<Value>?, key: String) -> Value? {
        guard let kept, kept.key == key, ContinuousClock.now - kept.at < maxAge else { return nil }
        return kept.value
    }
}
