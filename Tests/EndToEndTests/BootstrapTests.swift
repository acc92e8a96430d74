import StarlingPostgres
import StarlingTestSupport
import Testing

/// Bootstrap and adoption with real hub and agent processes.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct BootstrapTests {
    static let tables: [(name: String, policy: String)] = [("public.t_lww", "lww")]
    static let ddl = "CREATE TABLE public.t_lww (k int PRIMARY KEY, v text, n int NOT NULL DEFAULT 0, note text);"

    /// Writes `count` rows `from...` in `region` (one transaction).
    static func write(_ deployment: Deployment, _ region: String, from: Int, count: Int, tag: String) async throws {
        _ = try await deployment.sql(region) { connection in
            try connection.execute(
                "INSERT INTO public.t_lww (k, v) SELECT g, '\(tag):' || g FROM generate_series(\(from), \(from + count - 1)) g "
                    + "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, n = t_lww.n + 1")
        }
    }

    /// One integer from `sql` in `target` ("hub" or a region).
    static func count(_ deployment: Deployment, _ target: String, _ sql: String) async throws -> Int64 {
        try await deployment.sql(target) { try $0.query(sql)[0].int64(0) }
    }

    @Test func anEmptyRegionJoinsARunningClusterAndConverges() async throws {
        // Proves a region started late with empty tables loads the snapshot while others keep writing, then
        // tails the log, and ends identical to the others.
        try await Deployment.with(regions: 3, tables: Self.tables, ddl: Self.ddl, startAgents: false) { deployment in
            try await deployment.startAgent("r1")
            try await deployment.startAgent("r2")
            for round in 0..<5 {
                try await Self.write(deployment, "r1", from: round * 100, count: 150, tag: "r1")
                try await Self.write(deployment, "r2", from: round * 100 + 50, count: 100, tag: "r2")
            }
            // More heads than one snapshot page (500), so r3 pages and applies in chunks.
            try await waitUntil("the hub holds the first five rounds") {
                try await Self.count(deployment, "hub", "SELECT count(*) FROM starling_hub.heads") == 550
            }
            try await deployment.startAgent("r3")
            for round in 5..<10 {
                try await Self.write(deployment, "r1", from: round * 100, count: 150, tag: "r1")
                try await Self.write(deployment, "r2", from: round * 100 + 50, count: 100, tag: "r2")
            }
            do {
                let prints = try await deployment.waitForConvergence()
                #expect(prints["public.t_lww"] != "empty")
            } catch {
                // Which keys r3 lacks and where its cursor stands say whether the snapshot or the tail lost them.
                let missing = try await deployment.sql("r3") { connection in
                    try connection.query(
                        "SELECT coalesce(string_agg(g::text, ','), '') || ' cursor ' || (SELECT cursor FROM starling.state) "
                            + "FROM generate_series(0, 1049) g WHERE NOT EXISTS (SELECT 1 FROM public.t_lww t WHERE t.k = g)"
                    )[0].string(0)
                }
                Issue.record("r3 lacks keys \(missing)")
                throw error
            }
        }
    }

    @Test func theFirstRegionsRowsBecomeTheStateOfTheOthers() async throws {
        // Proves adoption: rows that existed in r1 before Starling are pushed as the initial state, and regions
        // holding the same rows or none converge to them.
        try await Deployment.with(regions: 3, tables: Self.tables, ddl: Self.ddl, startAgents: false) { deployment in
            try await Self.write(deployment, "r1", from: 1, count: 300, tag: "legacy")
            try await Self.write(deployment, "r2", from: 1, count: 300, tag: "legacy")
            try await deployment.startAgent("r1")
            try await deployment.startAgent("r2")
            try await deployment.startAgent("r3")
            let prints = try await deployment.waitForConvergence()
            let r1 = try await deployment.fingerprint("r1", table: "public.t_lww")
            #expect(prints["public.t_lww"] == r1)
            let count = try await deployment.sql("r3") { try $0.query("SELECT count(*) FROM public.t_lww")[0].int64(0) }
            #expect(count == 300)
        }
    }

    @Test func differingRegionsAreRefusedWithAClearMessage() async throws {
        // Proves a region whose existing rows differ from the adopted state refuses to start, naming the
        // table, the adopting region and the option that replaces its rows.
        try await Deployment.with(regions: 2, tables: Self.tables, ddl: Self.ddl, startAgents: false) { deployment in
            try await Self.write(deployment, "r1", from: 1, count: 50, tag: "one")
            try await Self.write(deployment, "r2", from: 1, count: 50, tag: "two")
            try await deployment.startAgent("r1")
            try await waitUntil("r1's rows reached the hub") {
                try await deployment.sql("hub") { try $0.query("SELECT count(*) FROM starling_hub.heads")[0].int64(0) }
                    == 50
            }
            let refused = try deployment.launchAgent("r2")
            let status = try await refused.waitForExit(timeout: .seconds(60))
            #expect(status != 0)
            #expect(refused.output.contains("adoption_refused"))
            #expect(refused.output.contains("public.t_lww"))
            #expect(refused.output.contains("region r1"))
            #expect(refused.output.contains("bootstrap.replace_local"))
        }
    }

    @Test func aRegionBehindThePrunedLogReBootstrapsAndKeepsItsLocalWrites() async throws {
        // Proves a region whose cursor fell behind the retained log gets 410 cursor_pruned, re-bootstraps on its
        // own and converges, and its writes made while its agent was down survive (or lost a recorded conflict).
        try await Deployment.with(regions: 3, tables: Self.tables, ddl: Self.ddl, startAgents: false) { deployment in
            deployment.hubExtraYAML =
                "retention: {window: 0s, partition_entries: 50, inactive_after: 1s, check_interval: 1s}\n"
            try await deployment.killHub()
            try await deployment.startHub()
            for region in deployment.regions { try await deployment.startAgent(region) }
            try await Self.write(deployment, "r1", from: 0, count: 200, tag: "r1")
            try await deployment.waitForConvergence()

            try await deployment.killAgent("r3")
            let cursor = try await Self.count(deployment, "r3", "SELECT cursor FROM starling.state")
            for round in 0..<4 { try await Self.write(deployment, "r1", from: 200 + round * 100, count: 100, tag: "r1") }
            try await Self.write(deployment, "r2", from: 0, count: 100, tag: "r2")
            try await waitUntil("the hub pruned entries r3 never pulled") {
                try await Self.count(deployment, "hub", "SELECT pruned_through FROM starling_hub.retention") > cursor
            }
            // Local writes while r3's agent is down: 600 new keys (more than one push batch, so some are still
            // pending when the re-bootstrap runs), and updates of 50..149, of which r2 changed 50..99 meanwhile.
            try await Self.write(deployment, "r3", from: 1000, count: 300, tag: "r3")
            try await Self.write(deployment, "r3", from: 1300, count: 300, tag: "r3")
            try await Self.write(deployment, "r3", from: 50, count: 100, tag: "r3")

            try await deployment.startAgent("r3")
            try await deployment.waitForConvergence()
            let output = deployment.agents["r3"]?.output ?? ""
            #expect(output.contains("agent.fresh=false"), "r3 did not re-bootstrap")
            let r3Rows = try await Self.count(
                deployment, "r1", "SELECT count(*) FROM public.t_lww WHERE k BETWEEN 1000 AND 1599 AND v LIKE 'r3:%'")
            #expect(r3Rows == 600)
            let kept = try await Self.count(
                deployment, "r1", "SELECT count(*) FROM public.t_lww WHERE k BETWEEN 50 AND 149 AND v LIKE 'r3:%'")
            let lost = try await Self.count(
                deployment, "hub",
                "SELECT count(DISTINCT key) FROM starling_hub.conflicts WHERE incoming_origin = 'r3' AND winner = 'current'")
            #expect(kept + lost == 100, "kept \(kept), lost with a conflict \(lost)")
            #expect(try await Self.count(deployment, "r3", "SELECT count(*) FROM starling.dead_letters") == 0)
        }
    }

    @Test func replaceLocalAdoptsTheHubsRowsAndKeepsTheReplacedOnes() async throws {
        // Proves bootstrap.replace_local: a region whose existing rows differ from the adopted state starts,
        // its differing and extra rows are kept in starling.replaced_rows, replaced by the hub's, and it
        // converges; equal rows are not recorded.
        try await Deployment.with(regions: 3, tables: Self.tables, ddl: Self.ddl, startAgents: false) { deployment in
            try await Self.write(deployment, "r1", from: 1, count: 50, tag: "one")
            try await Self.write(deployment, "r2", from: 1, count: 40, tag: "two")
            try await Self.write(deployment, "r2", from: 41, count: 10, tag: "one")
            try await Self.write(deployment, "r2", from: 51, count: 5, tag: "two")
            try await deployment.startAgent("r1")
            try await waitUntil("r1's rows reached the hub") {
                try await Self.count(deployment, "hub", "SELECT count(*) FROM starling_hub.heads") == 50
            }
            deployment.agentExtraYAML["r2"] = "bootstrap: {replace_local: true}\n"
            try await deployment.startAgent("r2")
            try await deployment.startAgent("r3")
            let prints = try await deployment.waitForConvergence()
            #expect(prints["public.t_lww"] == (try await deployment.fingerprint("r1", table: "public.t_lww")))
            #expect(try await Self.count(deployment, "r2", "SELECT count(*) FROM public.t_lww") == 50)
            #expect(try await Self.count(deployment, "hub", "SELECT count(*) FROM starling_hub.heads") == 50)
            let replaced = try await deployment.sql("r2") { connection in
                try connection.query(
                    "SELECT string_agg(DISTINCT (key->>'k') || ':' || (row->>'v') || ':' || source_region, ',') "
                        + "FROM starling.replaced_rows WHERE table_name = 'public.t_lww'")[0].optionalString(0) ?? ""
            }
            let expected = ((1...40).map { $0 } + (51...55).map { $0 }).map { "\($0):two:\($0):r1" }.sorted()
            #expect(replaced.split(separator: ",").map(String.init).sorted() == expected)
        }
    }
}
