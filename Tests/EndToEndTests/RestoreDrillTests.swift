import Foundation
import StarlingPostgres
import StarlingTestSupport
import Testing

/// The restore drill of README "Restoring the hub's store", as real processes: the hub's store is backed up
/// (base backup + WAL archive), the regions go on writing, the store is lost and restored to a point in time
/// before their latest changes, and the hub starts on it. The regions notice that the log no longer holds what
/// they saw (`log_diverged`), rewind and re-assert; every region ends with every row any region wrote.
@Suite(.serialized, .timeLimit(.minutes(6)))
struct RestoreDrillTests {
    static let ddl = "CREATE TABLE public.items (id bigint PRIMARY KEY, v text NOT NULL, n int NOT NULL DEFAULT 0);"

    /// The rows every region must end with: id → v (what the drill wrote last to each key), nil when deleted.
    final class Model: @unchecked Sendable {  // Touched by the test task only.
        var rows: [Int64: String] = [:]
    }

    @Test func aStoreRestoredToAnEarlierPointLosesNothingTheRegionsHold() async throws {
        let store = try await TestPostgresCluster.startArchiving(name: "restore-drill")
        do {
            try await Deployment.with(
                regions: 3, tables: [("public.items", "lww")], ddl: Self.ddl, clusters: ["hub": store.url()]
            ) { deployment in
                let model = Model()
                let backup = try await store.baseBackup()
                // Before the restore point: kept by the restore.
                try await write(deployment, model, phase: 1, keys: 0..<20, updates: [], deletes: [])
                try await deployment.waitForConvergence()
                try await store.createRestorePoint("drill")
                let kept = try await deployment.logHead()
                // After it: lost from the hub's store, held by the regions (each region's own rows, rows of
                // the others updated and deleted, a row updated twice, by two regions).
                try await write(deployment, model, phase: 2, keys: 20..<40, updates: [0, 1, 2, 3], deletes: [4, 5])
                try await write(deployment, model, phase: 3, keys: 40..<45, updates: [0, 20, 21], deletes: [22])
                try await deployment.waitForConvergence()
                let lost = try await deployment.logHead()
                #expect(lost == kept + 35, "the drill's second half was sequenced (\(kept) → \(lost))")

                try await deployment.killHub()
                try await store.stopServer()
                let restored = try await store.restore(backup, toRestorePoint: "drill")
                do {
                    await deployment.moveHubStore(to: restored.url(database: deployment.hubDatabase.name))
                    #expect(try await deployment.logHead() == kept, "the restored store ends at the restore point")
                    try await deployment.startHub()
                    // Writes while the regions find out, on rows the lost history changed and on new ones.
                    try await write(deployment, model, phase: 4, keys: 45..<50, updates: [1, 23], deletes: [24])
                    try await deployment.waitForConvergence(timeout: .seconds(120))
                    for region in deployment.regions {
                        let rows = try await deployment.sql(region) { connection in
                            try connection.query("SELECT id, v FROM public.items ORDER BY id").map { row in
                                (try row.int64(0), try row.string(1))
                            }
                        }
                        let expected = model.rows.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
                        #expect(rows.map(\.0) == expected.map(\.0), "\(region) holds every row the drill kept")
                        #expect(rows.map(\.1) == expected.map(\.1), "\(region) holds every row's last value")
                    }
                    for region in deployment.regions {
                        #expect(
                            deployment.agents[region]?.output.contains("rewinding to seq \(kept)") == true,
                            "\(region)'s agent rewound to the restore point")
                    }
                    let reasserted = try await deployment.sql("hub") { connection in
                        try connection.query("SELECT count(*) FROM starling_hub.reasserted")[0].int64(0)
                    }
                    #expect(reasserted > 0, "the regions re-asserted the rows the restore lost")
                    let head = try await deployment.logHead()
                    // Three regions re-assert the same images: one entry per key (then the 8 entries of phase 4).
                    #expect(head == kept + reasserted + 8, "one entry per re-asserted key")
                    print(
                        "restore drill: restored at seq \(kept) of \(lost); \(reasserted) keys re-asserted; head now \(head); "
                            + "capture \(deployment.agentCapture)")
                    let (_, json) = try await deployment.admin("GET", "/v1/conflicts?status=all")
                    let conflicts = (json as? [String: Any])?["conflicts"] as? [[String: Any]] ?? []
                    #expect(conflicts.isEmpty, "identical images re-asserted by several regions are not conflicts")
                } catch {
                    await restored.destroy()
                    throw error
                }
                await restored.destroy()
            }
        } catch {
            await store.destroy()
            throw error
        }
        await store.destroy()
    }

    /// Region `r<i>` of the deployment writes in its own transaction per key: inserts `keys` (region by key),
    /// updates `updates` and deletes `deletes` (each by the region after the key's writer, so rows travel).
    private func write(
        _ deployment: Deployment, _ model: Model, phase: Int, keys: Range<Int64>, updates: [Int64], deletes: [Int64]
    ) async throws {
        let regions = deployment.regions
        for key in keys {
            let region = regions[Int(key) % regions.count]
            let value = "p\(phase)-\(region)-\(key)"
            try await deployment.sql(region) { connection in
                try connection.execute("INSERT INTO public.items (id, v) VALUES ($1, $2)", [.int64(key), .text(value)])
            }
            model.rows[key] = value
        }
        // Updates and deletes of rows written elsewhere must find them here first.
        try await deployment.waitForConvergence()
        for key in updates {
            let region = regions[(Int(key) + 1) % regions.count]
            let value = "p\(phase)-\(region)-\(key)-updated"
            try await deployment.sql(region) { connection in
                try connection.execute("UPDATE public.items SET v = $2, n = n + 1 WHERE id = $1", [.int64(key), .text(value)])
            }
            model.rows[key] = value
        }
        for key in deletes {
            let region = regions[(Int(key) + 1) % regions.count]
            try await deployment.sql(region) { connection in
                try connection.execute("DELETE FROM public.items WHERE id = $1", [.int64(key)])
            }
            model.rows[key] = nil
        }
    }
}
