import Foundation
import Glibc
public import StarlingPostgres

/// Point-in-time restore for restore drills: a cluster that archives every WAL segment, base backups of it,
/// named restore points, and a new cluster recovered from a backup plus the archive up to one of those points,
/// as an operator restoring the hub's store would (pg_basebackup, `restore_command`, `recovery_target_name`).
///
/// The archive (`<directory>/archive`) and the backups (`<directory>/backup-<n>`) live in the archiving
/// cluster's directory, so ``destroy()`` removes them with it: destroy the original after restoring from it.
/// A restored cluster is a cluster of its own (directory, port, archive); the test destroys it too.
extension TestPostgresCluster {
    /// A plain-format `pg_basebackup` of a running cluster (with the WAL it needs, streamed), ready to be
    /// copied into a new data directory by ``restore(_:toRestorePoint:)``.
    public struct BaseBackup: Sendable {
        /// The backup's data directory (owned by the server's user); read-only to restores, which copy it.
        public let directory: String
        /// The backup label (`pg_basebackup -l`), also in the backup's `backup_label`.
        public let label: String
    }

    /// Where this cluster archives its WAL segments (archive_command), and where restores from it read them
    /// (restore_command). Exists only for clusters from ``startArchiving(name:walLevel:)`` or
    /// ``restore(_:toRestorePoint:)``.
    public var archiveDirectory: String { directory + "/archive" }

    /// Starts a cluster like ``start(name:walLevel:)`` with continuous WAL archiving into ``archiveDirectory``
    /// (archive_mode = on). No archive_timeout: ``createRestorePoint(_:)`` switches the segment itself and waits
    /// for it, so a test never waits on a timer. `replica` is the lowest level that archiving (and
    /// pg_basebackup) accepts.
    public static func startArchiving(name: String, walLevel: String = "replica") async throws
        -> TestPostgresCluster
    {
        try await start(name: name, walLevel: walLevel) { directory, runAs in
            let archive = directory + "/archive"
            try makeOwnedDirectory(archive, runAs: runAs)
            return archiving(into: archive)
        }
    }

    /// A base backup of the running cluster (`pg_basebackup -X stream -c fast`, plain format) into a new
    /// directory inside the cluster's directory. Taken as the server's user, so a restore can copy it as is.
    public func baseBackup() async throws -> BaseBackup {
        let label = "starling-test-\(UInt32.random(in: 0...UInt32.max))"
        let target = directory + "/backup-" + label
        try await run(bin + "/pg_basebackup",
                      ["-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-D", target, "-X", "stream",
                       "-c", "fast", "-l", label, "--no-sync"],
                      what: "pg_basebackup")
        return BaseBackup(directory: target, label: label)
    }

    /// Creates the restore point `name` (`pg_create_restore_point`), switches to a new WAL segment and waits
    /// until the segment holding the restore point is in the archive: only then can a restore reach it, whatever
    /// happens to this cluster afterwards (an immediate stop included).
    public func createRestorePoint(_ name: String) async throws {
        try requireArchiving()
        let segment = try await withConnection { connection in
            let segment = try connection.query(
                "WITH point AS (SELECT pg_create_restore_point($1) AS lsn) SELECT pg_walfile_name(lsn) AS segment FROM point",
                [.text(name)], name: "test.createRestorePoint")[0].string("segment")
            _ = try connection.query("SELECT pg_switch_wal()", name: "test.switchWAL")
            return segment
        }
        do {
            try await waitUntil("WAL segment \(segment) (restore point \(name)) is archived") {
                FileManager.default.fileExists(atPath: archiveDirectory + "/" + segment)
            }
        } catch let error as WaitTimedOut {
            throw ClusterError(description: "\(error); server log: \(log.suffix(2000))")
        }
    }

    /// A new cluster (own directory, free port, same server user) recovered from `backup` and this cluster's
    /// archive up to the restore point `name` (recovery_target_name, then promote), started, and out of recovery
    /// (`pg_is_in_recovery()` false: it accepts writes) when this returns. It archives its own new timeline into
    /// its own ``archiveDirectory``. This cluster may be running (it keeps its port and socket) or stopped; the
    /// restore only reads its archive and the backup. On failure the new cluster is destroyed and the error
    /// carries its server log.
    public func restore(_ backup: BaseBackup, toRestorePoint name: String) async throws -> TestPostgresCluster {
        try requireArchiving()
        let (newDirectory, newRunAs) = try Self.makeClusterDirectory(name: "restored")
        let restored = TestPostgresCluster(directory: newDirectory, port: try Self.freePort(), bin: bin,
                                           runAs: newRunAs)
        do {
            try Self.makeOwnedDirectory(restored.archiveDirectory, runAs: newRunAs)
            let data = newDirectory + "/data"
            // As the server's user: the copy keeps the backup's modes (0700) and belongs to the server.
            try await restored.run(try ProcessRunner.locate("cp"), ["-a", backup.directory, data],
                                   what: "copy base backup")
            // Later lines win: the backup's postgresql.conf still names the original's port, socket and archive.
            let conf = """

                # point-in-time restore
                port = \(restored.port)
                unix_socket_directories = '\(newDirectory)'
                \(Self.archiving(into: restored.archiveDirectory))
                restore_command = 'cp "\(archiveDirectory)/%f" "%p"'
                recovery_target_name = '\(name.replacingOccurrences(of: "'", with: "''"))'
                recovery_target_action = 'promote'

                """
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: data + "/postgresql.conf"))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(conf.utf8))
            try handle.close()
            try await restored.run(try ProcessRunner.locate("touch"), [data + "/recovery.signal"],
                                   what: "create recovery.signal")
            try await restored.startServer()
            try await restored.waitUntilPromoted(restorePoint: name)
        } catch {
            let serverLog = restored.log
            await restored.destroy()
            throw ClusterError(description: "restore to \(name) failed: \(error)\nserver log:\n\(serverLog.suffix(3000))")
        }
        return restored
    }

    /// Runs `body` on a fresh connection to `database` on a dedicated thread (a short-lived `PostgresWorker`),
    /// keeping blocking libpq calls off the cooperative pool; the connection is closed after.
    public func withConnection<T: Sendable>(
        database: String = "postgres", _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        try await TestDatabase.withConnection(url: url(database: database), threadName: "test-pg-cluster", body)
    }

    // MARK: - Helpers

    /// The postgresql.conf lines that archive every completed segment into `archive`: copy under a temporary
    /// name, then rename, so a restore never reads a half-copied segment; `test ! -f` refuses to overwrite one
    /// (the archive_command contract: a segment archived twice must not be replaced).
    static func archiving(into archive: String) -> String {
        """
        archive_mode = on
        archive_command = 'test ! -f "\(archive)/%f" && cp "%p" "\(archive)/%f.tmp" && mv "\(archive)/%f.tmp" "\(archive)/%f"'
        """
    }

    /// Throws unless this cluster archives its WAL (restore points and restores need the archive).
    private func requireArchiving() throws {
        guard FileManager.default.fileExists(atPath: archiveDirectory) else {
            throw ClusterError(description: "\(directory) does not archive WAL: start it with startArchiving")
        }
    }

    /// Waits until the recovering server has reached its target and promoted (`pg_is_in_recovery()` false),
    /// failing at once if the server exits (recovery ended before the target: an unknown or unarchived point).
    private func waitUntilPromoted(restorePoint name: String) async throws {
        let worker = PostgresWorker(url: url(), applicationName: "starling-tests", threadName: "test-pg-restore")
        do {
            try await waitUntil("the cluster restored to \(name) is out of recovery", timeout: .seconds(120),
                                every: .milliseconds(100)) {
                guard FileManager.default.fileExists(atPath: directory + "/data/postmaster.pid") else {
                    throw ClusterError(description: "the server exited during recovery")
                }
                // A connection refused while the server starts is a "not yet", like a recovering answer.
                let inRecovery = try? await worker.withConnection { connection in
                    try connection.query("SELECT pg_is_in_recovery() AS recovering", name: "test.isInRecovery")[0]
                        .bool("recovering")
                }
                return inRecovery == false
            }
            await worker.shutdown()
        } catch {
            await worker.shutdown()
            throw error
        }
    }
}
