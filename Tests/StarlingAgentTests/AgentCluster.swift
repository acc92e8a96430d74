import Foundation
import Logging
import StarlingAgent
import StarlingCore
import StarlingHub
import StarlingPostgres
import StarlingTestSupport
import Synchronization

/// A deployment for agent tests, all in this process and all real: a hub database with one or two
/// ``InProcessHub``s on it, one fresh database per region with the test's tables, and real ``Agent``s started
/// on them against the hubs' URLs over `HTTPHubLink`.
///
/// ``with(regions:ddl:tables:limits:retention:hubCount:_:)`` builds it, runs the body and tears everything down
/// (agents stopped, hubs stopped, databases dropped) whether the body returned or threw. The hub list and the
/// agent list are `Mutex`es: tests restart hubs and agents while other tasks read them.
final class AgentCluster: Sendable {
    let hubDatabase: TestDatabase
    /// Region name → its database and a worker for the test's own queries.
    let regions: [String: TestRegion]
    private let hubs: Mutex<[InProcessHub]>
    private let agents = Mutex<[RunningAgent]>([])

    /// The regions' tables: one per policy the agent tests exercise (same columns, `id` the key).
    static let ddl = """
        CREATE TABLE items (id bigint PRIMARY KEY, qty integer, note text);
        CREATE TABLE firsts (id bigint PRIMARY KEY, qty integer, note text);
        CREATE TABLE merged (id bigint PRIMARY KEY, qty integer, note text);
        """
    static let tables: [HubConfiguration.Table] = [
        .init(name: "public.items", policy: "lww"), .init(name: "public.firsts", policy: "reject"),
        .init(name: "public.merged", policy: "merge"),
    ]

    private init(hubDatabase: TestDatabase, regions: [String: TestRegion], hubs: [InProcessHub]) {
        self.hubDatabase = hubDatabase
        self.regions = regions
        self.hubs = Mutex(hubs)
    }

    /// The first hub (the active one unless a test failed it over).
    var hub: InProcessHub { hubs.withLock { $0[0] } }
    /// Every hub, in start order (the first took the sequencer lock, the others are standbys).
    var allHubs: [InProcessHub] { hubs.withLock { $0 } }

    subscript(region: String) -> TestRegion {
        guard let region = regions[region] else { preconditionFailure("no region \(region) in this cluster") }
        return region
    }

    /// Creates the databases (`ddl` in every region), starts `hubCount` hubs on one hub database, runs `body`,
    /// and tears everything down.
    static func with<T>(
        regions names: [String], ddl: String = ddl, tables: [HubConfiguration.Table] = tables,
        limits: HubConfiguration.Limits = .init(), retention: HubConfiguration.Retention = .init(), hubCount: Int = 1,
        _ body: (AgentCluster) async throws -> T
    ) async throws -> T {
        var databases: [TestDatabase] = []
        var regions: [String: TestRegion] = [:]
        var hubs: [InProcessHub] = []
        func tearDown() async {
            for hub in hubs { await hub.stop() }
            for region in regions.values { await region.shutdown() }
            for database in databases { try? await database.drop() }
        }
        do {
            let hubDatabase = try await TestDatabase.create()
            databases.append(hubDatabase)
            for name in names {
                let database = try await TestDatabase.create()
                databases.append(database)
                let region = TestRegion(name: name, database: database)
                regions[name] = region
                try await region.sql { _ = try $0.executeScript(ddl) }
            }
            var configuration = InProcessHub.configuration(database: hubDatabase.url, tables: tables, limits: limits)
            configuration.retention = retention
            for _ in 0..<hubCount { hubs.append(try await InProcessHub.start(configuration)) }
            let cluster = AgentCluster(hubDatabase: hubDatabase, regions: regions, hubs: hubs)
            do {
                let value = try await body(cluster)
                try await cluster.stopEverything()
                hubs = cluster.allHubs
                await tearDown()
                return value
            } catch {
                try? await cluster.stopEverything()
                hubs = cluster.allHubs
                throw error
            }
        } catch {
            await tearDown()
            throw error
        }
    }

    /// Starts a real agent for `region` against `hubs` (default: the first hub's URL), with short backoffs
    /// and status reports every 100 ms; `tune` adjusts its configuration further.
    @discardableResult
    /// `log`: the agent logs into it at debug level (instead of the level `STARLING_TEST_AGENT_LOG` sets).
    func startAgent(
        _ region: String, hubs urls: [String]? = nil, log: RecordedLog? = nil,
        tune: (inout AgentConfiguration) -> Void = { _ in }
    ) throws -> RunningAgent {
        var configuration = AgentConfiguration(
            region: region, hub: hub.url, token: InProcessHub.token(region), database: self[region].database.url)
        configuration.hubs = urls ?? [hub.url]
        configuration.tuning.backoff = .init(initialMs: 5, maxMs: 100)
        configuration.tuning.statusIntervalMs = 100
        // The agent tests look at trigger capture's outbox and NOTIFY unless they choose WAL capture
        // (WALCaptureTests); the end-to-end suites run both.
        configuration.capture = .trigger
        // Parallel apply on every page of two entries or more under WAL capture (a page needs two key-disjoint
        // transactions to be cut): the WAL suites run it wherever they can.
        configuration.tuning.apply = .init(workers: 3, minParallelEntries: 2)
        tune(&configuration)
        let running = try RunningAgent(configuration: configuration, log: log)
        agents.withLock { $0.append(running) }
        return running
    }

    /// Asks every agent to stop, stops the hubs (which ends the agents' long polls at once: an agent stops
    /// only when its pull returns), then waits for the agents; rethrows the first failure of their `run()`.
    private func stopEverything() async throws {
        let running = agents.withLock { $0 }
        for agent in running { agent.agent.stop() }
        for hub in allHubs { await hub.stop() }
        var failure: (any Error)?
        for agent in running {
            do { try await agent.stop() } catch { failure = failure ?? error }
        }
        if let failure { throw failure }
    }

    /// Replaces the first hub by a restart on the same database and port with `limits`.
    func restartHub(limits: HubConfiguration.Limits) async throws {
        let restarted = try await hub.restarted(limits: limits)
        hubs.withLock { $0[0] = restarted }
    }

    /// Waits until `region`'s agent finished starting (schema and triggers installed, bootstrap done): a row
    /// written before that would be adopted as existing data instead of captured.
    func waitUntilStarted(_ region: String) async throws {
        try await waitUntil("the agent of \(region) started") {
            try await self[region].sql { connection in
                // to_jsonb: the column may not exist yet while the agent is still migrating its schema.
                try connection.query(
                    "SELECT to_regclass('starling.state') IS NOT NULL AS ok")[0].bool("ok")
                    && connection.query(
                        "SELECT count(*) > 0 AS ok FROM starling.state s "
                            + "WHERE to_jsonb(s)->>'bootstrapped_at' IS NOT NULL")[0].bool("ok")
            }
        }
    }

    /// Waits until every region in `names` holds the same rows of `table` as the first, and its outbox is empty.
    func waitUntilConverged(_ names: [String], table: String, timeout: Duration = .seconds(60)) async throws {
        try await waitUntil("\(names) hold the same \(table)", timeout: timeout) {
            var prints: Set<String> = []
            for name in names {
                let region = self[name]
                guard try await region.outboxDepth() == 0 else { return false }
                prints.insert(try await region.fingerprint(table))
            }
            return prints.count == 1
        }
    }
}

/// One region's database and a dedicated worker thread for the test's queries (blocking libpq calls stay off
/// the cooperative pool).
final class TestRegion: Sendable {
    let name: String
    let database: TestDatabase
    private let worker: PostgresWorker

    init(name: String, database: TestDatabase) {
        self.name = name
        self.database = database
        worker = PostgresWorker(url: database.url, applicationName: "starling-tests", threadName: "test-\(name)")
    }

    func shutdown() async { await worker.shutdown() }

    func sql<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await worker.withConnection(body)
    }

    /// Runs one statement (an application's write: captured by the triggers once the agent installed them).
    func execute(_ statement: String, _ parameters: [PostgresValue] = []) async throws {
        try await sql { connection in _ = try connection.query(statement, parameters) }
    }

    /// The first column of the first row as an integer.
    func int(_ query: String) async throws -> Int64 {
        try await sql { try $0.query(query)[0].int64(0) }
    }

    /// The first column of the first row as text (nil for NULL).
    func text(_ query: String) async throws -> String? {
        try await sql { try $0.query(query)[0].optionalString(0) }
    }

    func outboxDepth() async throws -> Int64 { try await int("SELECT count(*) FROM starling.outbox") }

    /// md5 of every row's text form in primary-key (`id`) order: equal fingerprints mean identical contents.
    func fingerprint(_ table: String) async throws -> String {
        try await text(
            "SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY id)), 'empty') FROM \(table) t") ?? ""
    }
}

/// A real ``Agent`` on an ``HTTPHubLink``, running on a task this object owns until ``stop()``.
private enum Environment {
    static let agentLogLevel: Logger.Level =
        ProcessInfo.processInfo.environment["STARLING_TEST_AGENT_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
}

final class RunningAgent: Sendable {
    let agent: Agent
    let link: HTTPHubLink
    private let task: Task<AgentError?, Never>
    /// Set by the first ``stop()``: the link's clients must be shut down once.
    private let isStopped = Mutex(false)

    init(configuration: AgentConfiguration, log: RecordedLog? = nil) throws {
        var logger = Logger(label: "test.agent")
        // STARLING_TEST_AGENT_LOG=debug shows the agents' logs (stderr) when a test needs looking into.
        logger.logLevel = Environment.agentLogLevel
        if let log { logger = log.logger(label: "test.agent.\(configuration.region)") }
        let link = try HTTPHubLink(configuration: configuration)
        let agent = Agent(
            configuration: configuration, hub: link, schema: AgentTestSupport.schema(), logger: logger)
        self.agent = agent
        self.link = link
        task = Task {
            do throws(AgentError) {
                try await agent.run()
                return nil
            } catch {
                return error
            }
        }
    }

    var progress: Agent.Progress { agent.progress }

    /// Waits for `run()` to return by itself (an agent refusing to start) and rethrows what it threw.
    func waitForExit() async throws {
        if let failure = await task.value { throw failure }
    }

    /// Stops the agent, waits for `run()` to return, closes the link; rethrows what `run()` threw. Idempotent.
    func stop() async throws {
        agent.stop()
        let failure = await task.value
        let wasStopped = isStopped.withLock { stopped in
            defer { stopped = true }
            return stopped
        }
        if !wasStopped { link.shutdown() }
        if let failure { throw failure }
    }
}
