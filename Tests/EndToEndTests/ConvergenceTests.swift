import Foundation
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Hub and agents as real `starling` processes, real Postgres: the regions converge to the hub's heads and every
/// oracle holds (`ConvergenceOracle`: heads, replay, per-write accounting, no double apply, lower bounds).
@Suite(.serialized, .timeLimit(.minutes(4)))
struct ConvergenceTests {
    /// A seed from the environment (STARLING_E2E_SEED, to replay a failure) or a fresh one, printed.
    static func seed() -> UInt64 {
        if let text = ProcessInfo.processInfo.environment["STARLING_E2E_SEED"], let seed = UInt64(text) { return seed }
        return UInt64.random(in: 1...UInt64.max)
    }

    /// Runs `transactions` per region of the workload, waits for convergence and runs every oracle.
    private func converge(regions: Int, transactions: Int, keys: Int, bounds: ConvergenceOracle.Bounds) async throws {
        let seed = Self.seed()
        print("e2e: \(regions) regions, seed \(seed) (replay with STARLING_E2E_SEED=\(seed))")
        try await Deployment.with(regions: regions, tables: Workload.tables, ddl: Workload.ddl) { deployment in
            let workload = Workload(seed: seed, transactions: transactions, keys: keys)
            let run = try await deployment.runWorkload(workload)
            let problems = try await deployment.convergeAndCheck(run, bounds: bounds, seed: seed)
            #expect(problems.isEmpty, "seed \(seed) (replay with STARLING_E2E_SEED=\(seed)): \(problems.prefix(20))")
            let conflicts = try await deployment.conflicts()
            print(
                "e2e: seed \(seed): \(run.writes.count) writes, \(conflicts.count) conflicts, failures \(run.failures)")
        }
    }

    /// Two regions writing the same keys under every policy end with identical tables, nothing lost.
    @Test func twoRegionsConvergeUnderEveryPolicy() async throws {
        try await converge(
            regions: 2, transactions: 150, keys: 8,
            bounds: ConvergenceOracle.Bounds(minWritesPerRegion: 37, minConflicts: 10))
    }

    /// Eight regions writing the same keys under every policy end with identical tables, nothing lost.
    @Test func eightRegionsConvergeUnderEveryPolicy() async throws {
        try await converge(
            regions: 8, transactions: 40, keys: 8,
            bounds: ConvergenceOracle.Bounds(minWritesPerRegion: 10, minConflicts: 20))
    }

    /// An agent killed with SIGKILL mid-batch resumes exactly once; a hub down while regions keep writing
    /// drains on return; the regions converge and nothing is lost or doubled.
    @Test func agentKilledMidBatchAndHubOutageConverge() async throws {
        let seed = Self.seed()
        print("e2e: kill/outage, seed \(seed) (replay with STARLING_E2E_SEED=\(seed))")
        try await Deployment.with(regions: 3, tables: Workload.tables, ddl: Workload.ddl) { deployment in
            // A big origin transaction in r2 (under the hub's 5000-change push limit, over the 500-entry pull page), so r1 is applying a large batch when it dies.
            try await deployment.sql("r2") { connection in
                try connection.execute(
                    "INSERT INTO public.t_lww (k, v, note) SELECT 1000 + g, 'bulk:' || g, 'n-bulk' "
                        + "FROM generate_series(1, 4000) g")
            }
            try await waitUntil("r1 is inside the apply transaction of the bulk batch") {
                try await deployment.sql("r1") { connection in
                    try connection.query(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            + "AND application_name = 'starling-agent-r1' AND backend_xid IS NOT NULL"
                    )[0].int64(0) > 0
                }
            }
            try await deployment.killAgent("r1")
            var run = WorkloadRun()
            run.writes = (1...4000).map {
                Workload.Write(region: "r2", table: "public.t_lww", key: 1000 + $0, op: "insert", token: "bulk:\($0)", column: "v")
            }
            run.add(try await deployment.runWorkload(Workload(seed: seed, transactions: 40, keys: 6)))
            try await deployment.startAgent("r1")
            try await deployment.waitForConvergence()

            // Hub outage: the regions keep writing, their outboxes grow, then everything drains.
            try await deployment.killHub()
            let outage = ContinuousClock.now
            run.add(
                try await deployment.runWorkload(
                    Workload(seed: seed &+ 1, transactions: 40, keys: 6), counterStart: 100_000))
            // Trigger capture keeps them in the outbox, WAL capture in the slot (its confirmed position stays behind).
            let depth = try await deployment.sql("r1") {
                try $0.query(
                    """
                    SELECT (SELECT count(*) FROM starling.outbox)
                         + (SELECT count(*) FROM pg_replication_slots
                            WHERE slot_name LIKE 'starling%' AND confirmed_flush_lsn < pg_current_wal_lsn())
                    """)[0].int64(0)
            }
            #expect(depth > 0, "r1's outbox or slot holds its writes while the hub is down")
            try await waitUntil("the hub has been down for 6 s", timeout: .seconds(20)) {
                ContinuousClock.now - outage >= .seconds(6)
            }
            try await deployment.startHub()
            let problems = try await deployment.convergeAndCheck(
                run, bounds: ConvergenceOracle.Bounds(minWritesPerRegion: 10, minConflicts: 5), seed: seed)
            #expect(problems.isEmpty, "seed \(seed) (replay with STARLING_E2E_SEED=\(seed)): \(problems.prefix(20))")
            let bulk = try await deployment.sql("r1") {
                try $0.query("SELECT count(*) FROM public.t_lww WHERE k > 1000")[0].int64(0)
            }
            #expect(bulk == 4000)
        }
    }
}
