import Foundation
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Point-in-time restore works as the hub's restore drill needs it: a backup, later work, a named restore point,
/// still later work, then a new cluster with exactly the work up to the point, accepting writes. Once after the
/// original crashed (stopped immediately), once beside the still running original.
@Suite(.timeLimit(.minutes(3)))
struct TestPostgresClusterTests {
    @Test func restoresACrashedClusterToANamedRestorePoint() async throws {
        try await drill(stopOriginalFirst: true)
    }

    @Test func restoresBesideTheRunningOriginal() async throws {
        try await drill(stopOriginalFirst: false)
    }

    /// A restore point the archive does not hold fails the restore with the server's reason (recovery ended
    /// before the target), promptly, not at the promotion wait's timeout; the half-made cluster is removed.
    @Test func anUnknownRestorePointFailsTheRestore() async throws {
        let original = try await TestPostgresCluster.startArchiving(name: "pitr-unknown")
        do {
            let backup = try await original.baseBackup()
            try await original.createRestorePoint("known")
            let started = ContinuousClock.now
            do {
                let restored = try await original.restore(backup, toRestorePoint: "unknown")
                await restored.destroy()
                Issue.record("restored to a restore point that was never created")
            } catch let error as TestPostgresCluster.ClusterError {
                #expect(error.description.contains("recovery target"), "\(error)")
            }
            #expect(ContinuousClock.now - started < .seconds(60))
        } catch {
            await original.destroy()
            throw error
        }
        await original.destroy()
    }

    /// Rows 1…10, base backup, 11…20, restore point "drill", 21…30; the restore has 1…20 and takes a write.
    private func drill(stopOriginalFirst: Bool) async throws {
        let original = try await TestPostgresCluster.startArchiving(name: "pitr")
        var restored: TestPostgresCluster?
        do {
            try await original.withConnection { connection in
                try connection.execute("CREATE TABLE items (id bigint PRIMARY KEY)")
                try connection.execute("INSERT INTO items SELECT generate_series(1, 10)")
            }
            let backup = try await original.baseBackup()
            try await original.withConnection { try $0.execute("INSERT INTO items SELECT generate_series(11, 20)") }
            try await original.createRestorePoint("drill")
            try await original.withConnection { try $0.execute("INSERT INTO items SELECT generate_series(21, 30)") }
            if stopOriginalFirst { try await original.stopServer() }

            let cluster = try await original.restore(backup, toRestorePoint: "drill")
            restored = cluster
            #expect(cluster.port != original.port)
            #expect(try await Self.ids(cluster) == Array(1...20), "\(cluster.log.suffix(2000))")
            try await cluster.withConnection { try $0.execute("INSERT INTO items VALUES (21)") }
            #expect(try await Self.ids(cluster) == Array(1...21))
            if !stopOriginalFirst { #expect(try await Self.ids(original) == Array(1...30)) }
        } catch {
            await restored?.destroy()
            await original.destroy()
            throw error
        }
        await restored?.destroy()
        await original.destroy()
    }

    private static func ids(_ cluster: TestPostgresCluster) async throws -> [Int64] {
        try await cluster.withConnection { connection in
            let result = try connection.query("SELECT id FROM items ORDER BY id")
            return try result.map { row throws(PostgresError) in try row.int64("id") }
        }
    }
}
