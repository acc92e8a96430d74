import Foundation
import Glibc
import StarlingPostgres
import StarlingTestSupport
import Synchronization
import Testing

/// Tables joining and leaving the synced set while hub and agents run as real processes: the
/// hub reloads its table list (`POST /v1/admin/reload`, SIGHUP), agents notice through `/v1/config` without a
/// restart, and adoption survives regions started at once and writes made while an agent bootstraps.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct TableLifecycleTests {
    static let items = (name: "public.items", policy: "lww")
    static let extra = (name: "public.extra", policy: "lww")
    static let ddl = """
        CREATE TABLE items (id integer PRIMARY KEY, label text, n int NOT NULL DEFAULT 0);
        CREATE TABLE extra (id integer PRIMARY KEY, v text);
        INSERT INTO extra SELECT g, 'seed ' || g FROM generate_series(1, 200) g;
        """

    /// Writes to `items` in every region until stopped: inserts of new keys and updates of earlier ones.
    final class Writer: Sendable {
        let stopped = Atomic<Bool>(false)
        let deployment: Deployment
        init(_ deployment: Deployment) { self.deployment = deployment }

        func run(from start: Int) async throws {
            var round = start
            while !stopped.load(ordering: .relaxed) {
                for (index, region) in deployment.regions.enumerated() {
                    let id = (index + 1) * 1_000_000 + round
                    let earlier = (index + 1) * 1_000_000 + round / 2
                    try await deployment.sql(region) { connection in
                        try connection.execute(
                            "INSERT INTO items (id, label) VALUES (\(id), '\(region)') "
                                + "ON CONFLICT (id) DO UPDATE SET n = items.n + 1")
                        try connection.execute(
                            "UPDATE items SET n = n + 1, label = '\(region)' WHERE id = \(earlier)")
                    }
                }
                round += 1
                // Pacing of the workload (a write rate), not a wait for a condition.
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    static func count(_ deployment: Deployment, _ target: String, _ sql: String) async throws -> Int64 {
        try await deployment.sql(target) { try $0.query(sql)[0].int64(0) }
    }

    /// Runs `body` while a ``Writer`` writes to `items`; stops it afterwards (also when `body` throws).
    static func whileWriting(_ deployment: Deployment, from start: Int, _ body: () async throws -> Void) async throws {
        let writer = Writer(deployment)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await writer.run(from: start) }
            do {
                try await body()
            } catch {
                writer.stopped.store(true, ordering: .relaxed)
                throw error
            }
            writer.stopped.store(true, ordering: .relaxed)
            try await group.waitForAll()
        }
    }

    /// Capture objects left on `extra` in `region`: triggers, publication membership.
    static func captureOnExtra(_ deployment: Deployment, _ region: String) async throws -> Int64 {
        try await count(
            deployment, region,
            "SELECT (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.extra'::regclass AND NOT tgisinternal "
                + "AND tgname NOT LIKE 'e2e_%') + (SELECT count(*) FROM pg_publication_tables WHERE tablename = 'extra')")
    }

    @Test func aTableJoinsAndLeavesWhileWritesGoOn() async throws {
        // Proves: with writes to items going on, a table added to hub.yaml and reloaded (POST /v1/admin/reload) is
        // installed and bootstrapped by every running agent (identical data adopted once, taken over by the
        // others), its writes replicate everywhere and the oracles pass; removed again (SIGHUP), every agent drops
        // its capture, a later write to it stays local, and items keeps converging — no agent process restarted.
        try await Deployment.with(regions: 3, tables: [Self.items], ddl: Self.ddl) { deployment in
            let pids = deployment.regions.compactMap { deployment.agents[$0]?.pid }
            try await Self.whileWriting(deployment, from: 0) {
                try await waitUntil("items replicates") {
                    try await Self.count(deployment, "r3", "SELECT count(*) FROM items WHERE id >= 1000000 AND id < 2000000") > 5
                }
                _ = try deployment.writeHubConfiguration(tables: [Self.items, Self.extra])
                let (status, json) = try await deployment.admin("POST", "/v1/admin/reload")
                #expect(status == 200, "\(String(describing: json))")
                #expect((json as? [String: Any])?["added"] as? [String] == ["public.extra"])
                deployment.tables = [Self.items, Self.extra]
                for region in deployment.regions {
                    try await waitUntil("\(region) installed and bootstrapped extra", timeout: .seconds(90)) {
                        try await Self.count(
                            deployment, region,
                            "SELECT count(*) FROM starling.synced_tables WHERE table_name = 'public.extra' "
                                + "AND bootstrapped_at IS NOT NULL") == 1
                    }
                }
                for (index, region) in deployment.regions.enumerated() {
                    try await deployment.sql(region) { connection in
                        try connection.execute("INSERT INTO extra VALUES (\(1000 + index), 'new in \(region)')")
                        try connection.execute("UPDATE extra SET v = 'changed in \(region)' WHERE id = \(index + 1)")
                    }
                }
            }
            let problems = try await deployment.convergeAndCheck(nil, bounds: nil, seed: 0)
            #expect(problems.isEmpty, "\(problems.prefix(5))")
            #expect(try await Self.count(deployment, "r2", "SELECT count(*) FROM extra") == 203)
            let conflicts = try await deployment.conflicts()
            #expect(conflicts.isEmpty, "\(conflicts.prefix(3))")
            for region in deployment.regions {
                // Entries of extra pulled before the region installed it are skipped, not dead letters.
                #expect(try await Self.count(deployment, region, "SELECT count(*) FROM starling.dead_letters") == 0)
            }

            try await Self.whileWriting(deployment, from: 100_000) {
                _ = try deployment.writeHubConfiguration(tables: [Self.items])
                let hub = try #require(deployment.hub)
                kill(hub.pid, SIGHUP)
                deployment.tables = [Self.items]
                for region in deployment.regions {
                    try await waitUntil("\(region) removed extra's capture", timeout: .seconds(90)) {
                        let installed = try await Self.count(
                            deployment, region,
                            "SELECT count(*) FROM starling.synced_tables WHERE table_name = 'public.extra'")
                        let capture = try await Self.captureOnExtra(deployment, region)
                        return installed == 0 && capture == 0
                    }
                }
                try await deployment.sql("r1") { try $0.execute("INSERT INTO extra VALUES (5000, 'after leaving')") }
            }
            let after = try await deployment.convergeAndCheck(nil, bounds: nil, seed: 0)
            #expect(after.isEmpty, "\(after.prefix(5))")
            #expect(try await Self.count(deployment, "r2", "SELECT count(*) FROM extra WHERE id = 5000") == 0)
            #expect(try await Self.count(deployment, "r1", "SELECT count(*) FROM starling.outbox") == 0)
            #expect(
                try await Self.count(
                    deployment, "hub", "SELECT count(*) FROM starling_hub.log WHERE table_name = 'public.extra' "
                        + "AND key::jsonb->>'id' = '5000'") == 0)
            for (region, pid) in zip(deployment.regions, pids) {
                #expect(deployment.agents[region]?.isRunning == true && deployment.agents[region]?.pid == pid)
            }
        }
    }

    @Test func threeRegionsWithIdenticalDataStartedAtOnceAllSucceed() async throws {
        // Proves: three regions holding the same rows, their agents launched at the same moment, all start (one
        // adopts, the others wait for its rows, compare and take them over) and converge with no conflict.
        try await Deployment.with(regions: 3, tables: [Self.items], ddl: Self.ddl, startAgents: false) { deployment in
            for region in deployment.regions {
                try await deployment.sql(region) { connection in
                    try connection.execute(
                        "INSERT INTO items (id, label) SELECT g, 'legacy ' || g FROM generate_series(1, 2000) g")
                }
            }
            for region in deployment.regions { try await deployment.startAgent(region, waitForStart: false) }
            for region in deployment.regions {
                let agent = try #require(deployment.agents[region])
                _ = try await agent.waitForOutputLine(containing: "agent started", timeout: .seconds(90))
                try await deployment.installOracleHooks(region)
            }
            // Convergence with the hub's heads (oracle (a)); the replay oracles need the outbox records of the
            // adopted rows, which are pushed before the oracle's hooks can be installed (they need the agent's schema).
            try await deployment.waitForConvergence()
            #expect(try await Self.count(deployment, "hub", "SELECT count(*) FROM starling_hub.conflicts") == 0)
            for region in deployment.regions {
                #expect(deployment.agents[region]?.isRunning == true, "\(region) exited")
                #expect(try await Self.count(deployment, region, "SELECT count(*) FROM items") == 2000)
            }
            #expect(try await Self.count(deployment, "hub", "SELECT count(*) FROM starling_hub.adoptions") == 1)
        }
    }

    @Test func aWriteWhileItsAgentBootstrapsIsPushedNotRefused() async throws {
        // Proves: a region whose agent has installed capture and waits for the adopting region's rows, and whose
        // application meanwhile updates and inserts rows, takes the adopted state over (no adoption_refused) and
        // pushes those writes, which reach every region.
        try await Deployment.with(regions: 2, tables: [Self.items], ddl: Self.ddl, startAgents: false) { deployment in
            for region in deployment.regions {
                try await deployment.sql(region) { connection in
                    try connection.execute(
                        "INSERT INTO items (id, label) SELECT g, 'legacy ' || g FROM generate_series(1, 300) g")
                }
            }
            // r1 holds the adoption claim but has not pushed its rows yet: r2 waits for them with capture installed.
            try await deployment.sql("hub") { connection in
                try connection.execute(
                    "INSERT INTO starling_hub.adoptions (table_name, region, row_count) VALUES ('public.items', 'r1', 300)")
            }
            try await deployment.startAgent("r2", waitForStart: false)
            let r2 = try #require(deployment.agents["r2"])
            _ = try await r2.waitForOutputLine(containing: "waiting for region r1", timeout: .seconds(60))
            try await deployment.sql("r2") { connection in
                try connection.execute("UPDATE items SET label = 'written while bootstrapping' WHERE id = 7")
                try connection.execute("INSERT INTO items (id, label) VALUES (5000, 'new while bootstrapping')")
            }
            try await deployment.startAgent("r1")
            _ = try await r2.waitForOutputLine(containing: "agent started", timeout: .seconds(60))
            try await deployment.installOracleHooks("r2")
            try await deployment.waitForConvergence()
            #expect(r2.isRunning, "r2 exited: \(r2.output.suffix(2000))")
            #expect(!r2.output.contains("adoption_refused"))
            #expect(
                try await Self.count(deployment, "r1", "SELECT count(*) FROM items WHERE id = 5000") == 1)
            #expect(try await Self.count(deployment, "r1", "SELECT count(*) FROM items") == 301)
        }
    }

    @Test func aReloadWithABadFileKeepsTheRunningTables() async throws {
        // Proves: with the real binary, a hub.yaml that does not validate is refused by POST /v1/admin/reload
        // (400 naming the key) and by SIGHUP (logged), the running tables stay synced, and a good file then works.
        try await Deployment.with(regions: 2, tables: [Self.items], ddl: Self.ddl) { deployment in
            _ = try deployment.writeHubConfiguration(
                tables: [Self.items, (name: "public.extra", policy: "sometimes")])
            let (status, json) = try await deployment.admin("POST", "/v1/admin/reload")
            #expect(status == 400)
            let message = (((json as? [String: Any])?["error"] as? [String: Any])?["message"] as? String) ?? ""
            #expect(message.contains("tables[1].policy"), "\(message)")
            let hub = try #require(deployment.hub)
            kill(hub.pid, SIGHUP)
            _ = try await hub.waitForOutputLine(containing: "configuration reload refused", timeout: .seconds(30))
            #expect(hub.isRunning)
            try await deployment.sql("r1") { try $0.execute("INSERT INTO items (id, label) VALUES (1, 'still synced')") }
            try await waitUntil("items still replicates") {
                try await Self.count(deployment, "r2", "SELECT count(*) FROM items WHERE id = 1") == 1
            }
            #expect(try await Self.count(deployment, "r2", "SELECT count(*) FROM starling.synced_tables") == 1)
            _ = try deployment.writeHubConfiguration(tables: [Self.items, Self.extra])
            let (good, _) = try await deployment.admin("POST", "/v1/admin/reload")
            #expect(good == 200)
        }
    }

    @Test func aTableKeyedByAUniqueNotNullIndexSyncsAndOneWithoutAKeyIsRefused() async throws {
        // Proves: a table without a primary key but with a unique index on NOT NULL columns (its replica identity)
        // syncs inserts, updates and deletes both ways, keyed by that index; a table with no such index stops the
        // agent with a message naming the table and the fix.
        let ddl = """
            CREATE TABLE coded (code text NOT NULL, label text, n int);
            CREATE UNIQUE INDEX coded_code ON coded (code);
            ALTER TABLE coded REPLICA IDENTITY USING INDEX coded_code;
            CREATE TABLE loose (code text, label text);
            """
        try await Deployment.with(
            regions: 2, tables: [(name: "public.coded", policy: "lww")], ddl: ddl
        ) { deployment in
            try await deployment.sql("r1") { connection in
                try connection.execute("INSERT INTO coded SELECT 'c' || g, 'r1', g FROM generate_series(1, 50) g")
            }
            try await deployment.sql("r2") { connection in
                try connection.execute("INSERT INTO coded VALUES ('z1', 'r2', 1), ('z2', 'r2', 2)")
            }
            try await deployment.waitForConvergence()
            try await deployment.sql("r2") { connection in
                try connection.execute("UPDATE coded SET label = 'changed in r2' WHERE code = 'c7'")
                try connection.execute("DELETE FROM coded WHERE code = 'c8'")
            }
            try await deployment.sql("r1") { try $0.execute("UPDATE coded SET n = 99 WHERE code = 'z1'") }
            let prints = try await deployment.waitForConvergence()
            #expect(prints["public.coded"] != "empty")
            #expect(try await Self.count(deployment, "r1", "SELECT count(*) FROM coded") == 51)
            #expect(
                try await Self.count(deployment, "r1", "SELECT count(*) FROM coded WHERE label = 'changed in r2'") == 1)
            #expect(try await Self.count(deployment, "r2", "SELECT n FROM coded WHERE code = 'z1'") == 99)
            let key = try await deployment.sql("hub") {
                try $0.query("SELECT array_to_string(key_columns, ',') FROM starling_hub.table_shapes")[0].string(0)
            }
            #expect(key == "code")
        }
        try await Deployment.with(
            regions: 1, tables: [(name: "public.loose", policy: "lww")], ddl: ddl, startAgents: false
        ) { deployment in
            let agent = try deployment.launchAgent("r1")
            let status = try await agent.waitForExit(timeout: .seconds(60))
            #expect(status != 0)
            #expect(agent.output.contains("synced table public.loose has no primary key"), "\(agent.output.suffix(1500))")
            #expect(agent.output.contains("ADD PRIMARY KEY") && agent.output.contains("REPLICA IDENTITY USING INDEX"))
        }
    }

    @Test func aRegionLackingAJoiningTableKeepsSyncingTheOthersAndJoinsOnceItExists() async throws {
        // Proves: after a reload adds a table one region does not have yet, that region's agent keeps syncing the
        // other tables and reports the missing table as its last_error; once the operator creates the table (empty),
        // the agent installs it, loads it from the hub's snapshot and converges, without a restart.
        let withoutExtra = "CREATE TABLE items (id integer PRIMARY KEY, label text, n int NOT NULL DEFAULT 0);"
        try await Deployment.with(
            regions: 2, tables: [Self.items], ddl: Self.ddl, regionDDL: ["r2": withoutExtra]
        ) { deployment in
            let pid = deployment.agents["r2"]?.pid
            _ = try deployment.writeHubConfiguration(tables: [Self.items, Self.extra])
            let (status, _) = try await deployment.admin("POST", "/v1/admin/reload")
            #expect(status == 200)
            try await waitUntil("r2 reports the missing table") {
                let (_, json) = try await deployment.admin("GET", "/v1/status")
                let regions = (json as? [String: Any])?["regions"] as? [[String: Any]] ?? []
                let error = regions.first { $0["name"] as? String == "r2" }?["last_error"] as? String ?? ""
                return error.contains("public.extra does not exist")
            }
            try await deployment.sql("r1") { connection in
                try connection.execute("INSERT INTO items (id, label) VALUES (1, 'r1')")
                try connection.execute("INSERT INTO extra VALUES (1000, 'new in r1')")
            }
            try await waitUntil("items still replicates to r2") {
                try await Self.count(deployment, "r2", "SELECT count(*) FROM items WHERE id = 1") == 1
            }
            try await deployment.sql("r2") { try $0.execute("CREATE TABLE extra (id integer PRIMARY KEY, v text)") }
            deployment.tables = [Self.items, Self.extra]
            try await waitUntil("r2 installed and bootstrapped extra", timeout: .seconds(90)) {
                try await Self.count(
                    deployment, "r2",
                    "SELECT count(*) FROM starling.synced_tables WHERE table_name = 'public.extra' "
                        + "AND bootstrapped_at IS NOT NULL") == 1
            }
            try await deployment.waitForConvergence()
            #expect(try await Self.count(deployment, "r2", "SELECT count(*) FROM extra") == 201)
            #expect(deployment.agents["r2"]?.isRunning == true && deployment.agents["r2"]?.pid == pid)
        }
    }
}
