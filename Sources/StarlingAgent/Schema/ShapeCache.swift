import StarlingPostgres
import Synchronization

/// The last shape check's result (``ShapeGuard``) and the key it was made at: the database's DDL count and the
/// versions of the synced tables' rows (Migrations/agent/0012). An apply locks its tables and reads the key in the
/// same round trip; it runs the catalog query (a quarter of a small apply's time in its database) only when the key
/// differs. What the check reads changes with DDL only (columns, keys, a dropped table: the event trigger counts
/// them in their own transaction) or with a row of `starling.synced_tables` (a stop, a new shape): either changes
/// the key. Without the counting event trigger (a role that may not create one, or one disabled) the key is
/// nil and every apply checks, as it always did. A result older than ``maxAge`` is checked again all the same.
///
/// Shared by the copies of one ``AgentStore`` (its apply connections); the lock guards one value.
public final class ShapeCache: Sendable {
    private struct Checked {
        var key: String
        var drift: ShapeGuard.Drift
        var at: ContinuousClock.Instant
    }

    private let checked = Mutex<Checked?>(nil)
    /// Catalog checks made (tests).
    private let checks = Atomic<Int>(0)
    var checkCount: Int { checks.load(ordering: .relaxed) }
    static let maxAge: Duration = .seconds(5)

    public init() {}

    /// One row with the key, or none without the counting event trigger.
    static let keySQL = """
        SELECT g.generation::text || '/' || coalesce((SELECT string_agg(s.xmin::text, ',' ORDER BY s.table_name)
                                                      FROM starling.synced_tables s), '') AS key
        FROM starling.ddl_generation g
        WHERE EXISTS (SELECT 1 FROM pg_event_trigger e
                      WHERE e.evtname = '\(AgentSchema.ddlCountTrigger)' AND e.evtenabled = 'A')
        """

    /// The drift checked at `key`, when it is recent.
    func drift(at key: String?) -> ShapeGuard.Drift? {
        guard let key else { return nil }
        return checked.withLock { checked in
            guard let checked, checked.key == key, ContinuousClock.now - checked.at < Self.maxAge else { return nil }
            return checked.drift
        }
    }

    /// Keeps `drift`, just checked at `key` (nothing without one).
    func keep(_ drift: ShapeGuard.Drift, at key: String?) {
        checks.add(1, ordering: .relaxed)
        guard let key else { return }
        checked.withLock { $0 = Checked(key: key, drift: drift, at: .now) }
    }
}
