import StarlingCore
import Synchronization

/// The registered table shapes (``TableShape``) the API checks every push against and reports in `/v1/config`.
///
/// Owned by ``Hub``, which fills it at start and takeover and refreshes it in the background; the
/// registration route replaces it after a registration, so a new table's shape applies at once.
/// Thread-safe (a mutex around the dictionary; readers take a copy).
final class ShapeCache: Sendable {
    /// A shape with the lookups a push checks each change against, built once per refresh, not per change.
    struct Entry: Sendable, Hashable {
        var shape: TableShape
        /// The key column names in key order.
        var key: [String] { shape.key }
        /// The registered column names: every pushed image is checked against them.
        var columnNames: Set<String>
        /// Each registered column's `format_type`: every pushed value is checked against it (``ColumnTypeCheck``).
        var columnTypes: [String: String]
        /// The same as what each type asks of a value, worked out here once.
        var columnKinds: [String: ColumnTypeCheck.Kind]
        /// How images written under earlier versions read under this one (a region pushes what it captured
        /// before it applied a schema change).
        var rules: ImageRules
        /// The shape's version (1: as first registered; each schema change adds one).
        var version: Int64

        init(_ shape: TableShape, rules: ImageRules = ImageRules(), version: Int64 = 1) {
            self.shape = shape
            self.rules = rules
            self.version = version
            columnNames = Set(shape.columns.map(\.name))
            columnTypes = shape.columnTypes
            columnKinds = columnTypes.mapValues(ColumnTypeCheck.Kind.init(type:))
        }
    }

    private let shapes = Mutex<[String: Entry]>([:])

    /// The shapes now, by table name.
    var current: [String: Entry] { shapes.withLock { $0 } }

    /// Replaces every shape (the database's table is the truth; a refresh reads all of it). A read that raced a
    /// schema change's commit does not bring its table's older version back.
    func replace(with entries: [String: Entry]) {
        shapes.withLock { current in
            current = entries.merging(current.filter { entries[$0.key] != nil }) { loaded, cached in
                cached.version > loaded.version ? cached : loaded
            }
        }
    }

    /// A committed schema change's table: its new shape, rules and version.
    func set(_ entry: Entry) {
        shapes.withLock { $0[entry.shape.name] = entry }
    }
}
