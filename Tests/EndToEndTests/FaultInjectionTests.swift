import Foundation
import StarlingTestSupport
import Synchronization
import Testing

/// Eight regions as real processes under a seeded fault schedule (kill -9 of agents and the hub, SIGSTOP
/// partitions, Postgres restarts of a region and of the hub, a proxy that cuts, delays, truncates and refuses,
/// one region's clock minutes ahead) while a seeded workload writes conflicting rows everywhere. After the
/// faults: every region converges to the hub's heads and every oracle holds (`ConvergenceOracle`: heads, replay of
/// the log through the resolver, each committed write decided exactly once, nothing applied twice, lower bounds on
/// work), every scheduled fault demonstrably fired, and `/v1/status` shows every cursor at the head.
///
/// Seeds: `STARLING_FAULT_SEED` replays one; `STARLING_FAULT_SEED_LIST` (comma-separated; `ops/test` sets three
/// fixed ones) runs those; otherwise `STARLING_FAULT_SEEDS` fresh ones (default 2).
/// `ops/soak` runs this suite seed after seed for a given time.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct FaultInjectionTests {
    static let seeds: [UInt64] = {
        let environment = ProcessInfo.processInfo.environment
        if let text = environment["STARLING_FAULT_SEED"], let seed = UInt64(text) { return [seed] }
        if let list = environment["STARLING_FAULT_SEED_LIST"] {
            let seeds = list.split(separator: ",").compactMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
            if !seeds.isEmpty { return seeds }
        }
        let count = environment["STARLING_FAULT_SEEDS"].flatMap { Int($0) } ?? 2
        return (0..<max(1, count)).map { _ in UInt64.random(in: 1...UInt64(Int64.max)) }
    }()

    /// One seeded run of faults and workload over eight regions ends converged with nothing lost or doubled.
    @Test(arguments: seeds)
    func eightRegionsSurviveSeededFaults(seed: UInt64) async throws {
        let regions = (1...8).map { "r\($0)" }
        let steps = ProcessInfo.processInfo.environment["STARLING_FAULT_STEPS"].flatMap { Int($0) } ?? FaultSchedule.defaultStepCount
        let schedule = FaultSchedule.generate(seed: seed, regions: regions, stepCount: steps)
        print("faults: \(schedule)\nfaults: replay with \(schedule.replayCommand)")
        let hubCluster = try await TestPostgresCluster.start(name: "hub")
        let regionCluster: TestPostgresCluster
        do { regionCluster = try await TestPostgresCluster.start(name: schedule.restartableRegion) } catch {
            await hubCluster.destroy()
            throw error
        }
        let problems: [String]
        do {
            problems = try await Deployment.with(
                regions: regions.count, tables: Workload.tables, ddl: Workload.ddl, startAgents: false,
                clusters: ["hub": hubCluster.url(), schedule.restartableRegion: regionCluster.url()]
            ) { deployment in
                let run = FaultRun(
                    schedule: schedule, deployment: deployment, hubCluster: hubCluster, regionCluster: regionCluster)
                return try await run.perform()
            }
        } catch {
            print("faults: FAILED \(schedule)\nfaults: \(error)\nfaults: replay with \(schedule.replayCommand)")
            print("---- hub Postgres log ----\n\(hubCluster.log.suffix(3000))")
            await hubCluster.destroy()
            await regionCluster.destroy()
            throw error
        }
        await hubCluster.destroy()
        await regionCluster.destroy()
        if !problems.isEmpty {
            print("faults: FAILED \(schedule)\nfaults: replay with \(schedule.replayCommand)")
        }
        #expect(problems.isEmpty, "seed \(seed) (replay: \(schedule.replayCommand)): \(problems.prefix(20))")
    }
}

/// One run: the workload rounds in every region and the schedule's faults at the same time, then the checks.
/// Mutable state is only touched by the test task, except `control` (a Mutex shared with the workload).
final class FaultRun: @unchecked Sendable {
    /// Shared between the fault executor and the workload loops.
    struct Control: Sendable {
        var isFinished = false
        /// The restartable region's workload waits while this is set (its Postgres is going down).
        var isRegionPaused = false
        var isRegionBusy = false
        var run = WorkloadRun()
    }

    let schedule: FaultSchedule
    let deployment: Deployment
    let hubCluster: TestPostgresCluster
    let regionCluster: TestPostgresCluster
    let control = Mutex(Control())
    private var proxy: FaultProxy?
    /// Processes the schedule killed on purpose (anything else that exits is a crash).
    private var log: [String] = []
    /// Steps whose fault left no trace (the process was not running, the proxy saw nothing): a problem.
    private var misfires: [String] = []

    init(schedule: FaultSchedule, deployment: Deployment, hubCluster: TestPostgresCluster,
         regionCluster: TestPostgresCluster) {
        self.schedule = schedule
        self.deployment = deployment
        self.hubCluster = hubCluster
        self.regionCluster = regionCluster
    }

    /// Starts the proxy and the agents, runs workload and faults, heals, and returns every problem found.
    func perform() async throws -> [String] {
        let proxy = try FaultProxy(upstreamPort: deployment.hubPort)
        self.proxy = proxy
        do {
            let problems = try await runAndCheck(proxy: proxy)
            await proxy.stop()
            return problems
        } catch {
            await proxy.stop()
            throw error
        }
    }

    private func runAndCheck(proxy: FaultProxy) async throws -> [String] {
        deployment.agentHubPort = proxy.port
        deployment.agentEnvironment[schedule.skewedRegion] = [
            "STARLING_CLOCK_OFFSET_MS": String(schedule.skew.components.seconds * 1000)
        ]
        for region in deployment.regions { try await deployment.startAgent(region) }
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, region) in deployment.regions.enumerated() {
                group.addTask { try await self.workload(region: region, index: index) }
            }
            do {
                try await executeSchedule(started: started)
            } catch {
                control.withLock { $0.isFinished = true }
                try await group.waitForAll()
                throw error
            }
            control.withLock { $0.isFinished = true }
            try await group.waitForAll()
        }
        print("faults: seed \(schedule.seed): schedule done after \(ContinuousClock.now - started); \(log.joined(separator: "; "))")
        return try await check()
    }

    // MARK: - Workload

    /// Rounds of five transactions per region until the schedule is done (at least three rounds).
    private func workload(region: String, index: Int) async throws {
        let isRestartable = region == schedule.restartableRegion
        var round = 0
        while round < 3 || !control.withLock({ $0.isFinished }) {
            if isRestartable {
                while !control.withLock({ state in
                    if state.isRegionPaused { return false }
                    state.isRegionBusy = true
                    return true
                }) { try await Task.sleep(for: .milliseconds(20)) }
            }
            let workload = Workload(seed: schedule.seed &+ UInt64(round) &* 7919, transactions: 5, keys: 8)
            let start = (round + 1) * 10_000
            do {
                let outcome = try await deployment.sql(region) { connection in
                    workload.run(region: region, index: index, connection: connection, counterStart: start)
                }
                control.withLock { $0.run.add(outcome, region: region) }
            } catch {
                // No connection at all (its Postgres is restarting): the whole round counts as failed.
                let failures = Array(repeating: "round \(round): \(error)", count: workload.transactions)
                let outcome = Workload.Outcome(writes: [], attempts: workload.transactions, failures: failures)
                control.withLock { $0.run.add(outcome, region: region) }
            }
            if isRestartable { control.withLock { $0.isRegionBusy = false } }
            round += 1
        }
    }

    // MARK: - Faults

    /// Runs every step in order, each at its time or after the previous one, whichever is later.
    private func executeSchedule(started: ContinuousClock.Instant) async throws {
        for step in schedule.steps {
            let due = started + step.at
            if ContinuousClock.now < due { try await Task.sleep(until: due, clock: .continuous) }
            log.append("\(step.fault) at \(ContinuousClock.now - started)")
            if let misfire = try await inject(step.fault) { misfires.append("\(step.fault): \(misfire)") }
        }
    }

    /// Injects `fault` and ends it; returns why it did not demonstrably fire (nil: it did). Evidence: a killed
    /// process was running and then exited; a stopped agent was seen in state T; a restarted Postgres has a new
    /// postmaster start time; the proxy's counters moved (a cut, a truncation or a refusal; bytes under delay).
    private func inject(_ fault: FaultSchedule.Fault) async throws -> String? {
        guard let proxy else { return "no proxy" }
        let before = proxy.counters
        switch fault {
        case .killAgent(let region, let down):
            let wasRunning = deployment.agents[region]?.isRunning ?? false
            try await deployment.killAgent(region)
            let isGone = !(deployment.agents[region]?.isRunning ?? true)
            try await Task.sleep(for: down)  // the outage itself, not synchronisation
            try await deployment.startAgent(region)
            return wasRunning && isGone ? nil : "agent \(region) running before: \(wasRunning), gone after: \(isGone)"
        case .killHub(let down):
            let wasRunning = deployment.hub?.isRunning ?? false
            try await deployment.killHub()
            let isGone = !(deployment.hub?.isRunning ?? true)
            try await Task.sleep(for: down)
            try await deployment.startHub()
            return wasRunning && isGone ? nil : "hub running before: \(wasRunning), gone after: \(isGone)"
        case .pauseAgent(let region, let duration):
            deployment.agents[region]?.signal(SIGSTOP)
            let stopped = try? await waitUntil("agent \(region) is stopped", timeout: .seconds(5)) {
                Self.processState(deployment.agents[region]?.pid) == "T"
            }
            try await Task.sleep(for: duration)
            deployment.agents[region]?.signal(SIGCONT)
            return stopped == nil ? "agent \(region) never showed state T" : nil
        case .restartRegionPostgres(let down):
            let region = schedule.restartableRegion
            control.withLock { $0.isRegionPaused = true }
            try await waitUntil("the workload of \(region) is between rounds", timeout: .seconds(60)) {
                !control.withLock { $0.isRegionBusy }
            }
            let startedBefore = try await postmasterStart(region)
            try await regionCluster.stopServer()
            try await Task.sleep(for: down)
            try await regionCluster.startServer()
            control.withLock { $0.isRegionPaused = false }
            let startedAfter = try await postmasterStart(region)
            return startedAfter != startedBefore ? nil : "\(region)'s Postgres kept start time \(startedBefore)"
        case .restartHubPostgres(let down):
            let startedBefore = try await postmasterStart("hub")
            try await hubCluster.stopServer()
            try await Task.sleep(for: down)
            try await hubCluster.startServer()
            let startedAfter = try await postmasterStart("hub")
            return startedAfter != startedBefore ? nil : "the hub's Postgres kept start time \(startedBefore)"
        case .cutConnections:
            // Right after a refusal window the agents may still be backing off with no connection open, and a
            // cut would hit nothing: wait until traffic flows again, so the cut has something to cut.
            let flowing = proxy.counters.bytesForwarded
            try? await waitUntil("traffic flows through the proxy", timeout: .seconds(10)) {
                proxy.counters.bytesForwarded > flowing
            }
            proxy.cutAll()
            // A connection's pump thread notices the cut at its next poll (within its poll timeout).
            let cut: Void? = try? await waitUntil("the proxy cut a connection", timeout: .seconds(5)) {
                proxy.counters.cut > before.cut
            }
            return cut == nil ? "no connection was cut" : nil
        case .delay(let delay, let duration):
            proxy.faults.delay = delay
            try await Task.sleep(for: duration)
            proxy.heal()
            return proxy.counters.bytesForwarded > before.bytesForwarded ? nil : "no byte passed the delayed proxy"
        case .truncate(let bytes, let duration):
            proxy.faults.truncateAfterBytes = bytes
            proxy.cutAll()
            try await Task.sleep(for: duration)
            proxy.heal()
            let after = proxy.counters
            return after.truncated > before.truncated || after.cut > before.cut ? nil : "nothing cut or truncated"
        case .refuse(let duration):
            proxy.faults.isRefusing = true
            proxy.cutAll()
            try await Task.sleep(for: duration)
            proxy.heal()
            let after = proxy.counters
            return after.refused > before.refused || after.cut > before.cut ? nil : "nothing cut or refused"
        }
    }

    /// The state letter of `pid` from /proc (R, S, T, ...); nil when unreadable.
    private static func processState(_ pid: Int32?) -> String? {
        guard let pid, let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        return stat[stat.index(after: close)...].split(separator: " ").first.map(String.init)
    }

    /// `pg_postmaster_start_time()` of `target`'s Postgres, retried while it is coming up.
    private func postmasterStart(_ target: String) async throws -> String {
        let result = Mutex("")
        try await waitUntil("\(target)'s Postgres answers", timeout: .seconds(60), every: .milliseconds(100)) {
            let text = try? await deployment.sql(target) {
                try $0.query("SELECT pg_postmaster_start_time()::text")[0].string(0)
            }
            guard let text else { return false }
            result.withLock { $0 = text }
            return true
        }
        return result.withLock { $0 }
    }

    // MARK: - Checks

    /// Convergence, the audit, HLC order per region, the skewed clock in effect, and `/v1/status` at the head.
    private func check() async throws -> [String] {
        var problems: [String] = []
        if let hub = deployment.hub, !hub.isRunning { problems.append("the hub exited by itself:\n\(hub.output.suffix(3000))") }
        for (region, agent) in deployment.agents.sorted(by: { $0.key < $1.key }) where !agent.isRunning {
            problems.append("agent \(region) exited by itself:\n\(agent.output.suffix(3000))")
        }
        guard problems.isEmpty else { return problems }
        let run = control.withLock { $0.run }
        print("faults: seed \(schedule.seed): failed workload transactions per region \(run.failures)")
        problems += misfires.map { "(e) fault did not fire: \($0)" }
        let healed = ContinuousClock.now
        do {
            try await deployment.waitForConvergence(timeout: .seconds(120))
        } catch {
            let report = (try? await deployment.divergenceReport()) ?? ["(no divergence report)"]
            print("faults: seed \(schedule.seed): \(error)\n" + report.joined(separator: "\n"))
            throw error
        }
        print("faults: seed \(schedule.seed): converged \(ContinuousClock.now - healed) after the last fault")
        var oracle = ConvergenceOracle(deployment: deployment)
        if schedule.steps.contains(where: { if case .restartRegionPostgres = $0.fault { true } else { false } }) {
            oracle.immediatelyStopped = [schedule.restartableRegion]
        }
        problems += try await oracle.check(run, bounds: Self.bounds)
        problems += try await hlcOrderProblems()
        problems += try await statusProblems()
        let conflicts = try await deployment.conflicts()
        print(
            "faults: seed \(schedule.seed): \(run.writes.count) writes, \(conflicts.count) conflicts, "
                + "proxy \(proxy.map { "\($0.counters)" } ?? "-")")
        return problems
    }

    /// At least three rounds of five transactions run in every region; a region whose Postgres restarts or whose
    /// agent is stopped loses some (its transactions fail or deadlock more), hence the generous failure share.
    static let bounds = ConvergenceOracle.Bounds(minWritesPerRegion: 8, minConflicts: 5, maxFailedShare: 0.5)

    /// Every region's accepted changes carry strictly increasing HLCs in log order (kill -9, restarts, a skewed clock
    /// included), and the skewed region's stamps really run ahead of the wall clock.
    private func hlcOrderProblems() async throws -> [String] {
        let skewedRegion = schedule.skewedRegion
        let (disorder, skewedMax, now) = try await deployment.sql("hub") { connection in
            let disorder = try connection.query(
                """
                SELECT seq, origin, kind, change_id, hlc, previous, previous_seq, previous_kind FROM (
                    SELECT seq, origin, kind, change_id, hlc, lag(hlc) OVER w AS previous, lag(seq) OVER w AS previous_seq,
                           lag(kind) OVER w AS previous_kind
                    FROM starling_hub.log WHERE kind = 'change' WINDOW w AS (PARTITION BY origin ORDER BY seq)
                ) x WHERE hlc <= previous ORDER BY seq
                """
            ).map { row in (0..<8).map { (try? row.string($0)) ?? "null" }.joined(separator: " ") }
            let row = try connection.query(
                "SELECT coalesce(max(hlc), 0), (extract(epoch FROM clock_timestamp()) * 1000000)::bigint "
                    + "FROM starling_hub.log WHERE origin = $1 AND kind = 'change'", [.text(skewedRegion)])[0]
            return (disorder, try row.int64(0), try row.int64(1))
        }
        var problems: [String] = []
        if !disorder.isEmpty {
            problems.append(
                "\(disorder.count) log entries have an HLC not above their region's previous one "
                    + "(seq origin kind id hlc previous previous_seq previous_kind): \(disorder.prefix(5))")
        }
        let skewMicros = schedule.skew.components.seconds * 1_000_000
        if skewedMax > 0 && skewedMax < now + skewMicros / 2 {
            problems.append("\(skewedRegion)'s HLC \(skewedMax) does not run ahead of now \(now) by ~\(schedule.skew)")
        }
        return problems
    }

    /// `/v1/status` reaches every cursor == head (polled: cursors are reported by the agents' pulls).
    private func statusProblems() async throws -> [String] {
        var last = ""
        do {
            try await waitUntil("/v1/status shows every cursor at the head", timeout: .seconds(30)) {
                let (status, json) = try await deployment.admin("GET", "/v1/status")
                guard status == 200, let object = json as? [String: Any], let head = object["head"] as? Int,
                    let regions = object["regions"] as? [[String: Any]]
                else {
                    last = "status \(status)"
                    return false
                }
                let behind = regions.filter { ($0["cursor"] as? Int) != head }.map { "\($0["name"] ?? "?")=\($0["cursor"] ?? "?")" }
                last = "head \(head), \(regions.count) regions, behind: \(behind)"
                return regions.count == deployment.regions.count && behind.isEmpty
            }
            return []
        } catch {
            return ["/v1/status: \(last)"]
        }
    }
}
