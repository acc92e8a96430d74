import Synchronization

/// The synced tables and their policies, as the running hub uses them: the one part of ``HubSettings`` that a
/// reload (SIGHUP, `POST /v1/admin/reload`, ``Hub/reload()``) replaces while the hub runs.
///
/// Shared by reference: every copy of a ``HubSettings`` (the API's, the sequencer writer's, the reconciler's)
/// reads the same set, so a reload reaches them all at once. Readers take a copy under the mutex and use it for
/// the whole of one decision (one push, one batch), so a request never sees half of a reload.
/// Thread-safe (a `Mutex` around the list and its index).
public final class HubTableSet: Sendable {
    /// The tables in configuration order and by name.
    public struct Tables: Sendable, Hashable {
        public var list: [HubSettings.Table]
        public var byName: [String: HubSettings.Table]

        public init(_ list: [HubSettings.Table]) {
            self.list = list
            byName = Dictionary(list.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        }
    }

    private let tables: Mutex<Tables>

    public init(_ list: [HubSettings.Table]) {
        tables = Mutex(Tables(list))
    }

    /// The tables now.
    public var current: Tables { tables.withLock { $0 } }

    /// Replaces the whole set (a validated reload).
    func replace(with list: [HubSettings.Table]) {
        let next = Tables(list)
        tables.withLock { $0 = next }
    }
}
