import Synchronization

/// What the hub knows about each region's progress: pull cursor, last push and pull, what its agent reported.
///
/// Updated by request handlers (cheap, in memory) and written to `starling_hub.regions` in batches by the hub's
/// status flusher (``takeDirty()``), so a pull never waits for a status write. Thread-safe (one mutex).
final class RegionActivity: Sendable {
    /// One region's activity. Times are wall-clock microseconds since the epoch; nil when never seen.
    struct Entry: Sendable, Hashable {
        var cursor: Int64 = 0
        var lastPullAt: Int64?
        var lastPushAt: Int64?
        var outboxDepth: Int64?
        var applyLag: Double?
        var lastError: String?
        var reportedAt: Int64?
        /// The agent's longest-running operation past its threshold (kept in memory only, not in
        /// `starling_hub.regions`): what it is and since when.
        var busy: Busy?
        /// How the agent captures, why, and the WAL its replication slot retains (kept in memory only).
        var capture: Capture?
    }

    /// An agent's capture as it reports it.
    struct Capture: Sendable, Hashable {
        var mode: String
        var reason: String
        var retainedWALBytes: Int64?
    }

    /// An agent operation running for a while (an apply, a push).
    struct Busy: Sendable, Hashable {
        var what: String
        var sinceMicros: Int64
    }

    private struct State {
        var entries: [String: Entry]
        var dirty: Set<String> = []
    }

    private let state: Mutex<State>

    init(regions: [String]) {
        state = Mutex(State(entries: Dictionary(uniqueKeysWithValues: regions.map { ($0, Entry()) })))
    }

    /// Replaces the entry of a known region (loading from the database at start).
    func load(_ name: String, _ entry: Entry) {
        state.withLock { state in
            if state.entries[name] != nil { state.entries[name] = entry }
        }
    }

    func pulled(_ region: String, cursor: Int64, at now: Int64) {
        update(region) {
            $0.cursor = max($0.cursor, cursor)
            $0.lastPullAt = now
        }
    }

    func pushed(_ region: String, at now: Int64) {
        update(region) { $0.lastPushAt = now }
    }

    func reported(
        _ region: String, outboxDepth: Int64?, applyLag: Double?, lastError: String?, busy: Busy? = nil,
        capture: Capture? = nil, at now: Int64
    ) {
        update(region) {
            $0.capture = capture
            $0.outboxDepth = outboxDepth
            $0.applyLag = applyLag
            $0.lastError = lastError
            $0.busy = busy
            $0.reportedAt = now
        }
    }

    /// A copy of every region's entry.
    func snapshot() -> [String: Entry] {
        state.withLock { $0.entries }
    }

    /// The entries changed since the last call, clearing the dirty set.
    func takeDirty() -> [(String, Entry)] {
        state.withLock { state in
            let names = state.dirty
            state.dirty.removeAll()
            return names.compactMap { name in state.entries[name].map { (name, $0) } }
        }
    }

    /// Marks entries dirty again after a failed write.
    func markDirty(_ names: [String]) {
        state.withLock { state in
            for name in names { state.dirty.insert(name) }
        }
    }

    private func update(_ region: String, _ body: (inout Entry) -> Void) {
        state.withLock { state in
            guard var entry = state.entries[region] else { return }
            body(&entry)
            state.entries[region] = entry
            state.dirty.insert(region)
        }
    }
}
