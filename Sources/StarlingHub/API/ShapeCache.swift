import Synchronization

/// The registered table shapes (``TableShape``) the API checks every push against and reports in `/v1/config`.
///
/// Owned by ``Hub``, which fills it at start and takeover and refreshes it in the background; the
/// registration route replaces it after a registration, so a new table's shape applies at once.
/// Thread-safe (a mutex around the dictionary; readers take a copy).
final class ShapeCache: Sendable {
    private let shapes = Mutex<[String: TableShape]>([:])

    /// The shapes now, by table name.
    var current: [String: TableShape] { shapes.withLock { $0 } }

    /// Replaces every shape (the database's table is the truth; a refresh reads all of it).
    func replace(with shapes: [String: TableShape]) {
        self.shapes.withLock { $0 = shapes }
    }
}
