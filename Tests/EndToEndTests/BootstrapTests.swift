import StarlingPostgres
import Testing

/// Bootstrap and adoption (issue 7) with real hub and agent processes.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct BootstrapTests {
    static let tables: [(name: String, policy: String)] = [("public.t_lww", "lww")]
    static let ddl = "CREATE TABLE public.t_lww (k int PRIMARY KEY, v text, n int NOT NULL DEFAULT 0, note text);"

    /// Writes `count` rows `from...` in `region` (one transaction).
    static func write(_ deployment: Deployment, _ region: String, from: Int, count: Int, tag: String) async throws {
        try await deployment.sql(region) { connection in
            try connection.execute(
                "INSERT INTO public.t_lww (k, v) SELECT g, '\(tag):' || g FROM generate_series(\(from), \(from + count - 1)) g "
                    + "ON CONFLICT (k) DO UPDATE SET v = EXCLUDED.v, n = t_lww.n + 1")
        }
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
            try await deployment.startAgent("r3")
            for round in 5..<10 {
                try await Self.write(deployment, "r1", from: round * 100, count: 150, tag: "r1")
                try await Self.write(deployment, "r2", from: round * 100 + 50, count: 100, tag: "r2")
            }
            do {
                let prints = try await deployment.waitForConvergence()
                #expect(prints["public.t_lww"] != "empty")
            } catch {
                for region in ["r1", "r3"] {
                    let text = try await deployment.sql(region) { connection in
                        try connection.query(
                            "SELECT count(*)::text || ' ' || coalesce((SELECT string_agg(x.k::text, ',') FROM (SELECT k FROM generate_series(0, 1099) AS x(k) WHERE NOT EXISTS (SELECT 1 FROM public.t_lww t WHERE t.k = x.k)) x), '') || ' cursor ' || (SELECT cursor FROM starling.state)::text FROM public.t_lww"
                        )[0].string(0)
                    }
                    print("e2e debug \(region): \(text)")
                }
                let versions = try await deployment.sql("r3") { connection in
                    try connection.query("SELECT string_agg(key::text || '=' || seq, ' ') FROM starling.versions WHERE (key->>'k')::int < 8")[0].optionalString(0) ?? ""
                }
                let heads = try await deployment.sql("hub") { connection in
                    try connection.query("SELECT string_agg(key || '=' || seq || '/' || origin, ' ') FROM starling_hub.heads WHERE key < '{\"k\":8}' ")[0].optionalString(0) ?? ""
                }
                print("e2e debug versions: \(versions) heads: \(heads)")
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
}
