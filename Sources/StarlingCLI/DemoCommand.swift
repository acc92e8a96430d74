import ArgumentParser
import Foundation
import Logging
import StarlingAgent
import StarlingHub
import StarlingHTTP2
import StarlingIO
import StarlingPostgres
import StarlingTLS
import Synchronization

/// `starling demo`: the embedded default. A throwaway Postgres, a hub over TLS and N regional agents in this
/// process, a shop workload with conflicts in every region, a live view, and a convergence check at the end.
/// Ctrl-C stops and removes everything it started.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Run a local hub and eight regions with a conflicting workload.")

    @Option(help: "Number of regions (2-8).") var regions = 8
    @Option(help: "Seconds of workload.") var duration = 30
    @Option(help: "Writes per second over all regions.") var rate = 200
    @Option(help: "Workload seed (printed; reuse it to repeat a run).") var seed: UInt64?
    @Flag(help: "Keep running after the summary (the dashboard stays up) until Ctrl-C.") var stay = false

    static let regionNames = ["us-east", "us-west", "eu-west", "eu-central", "ap-south", "ap-northeast", "sa-east",
                              "af-south"]

    func validate() throws {
        guard (2...8).contains(regions) else { throw ValidationError("--regions must be 2 to 8") }
        guard duration > 0 && duration <= 3600 else { throw ValidationError("--duration must be 1 to 3600 seconds") }
        guard rate > 0 && rate <= 5000 else { throw ValidationError("--rate must be 1 to 5000 writes/s") }
    }

    func run() async throws {
        let seed = self.seed ?? UInt64.random(in: 1...UInt64(UInt32.max))
        let view = DemoView()
        view.say("Starling demo: \(regions) regions, \(duration) s at \(rate) writes/s, seed \(seed)")
        view.say("starting a throwaway PostgreSQL…")
        let cluster = try DemoCluster.start()
        let run = DemoRun(cluster: cluster, regionNames: Array(Self.regionNames.prefix(regions)), seed: seed,
                          view: view)
        let stopper = try ShutdownOnSignal.install { await run.interrupt() }
        defer {
            stopper.close()
            cluster.remove()
        }
        let outcome = await run.execute(duration: duration, rate: rate, stay: stay)
        if case .failed(let message) = outcome {
            view.say("demo failed: \(message)")
            view.say("logs: \(cluster.directory)/demo.log (kept until exit)")
            throw ExitCode(1)
        }
        if case .diverged = outcome { throw ExitCode(2) }
    }
}

/// One demo run: databases, certificates, the hub, the agents, the workload and the final check.
final class DemoRun: Sendable {
    enum Outcome: Sendable { case converged, diverged, interrupted, failed(String) }

    private let cluster: DemoCluster
    private let regionNames: [String]
    private let seed: UInt64
    private let view: DemoView
    private let interrupted = Mutex<Bool>(false)
    private let running = Mutex<(hub: Hub?, agents: [Agent], links: [HTTPHubLink])>((nil, [], []))

    init(cluster: DemoCluster, regionNames: [String], seed: UInt64, view: DemoView) {
        self.cluster = cluster
        self.regionNames = regionNames
        self.seed = seed
        self.view = view
    }

    var isInterrupted: Bool { interrupted.withLock { $0 } }

    /// Ctrl-C: stop the workload and the agents; `execute` then cleans up and returns.
    func interrupt() async {
        interrupted.withLock { $0 = true }
        view.say("\ninterrupted: stopping and removing everything…")
        let agents = running.withLock { $0.agents }
        for agent in agents { agent.stop() }
    }

    func execute(duration: Int, rate: Int, stay: Bool) async -> Outcome {
        let logSink = FileLogHandler.Sink(path: cluster.directory + "/demo.log")
        LoggingSystem.bootstrap { FileLogHandler(label: $0, sink: logSink) }
        let logger = Logger(label: "starling.demo")
        do {
            try await createDatabases()
            let certificates = try makeCertificates()
            let adminToken = TLSDigest.hex(try TLSRandom.bytes(count: 16))
            let tokens = try regionNames.map { _ in TLSDigest.hex(try TLSRandom.bytes(count: 16)) }
            let hub = try await startHub(certificates: certificates, adminToken: adminToken, tokens: tokens, logger: logger)
            defer { Task { await hub.shutdown() } }
            guard let port = hub.localAddress?.port else { return .failed("the hub has no address") }
            let hubURL = "https://127.0.0.1:\(port)"
            view.say("hub listening on \(hubURL) (TLS, HTTP/2)")
            view.say("dashboard:   \(hubURL)/#token=\(adminToken)")
            view.say("admin token: \(adminToken)   CA: \(certificates.ca)")
            let workloads = regionNames.enumerated().map { index, name in
                DemoWorkload(region: name, regionIndex: index, url: cluster.url(database: Self.database(name)), seed: seed)
            }
            let agents = try startAgents(hubURL: hubURL, ca: certificates.ca, tokens: tokens, logger: logger)
            running.withLock { $0.hub = hub; $0.agents = agents }
            let agentTasks = agents.map { agent in Task { try? await agent.run() } }
            defer {
                for agent in agents { agent.stop() }
            }
            let monitor = DemoMonitor(cluster: cluster, regionNames: regionNames, workloads: workloads, agents: agents)
            try await seedAndWait(workloads: workloads, monitor: monitor)
            if isInterrupted { return .interrupted }
            await drive(workloads: workloads, monitor: monitor, duration: duration, rate: rate)
            if isInterrupted { return .interrupted }
            let converged = await waitForConvergence(monitor: monitor)
            await monitor.printSummary(view: view, converged: converged, hubURL: hubURL)
            if stay && converged && !isInterrupted {
                view.say("staying up: the dashboard is at \(hubURL)/#token=\(adminToken) — Ctrl-C to stop")
                while !isInterrupted { try? await Task.sleep(for: .milliseconds(200)) }
            }
            for agent in agents { agent.stop() }
            for task in agentTasks { await task.value }
            // Close the agents' HTTP/2 clients (joining their threads) before the process can exit.
            for link in running.withLock({ $0.links }) { link.shutdown() }
            for workload in workloads { await workload.shutdown() }
            await monitor.shutdown()
            return converged ? .converged : (isInterrupted ? .interrupted : .diverged)
        } catch {
            return .failed("\(error)")
        }
    }

    static func database(_ region: String) -> String { "region_" + region.replacingOccurrences(of: "-", with: "_") }

    private func createDatabases() async throws {
        let admin = PostgresWorker(url: cluster.adminURL, applicationName: "starling-demo")
        defer { Task { await admin.shutdown() } }
        let names = ["starling_hub"] + regionNames.map(Self.database)
        try await admin.withConnection { connection in
            for name in names { try connection.execute("CREATE DATABASE \(try PostgresIdentifier.quoteName(name))") }
        }
        for region in regionNames {
            let worker = PostgresWorker(url: cluster.url(database: Self.database(region)), applicationName: "starling-demo")
            try await worker.withConnection { connection in _ = try connection.executeScript(DemoSchema.ddl) }
            await worker.shutdown()
        }
        view.say("created starling_hub and \(regionNames.count) regional databases with the shop schema")
    }

    private func makeCertificates() throws -> (ca: String, cert: String, key: String) {
        let directory = cluster.directory + "/certs"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let openssl = "/usr/bin/openssl"
        func run(_ arguments: [String]) throws {
            let result = try DemoCluster.run(openssl, arguments)
            guard result.status == 0 else { throw DemoCluster.Failure(message: "openssl failed: \(result.output)") }
        }
        try run(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                 "-subj", "/CN=Starling demo CA", "-keyout", directory + "/ca.key", "-out", directory + "/ca.crt"])
        try run(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
                 "-keyout", directory + "/hub.key", "-out", directory + "/hub.csr"])
        let extensions = directory + "/san.ext"
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: extensions, atomically: true, encoding: .utf8)
        try run(["x509", "-req", "-in", directory + "/hub.csr", "-CA", directory + "/ca.crt", "-CAkey",
                 directory + "/ca.key", "-CAcreateserial", "-days", "2", "-extfile", extensions,
                 "-out", directory + "/hub.crt"])
        return (directory + "/ca.crt", directory + "/hub.crt", directory + "/hub.key")
    }

    private func startHub(certificates: (ca: String, cert: String, key: String), adminToken: String, tokens: [String],
                          logger: Logger) async throws -> Hub {
        let regions = regionNames.enumerated().map { index, name in
            HubConfiguration.Region(name: name, token: tokens[index], priority: 100 - index * 10)
        }
        let tables = DemoSchema.tables.map { HubConfiguration.Table(name: $0.name, policy: $0.policy, manualProvisional: $0.provisional) }
        let configuration = HubConfiguration(
            listen: "127.0.0.1:0", tls: .init(cert: certificates.cert, key: certificates.key),
            database: cluster.url(database: "starling_hub"), adminToken: adminToken, regions: regions, tables: tables)
        let hub = try Hub(configuration: configuration, logger: logger)
        try await hub.start()
        Task { await hub.run() }
        return hub
    }

    private func startAgents(hubURL: String, ca: String, tokens: [String], logger: Logger) throws -> [Agent] {
        let schema = AgentSchema()
        return try regionNames.enumerated().map { index, name in
            var tuning = AgentConfiguration.Tuning()
            tuning.pull.waitMs = 100
            let configuration = AgentConfiguration(region: name, hub: hubURL, token: tokens[index], ca: ca,
                                                   database: cluster.url(database: Self.database(name)), tuning: tuning)
            let link = try HTTPHubLink(configuration: configuration)
            running.withLock { $0.links.append(link) }
            return Agent(
                configuration: configuration, hub: link, schema: schema, logger: logger,
                clockOffset: AgentCommand.testClockOffset())
        }
    }

    /// Seeds the shop in the first region and waits until every region has it.
    private func seedAndWait(workloads: [DemoWorkload], monitor: DemoMonitor) async throws {
        try await monitor.waitForInstall(isInterrupted: { self.isInterrupted })
        try await workloads[0].withConnection { connection in _ = try connection.executeScript(DemoSchema.seed) }
        view.say("seeded 200 products, 100 customers and 10 orders in \(regionNames[0]); replicating…")
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(120)
        while clock.now < deadline && !isInterrupted {
            if await monitor.rowCounts(table: "public.products").allSatisfy({ $0 == 200 }) { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        if !isInterrupted { throw DemoCluster.Failure(message: "the seed did not reach every region within 120 s") }
    }

    /// Runs the workload for `duration` seconds at `rate` writes/s, redrawing the live view twice a second.
    private func drive(workloads: [DemoWorkload], monitor: DemoMonitor, duration: Int, rate: Int) async {
        let perRegion = Duration.seconds(Double(workloads.count) / Double(rate))
        let clock = ContinuousClock()
        let start = clock.now
        let end = start + .seconds(duration)
        await withTaskGroup(of: Void.self) { group in
            for workload in workloads {
                group.addTask {
                    await workload.collide()
                    var next = clock.now
                    while clock.now < end && !self.isInterrupted {
                        await workload.writeOnce()
                        next += perRegion
                        if next > clock.now { try? await Task.sleep(until: next, clock: clock) }
                    }
                }
            }
            group.addTask {
                while clock.now < end && !self.isInterrupted {
                    let elapsed = (clock.now - start) / .seconds(duration)
                    await monitor.draw(view: self.view, phase: "workload", fraction: elapsed)
                    try? await Task.sleep(for: .milliseconds(500))
                }
            }
            await group.waitForAll()
        }
    }

    /// After the workload: waits until every region holds the same data (at most 120 s).
    private func waitForConvergence(monitor: DemoMonitor) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(120)
        while clock.now < deadline && !isInterrupted {
            await monitor.draw(view: view, phase: "draining", fraction: 1)
            if await monitor.isConverged() {
                await monitor.draw(view: view, phase: "converged", fraction: 1)
                return true
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
        return false
    }
}
