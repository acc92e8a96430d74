import StarlingCore
import StarlingPostgres

/// Tables joining and leaving the synced set while the agent runs (README "Table lifecycle").
///
/// The hub's table list can change under a running agent (`POST /v1/admin/reload`, SIGHUP). The agent reads
/// `GET /v1/config` every `status_interval_ms`; when the set of table names differs from the one its tasks
/// run with, and every table of the new set exists here with a primary key, it winds its tasks down and runs
/// its start sequence again in the same process (``restartDue``, the path a failed WAL decoder takes): install
/// capture for exactly the new set (a new table's trigger, or its place in the publication with `REPLICA
/// IDENTITY FULL`; a table that left loses its capture and its local sync state, ``TableLifecycle``),
/// register the shapes, and bootstrap each table that joined with a new region's adoption rules
/// (``runJoined(_:drift:)``). Nothing is lost across the round: unpushed changes wait in the outbox (or are
/// decoded again from the slot's confirmed position), and the pull resumes from the stored cursor.
extension Agent {
    /// Watches the hub's table list until stopped or until a restart is due.
    func watchTablesUntilStopped() async {
        var reported: String?
        while !isStopped {
            await sleep(ms: configuration.tuning.statusIntervalMs)
            if isStopped { return }
            let running = Set(capture.withLock { $0.shapes.map(\.name) })
            do throws(AgentError) {
                let wanted = try await hub.config().tables.map(\.name)
                guard Set(wanted) != running else {
                    if reported != nil { clearError("tables") }
                    reported = nil
                    continue
                }
                // A joining table must exist here with a key before the round starts: otherwise the start would
                // stop the agent, and the other tables keep syncing meanwhile (the error says what is missing).
                let joined = wanted.filter { !running.contains($0) }
                try await db { connection in
                    for table in joined { _ = try TableShape.load(table: table, connection: connection) }
                }
                logger.info(
                    "synced tables changed; installing capture for the new set",
                    metadata: [
                        "agent.joined": "\(joined)",
                        "agent.left": "\(running.subtracting(wanted).sorted())",
                    ])
                restartTasks()
                return
            } catch {
                if reported != error.description {
                    reported = error.description
                    note(error, during: "tables")
                }
            }
        }
    }

    /// Bootstraps the installed tables that are not bootstrapped yet (they joined after the region's own
    /// bootstrap), except drifted ones; the cursor stays (``Bootstrapper/runJoined(tables:)``).
    func runJoined(_ bootstrapper: Bootstrapper, drift: ShapeGuard.Drift) async throws(AgentError) {
        let joined = try await db { try TableLifecycle.unbootstrapped(connection: $0) }.filter { drift[$0] == nil }
        guard !joined.isEmpty else { return }
        let shapes = try await db { connection in try joined.map { try TableShape.load(table: $0, connection: connection) } }
        try Self.requireShapesInForce(shapes, hub: try await hub.config())
        logger.info("bootstrapping tables that joined", metadata: [AgentLogKey.table: "\(joined)"])
        let isWAL = capture.withLock { $0.mode } == .wal
        let (applied, versions) = try await bootstrapper.runJoined(tables: joined, marksVersions: isWAL)
        captureQueue.recordVersions(versions)
        outboxFoundEmpty.withLock { $0 = nil }  // their local rows went into the outbox (adopted as inserts)
        logger.info("tables joined", metadata: [AgentLogKey.table: "\(joined)", AgentLogKey.count: "\(applied)"])
    }
}
