import Logging
import StarlingCore
import StarlingPostgres

/// The agent's side of a restore of the hub's store (README "Restoring the hub's store"): pulls and pushes
/// carry what the region knows of the log (``LogHistory``); when the hub answers `log_diverged`, the pull task
/// rewinds the region to where its history and the hub's part and re-asserts what the hub lost
/// (AgentStore+Rewind.swift), then pulls again from there.
extension Agent {
    /// Loads the stored log history and hands it to the hub link (at start, after the schema is installed).
    func loadLogHistory() async throws(AgentError) {
        let (position, keys) = try await db { connection in
            (try LogHistory.load(connection: connection), try AgentStore.reassertedKeys(connection: connection))
        }
        history.reset(to: position)
        hub.attach(history)
        reassertPending.withLock { $0 = keys }
    }

    /// Replaces the log history (after a bootstrap moved the cursor: the terms crossed before say nothing of it).
    func resetLogHistory(_ position: LogHistory.Position) async throws(AgentError) {
        history.reset(to: position)
        try await db { connection in try LogHistory.replace(with: position, connection: connection) }
    }

    /// Keys among `keys` with a re-assertion waiting for its verdict. Read on the database thread only (in an
    /// apply's job), where verdict jobs remove keys and the rewind sets them.
    func reasserting(among keys: [TableKey]) -> Set<TableKey> {
        reassertPending.withLock { pending in pending.isEmpty ? [] : Set(keys.filter { pending.contains($0) }) }
    }

    /// Rewinds after `log_diverged`: finds the common point from the hub's terms (`/v1/config`), loads the hub's
    /// heads of every synced table, and rewinds in one local transaction; under WAL capture waits until the
    /// decoder has read the rewind's marker (so no change captured before it is pushed with its old base), then
    /// counts the rewind (``rewinds``: push batches read before it are read again) and takes the new position.
    func rewind(after error: AgentError) async throws(AgentError) {
        let config = try await hub.config()
        guard !config.logTerms.isEmpty else {
            // A hub that lists no terms cannot say where the histories part: rewinding to 0 would re-assert
            // everything. Wait for one that does.
            throw AgentError(
                code: .hubUnavailable, message: "the hub refused this region's log position but lists no log terms",
                isRetryable: true)
        }
        let before = history.current
        let point = before.terms.commonPoint(known: before.known, hub: config.logTerms)
        let position = LogHistory.Position(known: point, terms: before.terms.through(point))
        logger.error(
            """
            the hub's log no longer holds what this region saw of it (its store was restored to an earlier point): \
            rewinding to seq \(point) and re-asserting the rows the lost history changed here
            """,
            metadata: [AgentLogKey.error: "\(error.message)", "agent.known": "\(before.known)"])
        let bootstrapper = makeBootstrapper()
        let store = self.store
        let tables = try await db { connection in
            let installed = try store.installedTables(connection: connection)
            return config.tables.map(\.name).filter { installed.contains($0) }
        }
        for table in tables {
            _ = try await track("pull", "loading the hub's rows of \(table) to rewind") { () async throws(AgentError) in
                try await bootstrapper.load(table: table)
            }
        }
        let isWAL = capture.withLock { $0.mode } == .wal
        if isWAL {
            // Local writes committed by now are decoded first: pending, they are not re-asserted (their own change,
            // newer, is on its way). One committed in the next moments can still be: a conflict recorded for nothing.
            // An empty marker of the agent's own ends the wait even when nothing else is written meanwhile.
            let now = try await db { connection in
                try connection.transaction(name: "agent.rewind.probe") { connection in
                    try AgentStore.emit(CaptureLedger.Marker(), connection: connection)
                }
                return try AgentStore.walInsertPosition(connection: connection)
            }
            try await awaitDecoder(through: now, what: "the region's committed writes", within: .seconds(60))
        }
        let wal = isWAL ? captureQueue.rewindState() : nil
        let (summary, end) = try await track("pull", "rewinding to seq \(point)") { () async throws(AgentError) in
            try await db { [self] connection in
                let shapes = try tables.map { try TableShape.load(table: $0, connection: connection) }
                let summary = try store.rewind(
                    to: point, tables: shapes, position: position, wal: wal, connection: connection)
                // In the same job as the commit: no verdict job runs between them and misses a key.
                let keys = try AgentStore.reassertedKeys(connection: connection)
                reassertPending.withLock { $0 = keys }
                return (summary, isWAL ? try AgentStore.walInsertPosition(connection: connection) : nil)
            }
        }
        if let end { try await awaitDecoder(through: end, what: "the rewind's marker", within: .seconds(60)) }
        rewinds.add(1, ordering: .releasing)
        history.reset(to: position)
        shared.withLock { $0.progress.cursor = min($0.progress.cursor, point) }
        let reasserted = summary.reasserted.values.reduce(0, +)
        logger.warning(
            "rewound: re-asserting rows the hub's restored store lacks",
            metadata: [
                "seq": "\(point)", "agent.cursor_before": "\(summary.cursorBefore)", AgentLogKey.count: "\(reasserted)",
            ])
        shared.withLock { $0.progress.reasserted += reasserted }
        wake.signal()
    }
}
