import Foundation
import StarlingPostgres

extension Deployment {
    /// Installs the oracles' hooks in `region` (`Fixtures/oracle_hooks.sql`, then the row trigger on every synced
    /// table). Idempotent; called after each agent start, once the agent has installed `starling`.
    func installOracleHooks(_ region: String) async throws {
        let script = try String(contentsOfFile: Self.fixture("oracle_hooks.sql"), encoding: .utf8)
        let tables = tables.map(\.name)
        try await sql(region) { connection in
            // Installed once: re-creating a trigger would lock tables the running workload is writing.
            let installed = try connection.query(
                "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'e2e_oracle%' AND NOT tgisinternal")[0].int64(0)
            guard installed < 3 + tables.count else { return }
            try connection.executeScript(script)
            for table in tables {
                let trigger = "e2e_oracle_rows"
                try connection.executeScript(
                    "DROP TRIGGER IF EXISTS \(trigger) ON \(table);\n"
                        + "CREATE TRIGGER \(trigger) AFTER INSERT OR UPDATE OR DELETE ON \(table) "
                        + "FOR EACH ROW EXECUTE FUNCTION e2e_oracle.record_row();")
            }
        }
    }

    /// Waits for convergence, then runs every oracle (`ConvergenceOracle`); returns the problems, each printed with
    /// `seed` so a failing run can be replayed.
    func convergeAndCheck(_ run: WorkloadRun?, bounds: ConvergenceOracle.Bounds?, seed: UInt64) async throws -> [String]
    {
        let oracle = ConvergenceOracle(deployment: self)
        do {
            try await waitForConvergence()
        } catch {
            // What diverged, and what every oracle says about it (with the history of the first keys).
            print("oracle: seed \(seed): \(error)")
            print(((try? await divergenceReport()) ?? ["(no divergence report)"]).joined(separator: "\n"))
            let problems = (try? await oracle.check(run, bounds: bounds, histories: 5)) ?? []
            for problem in problems.prefix(40) { print("oracle: seed \(seed): \(problem)") }
            throw error
        }
        let problems = try await oracle.check(run, bounds: bounds)
        for problem in problems.prefix(40) { print("oracle: seed \(seed): \(problem)") }
        return problems
    }

    /// The path of `name` in this target's `Fixtures/`.
    static func fixture(_ name: String) -> String {
        var path = #filePath
        path = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
        return path + "/Fixtures/" + name
    }
}
