import Foundation
import StarlingHTTP2
import StarlingPostgres
import StarlingTestSupport

/// A whole Starling deployment for one test, as real processes of the built `starling` binary: a hub over a
/// fresh database and one agent per region, each region a fresh database with `ddl` applied, all on the
/// `ops/test` Postgres cluster. Hub and agents run as children (`ChildProcess`), so a test can kill -9 and
/// restart them. `with` tears everything down (processes killed, databases dropped) on every path.
final class Deployment: @unchecked Sendable {  // Mutable process handles are touched by the test task only.
    static let adminToken = "e2e-admin"
    static func token(_ region: String) -> String { "e2e-token-\(region)" }

    let regions: [String]
    let hubDatabase: TestDatabase
    let regionDatabases: [String: TestDatabase]
    let directory: URL
    let binary: String
    /// The synced tables (what hub.yaml lists; a test that reloads the hub's tables sets it, Deployment+Tables).
    var tables: [(name: String, policy: String)]
    private(set) var hubPort: Int = 0
    private(set) var hub: ChildProcess?
    private(set) var agents: [String: ChildProcess] = [:]
    /// The `hub:` URLs agents are configured with (empty: the one hub's URL). Set by failover tests.
    var agentHubURLs: [String] = []
    /// Appended to `hub.yaml` (say `retention: {…}`); set before `startHub()`.
    var hubExtraYAML = ""
    /// Appended to a region's `agent.yaml` (say `bootstrap: {replace_local: true}`); set before its start.
    var agentExtraYAML: [String: String] = [:]
    /// The agents' `capture:` (default ``capture``).
    var agentCapture = Deployment.capture
    /// Further processes (a standby hub) killed at tear-down like the others.
    var extraProcesses: [(name: String, process: ChildProcess)] = []
    /// The port of a standby hub a test started (``startStandbyHub()``), if any.
    var standbyPort: Int?
    /// The port agents are told the hub is on (a `FaultProxy` in front of the hub); nil: the hub's own.
    var agentHubPort: Int?
    /// Extra environment per agent (e.g. the test-only clock offset).
    var agentEnvironment: [String: [String: String]] = [:]
    /// The hub's database URL when it moved (a restore drill brings the store back on another cluster).
    private var movedHubStore: String?
    private var client: HTTP2Client?
    /// One worker per region (and the hub) for the test's own SQL, so blocking libpq stays off the pool.
    private var workers: [String: PostgresWorker] = [:]

    private init(
        regions: [String], hubDatabase: TestDatabase, regionDatabases: [String: TestDatabase],
        tables: [(name: String, policy: String)]
    ) throws {
        self.regions = regions
        self.hubDatabase = hubDatabase
        self.regionDatabases = regionDatabases
        self.tables = tables
        binary = try StarlingBinary.path()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("starling-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        for (name, database) in regionDatabases {
            workers[name] = PostgresWorker(url: database.url, applicationName: "e2e-\(name)", threadName: "e2e-\(name)")
        }
        workers["hub"] = PostgresWorker(url: hubDatabase.url, applicationName: "e2e-hub", threadName: "e2e-hub")
    }

    /// Creates the databases (`ddl` in every region, `regionDDL` overrides per region), starts the hub and,
    /// unless `startAgents` is false, every agent; runs `body`; tears down.
    static func with<T>(
        regions count: Int, tables: [(name: String, policy: String)], ddl: String,
        regionDDL: [String: String] = [:], startAgents: Bool = true, clusters: [String: String] = [:],
        capture: String = Deployment.capture, _ body: (Deployment) async throws -> T
    ) async throws -> T {
        let names = (1...count).map { "r\($0)" }
        // `clusters` maps "hub" or a region to another cluster's admin URL (a restartable TestPostgresCluster).
        func create(_ target: String) async throws -> TestDatabase {
            if let admin = clusters[target] { return try await TestDatabase.create(adminURL: admin) }
            return try await TestDatabase.create()
        }
        let hubDatabase = try await create("hub")
        var databases: [String: TestDatabase] = [:]
        for name in names { databases[name] = try await create(name) }
        let deployment = try Deployment(
            regions: names, hubDatabase: hubDatabase, regionDatabases: databases, tables: tables)
        deployment.agentCapture = capture
        do {
            for name in names {
                let script = regionDDL[name] ?? ddl
                try await deployment.sql(name) { try $0.executeScript(script) }
            }
            try await deployment.startHub()
            if startAgents {
                for name in names { try await deployment.startAgent(name) }
            }
            let value = try await body(deployment)
            await deployment.tearDown()
            return value
        } catch {
            deployment.dumpOutput()
            await deployment.tearDown()
            throw error
        }
    }

    // MARK: - Processes

    /// Starts the hub (on the port it had before, if any) and waits until it listens.
    func startHub() async throws {
        let config = try writeHubConfiguration(tables: tables)
        let process = try ChildProcess.launch(binary, ["hub", "--config", config.path, "--log-level", "warning"])
        hub = process
        let line = try await process.waitForOutputLine(containing: "listening", timeout: .seconds(60))
        guard let port = line.split(separator: ":").last.flatMap({ Int($0.trimmingCharacters(in: .whitespaces)) })
        else { throw E2EError( "cannot read the hub's port from '\(line)'") }
        if hubPort == 0 {
            hubPort = port
            client = try HTTP2Client(configuration: HTTP2ClientConfiguration(baseURL: "http://127.0.0.1:\(port)"))
        }
    }

    /// Writes `hub.yaml` with `tables` (and ``hubExtraYAML``); returns its path.
    func writeHubConfiguration(tables: [(name: String, policy: String)], extra: String = "") throws -> URL {
        let config = directory.appendingPathComponent("hub.yaml")
        let database = movedHubStore ?? hubDatabase.url
        var yaml = "listen: 127.0.0.1:\(hubPort)\ndatabase: \(database)\nadmin_token: \(Self.adminToken)\n"
        yaml += "regions:\n"
        for (index, region) in regions.enumerated() {
            yaml += "  - {name: \(region), token: \(Self.token(region)), priority: \(100 - index), id: \(index + 1)}\n"
        }
        yaml += "tables:\n"
        for table in tables { yaml += "  - {name: \(table.name), policy: \(table.policy)}\n" }
        yaml += hubExtraYAML + extra
        try yaml.write(to: config, atomically: true, encoding: .utf8)
        return config
    }

    /// Starts `region`'s agent and waits for its "agent started" line.
    func startAgent(_ region: String, waitForStart: Bool = true) async throws {
        let process = try launchAgent(region)
        agents[region] = process
        if waitForStart {
            _ = try await process.waitForOutputLine(containing: "agent started", timeout: .seconds(60))
            try await installOracleHooks(region)
        }
    }

    /// The agents' `capture:` (``STARLING_TEST_CAPTURE``: `wal`, `trigger` or `auto`; default `auto`, which is
    /// WAL capture on ops/test's cluster): ops/test runs the end-to-end suites once per capture mode.
    static let capture = ProcessInfo.processInfo.environment["STARLING_TEST_CAPTURE"] ?? "auto"

    /// Launches `region`'s agent with `arguments` appended (e.g. `--uninstall`), without waiting.
    func launchAgent(_ region: String, extra: [String] = []) throws -> ChildProcess {
        guard let database = regionDatabases[region] else { throw E2EError( "no region \(region)") }
        let config = directory.appendingPathComponent("agent-\(region).yaml")
        let yaml = """
            region: \(region)
            hub: \(agentHubURLs.isEmpty ? "http://127.0.0.1:\(agentHubPort ?? hubPort)" : "[\(agentHubURLs.joined(separator: ", "))]")
            token: \(Self.token(region))
            database: \(database.url)
            tuning:
              batch: {max_count: 500}
              pull: {limit: 500, wait_ms: 250}
              apply: {workers: 2, min_parallel_entries: 2}
              backoff: {initial_ms: 50, max_ms: 500}
              status_interval_ms: 200
              request_timeout_ms: 5000
            capture: \(agentCapture)
            journal: true

            """ + (agentExtraYAML[region] ?? "")
        try yaml.write(to: config, atomically: true, encoding: .utf8)
        return try ChildProcess.launch(
            binary, ["agent", "--config", config.path] + extra,
            environment: agentEnvironment[region] ?? [:])
    }

    /// SIGKILLs the hub and waits for it to be gone.
    func killHub() async throws {
        hub?.signal(SIGKILL)
        _ = try await hub?.waitForExit()
    }

    /// SIGKILLs `region`'s agent and waits for it to be gone.
    func killAgent(_ region: String) async throws {
        agents[region]?.signal(SIGKILL)
        _ = try await agents[region]?.waitForExit()
    }

    /// Moves the hub's store to `url` (the same database restored on another cluster): the next ``startHub()``
    /// and the test's own SQL on "hub" use it.
    func moveHubStore(to url: String) async {
        movedHubStore = url
        await workers["hub"]?.shutdown()
        workers["hub"] = PostgresWorker(url: url, applicationName: "e2e-hub", threadName: "e2e-hub")
    }

    /// Points the test's admin client at the hub listening on `port` (after a failover).
    func useHub(port: Int) throws {
        client?.shutdown()
        client = try HTTP2Client(configuration: HTTP2ClientConfiguration(baseURL: "http://127.0.0.1:\(port)"))
    }

    private func tearDown() async {
        client?.shutdown()
        for extra in extraProcesses where extra.process.isRunning { extra.process.signal(SIGKILL) }
        for extra in extraProcesses { _ = try? await extra.process.waitForExit(timeout: .seconds(10)) }
        for agent in agents.values where agent.isRunning { agent.signal(SIGKILL) }
        if let hub, hub.isRunning { hub.signal(SIGKILL) }
        for agent in agents.values { _ = try? await agent.waitForExit(timeout: .seconds(10)) }
        if let hub { _ = try? await hub.waitForExit(timeout: .seconds(10)) }
        for worker in workers.values { await worker.shutdown() }
        for database in regionDatabases.values { try? await database.drop() }
        try? await hubDatabase.drop()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Prints every process's output (on failure only).
    func dumpOutput() {
        if let hub { print("---- hub output ----\n\(hub.output.suffix(6000))") }
        for extra in extraProcesses { print("---- \(extra.name) output ----\n\(extra.process.output.suffix(6000))") }
        for (name, agent) in agents.sorted(by: { $0.key < $1.key }) {
            print("---- agent \(name) output ----\n\(agent.output.suffix(6000))")
        }
    }

    // MARK: - SQL and HTTP

    /// Runs `body` on `target`'s connection ("hub" or a region name) on its worker thread.
    func sql<T: Sendable>(_ target: String, _ body: @escaping @Sendable (PostgresConnection) throws -> T)
        async throws -> T
    {
        guard let worker = workers[target] else { throw E2EError( "no database \(target)") }
        return try await worker.withConnection(body)
    }

    /// An admin request to the hub; returns status and the parsed JSON body.
    func admin(_ method: String, _ path: String, body: [UInt8] = []) async throws -> (status: Int, json: Any?) {
        guard let client else { throw E2EError( "hub not started") }
        let response = try await client.send(
            HTTPClientRequest(
                method: method, path: path,
                headers: ["authorization": "Bearer \(Self.adminToken)", "content-type": "application/json"],
                body: body))
        return (response.status, try? JSONSerialization.jsonObject(with: Data(response.body)))
    }

    /// Every conflict the hub recorded (`status=all`, paged).
    func conflicts() async throws -> [[String: Any]] {
        var all: [[String: Any]] = []
        var after = 0
        while true {
            let (status, json) = try await admin("GET", "/v1/conflicts?status=all&after=\(after)&limit=1000")
            guard status == 200, let object = json as? [String: Any], let page = object["conflicts"] as? [[String: Any]]
            else { throw E2EError( "GET /v1/conflicts failed with \(status)") }
            all += page
            guard page.count == 1000, let next = object["next"] as? Int else { return all }
            after = next
        }
    }

    /// md5 of the ordered row text of `table` in `region`.
    func fingerprint(_ region: String, table: String) async throws -> String {
        try await sql(region) { connection in
            try connection.query(
                "SELECT coalesce(md5(string_agg(x::text, E'\\n' ORDER BY x::text)), 'empty') FROM \(table) x"
            )[0].string(0)
        }
    }

    /// Waits until every region's outbox is empty, every cursor is at the hub's head, every synced table has the
    /// same fingerprint everywhere, and every region's rows equal the hub's heads (`ConvergenceOracle`'s check
    /// (a)); returns the fingerprints of the first region.
    @discardableResult
    func waitForConvergence(timeout: Duration = .seconds(90)) async throws -> [String: String] {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var last = ""
        while clock.now < deadline {
            let head = try await sql("hub") { try $0.query("SELECT coalesce(max(seq), 0) FROM starling_hub.log")[0].int64(0) }
            var drained = true
            for region in regions {
                let (depth, cursor) = try await sql(region) { connection in
                    let row = try connection.query(
                        "SELECT (SELECT count(*) FROM starling.outbox), (SELECT cursor FROM starling.state)")[0]
                    return (try row.int64(0), try row.int64(1))
                }
                if depth > 0 || cursor < head {
                    drained = false
                    last = "\(region): outbox \(depth), cursor \(cursor), head \(head)"
                    break
                }
            }
            if drained {
                var prints: [String: String] = [:]
                var same = true
                for table in tables {
                    let first = try await fingerprint(regions[0], table: table.name)
                    prints[table.name] = first
                    for region in regions.dropFirst() where try await fingerprint(region, table: table.name) != first {
                        same = false
                        last = "\(table.name) differs in \(region)"
                    }
                }
                let stillHead = try await sql("hub") {
                    try $0.query("SELECT coalesce(max(seq), 0) FROM starling_hub.log")[0].int64(0)
                }
                if same && stillHead == head {
                    // Equal to each other is not enough: every region must hold exactly the hub's heads.
                    let problems = try await ConvergenceOracle(deployment: self).headProblems()
                    if problems.isEmpty { return prints }
                    last = "the regions agree but differ from the hub's heads: \(problems.prefix(3))"
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw E2EError( "no convergence within \(timeout): \(last)")
    }
}

/// A failed end-to-end expectation that is not an `#expect` (a timeout, a missing process).
struct E2EError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
