import Foundation
import StarlingHTTP2
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Hub failover as real processes: two hubs over one hub database, agents listing both URLs.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct FailoverTests {
    @Test func activeHubKilledUnderLoadStandbyTakesOver() async throws {
        // Proves a kill -9 of the active hub under a writing workload loses nothing: the standby takes over (the
        // takeover time is printed), agents fail over to it, the regions converge to the hub's heads and pass every
        // oracle (ConvergenceOracle), and the new active shows every cursor at head.
        let seed = ConvergenceTests.seed()
        print("e2e failover: seed \(seed) (replay with STARLING_E2E_SEED=\(seed))")
        try await Deployment.with(
            regions: 3, tables: Workload.tables, ddl: Workload.ddl, startAgents: false
        ) { deployment in
            let standbyPort = try await deployment.startStandbyHub()
            let standby = try HTTP2Client(
                configuration: HTTP2ClientConfiguration(baseURL: "http://127.0.0.1:\(standbyPort)"))
            defer { standby.shutdown() }
            let health = try await standby.send(HTTPClientRequest(method: "GET", path: "/healthz"))
            #expect(String(decoding: health.body, as: UTF8.self).contains(#""role":"standby""#))
            #expect(try await standby.send(HTTPClientRequest(method: "GET", path: "/readyz")).status == 503)

            // The standby first: every agent starts by skipping its 503 `standby`, then fails back to it.
            deployment.agentHubURLs = ["http://127.0.0.1:\(standbyPort)", "http://127.0.0.1:\(deployment.hubPort)"]
            for region in deployment.regions { try await deployment.startAgent(region) }

            let workload = Workload(seed: seed, transactions: 400, keys: 12)
            let load = Task { (try await deployment.runWorkload(workload), ContinuousClock.now) }
            try await waitUntil("the hub has sequenced 150 entries", timeout: .seconds(60)) {
                try await deployment.logHead() >= 150
            }
            let headAtKill = try await deployment.logHead()
            let killed = ContinuousClock.now
            try await deployment.killHub()
            try await waitUntil("the standby is ready", timeout: .seconds(30)) {
                (try? await standby.send(HTTPClientRequest(method: "GET", path: "/readyz")))?.status == 200
            }
            let ready = ContinuousClock.now - killed
            // One more write, so there is a push to sequence even if the workload pushed everything before the
            // kill (WAL capture pushes a workload this size about as fast as it writes).
            try await deployment.sql("r1") { connection in
                try connection.execute("INSERT INTO public.t_lww (k, v, note) VALUES (900001, 'failover:1', 'n')")
            }
            try await waitUntil("the new active hub sequenced a push", timeout: .seconds(30)) {
                try await deployment.logHead() > headAtKill
            }
            let served = ContinuousClock.now - killed
            var (writes, loadEnded) = try await load.value
            writes.writes.append(
                Workload.Write(region: "r1", table: "public.t_lww", key: 900001, op: "insert", token: "failover:1", column: "v"))
            print(
                "e2e failover: takeover: kill -9 → standby ready \(ready), → first push sequenced \(served) "
                    + "(head at kill \(headAtKill); workload still writing at the kill: \(loadEnded > killed))")
            #expect(ready < .seconds(10), "the standby takes over within seconds")
            #expect(deployment.agentsRunning)
            try deployment.useHub(port: standbyPort)
            let problems = try await deployment.convergeAndCheck(
                writes, bounds: ConvergenceOracle.Bounds(minWritesPerRegion: 100, minConflicts: 10), seed: seed)
            #expect(problems.isEmpty, "seed \(seed) (replay with STARLING_E2E_SEED=\(seed)): \(problems.prefix(20))")

            let head = try await deployment.logHead()
            try await waitUntil("every cursor on the new active is at head \(head)", timeout: .seconds(30)) {
                let (status, json) = try await deployment.admin("GET", "/v1/status")
                guard status == 200, let object = json as? [String: Any],
                    let regions = object["regions"] as? [[String: Any]], object["role"] as? String == "active"
                else { return false }
                return regions.count == deployment.regions.count
                    && regions.allSatisfy { ($0["cursor"] as? Int).map(Int64.init) == head }
            }
            let (_, json) = try await deployment.admin("GET", "/v1/status")
            let status = json as? [String: Any]
            print(
                "e2e failover: \(writes.writes.count) writes, head \(head), hub-side takeover "
                    + "\(status?["last_takeover_seconds"] ?? "?") s")
        }
    }
}

extension Deployment {
    /// Starts a second hub process on the same hub database (port 0) and returns its port; it starts as a
    /// standby while the first hub holds the sequencer lock.
    func startStandbyHub() async throws -> Int {
        // The active hub's configuration on a port of its own (hub.yaml names the active hub's once it ran).
        let config = directory.appendingPathComponent("hub-standby.yaml")
        let active = try String(contentsOf: directory.appendingPathComponent("hub.yaml"), encoding: .utf8)
        try active.replacingOccurrences(of: "listen: 127.0.0.1:\(hubPort)\n", with: "listen: 127.0.0.1:0\n")
            .write(to: config, atomically: true, encoding: .utf8)
        let process = try ChildProcess.launch(binary, ["hub", "--config", config.path, "--log-level", "warning"])
        extraProcesses.append((name: "standby hub", process: process))
        let line = try await process.waitForOutputLine(containing: "listening", timeout: .seconds(60))
        guard let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) })
        else { throw E2EError("cannot read the standby hub's port from '\(line)'") }
        return port
    }

    /// The hub log's newest seq, read from the hub database.
    func logHead() async throws -> Int64 {
        try await sql("hub") { try $0.query("SELECT coalesce(max(seq), 0) FROM starling_hub.log")[0].int64(0) }
    }

    /// Whether every agent process is still running.
    var agentsRunning: Bool { agents.values.allSatisfy(\.isRunning) }
}
