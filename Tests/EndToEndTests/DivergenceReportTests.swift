import StarlingPostgres
import Testing

/// The convergence-failure report the fault run prints.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DivergenceReportTests {
    /// A row changed behind the agent's back in one region is reported with both sides and the hub's history.
    @Test func reportNamesTheDifferingKeyWithBothSidesAndTheHubHistory() async throws {
        // Trigger capture: the row is changed through its back door (`starling.applying` switches the trigger off).
        try await Deployment.with(regions: 2, tables: Workload.tables, ddl: Workload.ddl, capture: "trigger") {
            deployment in
            _ = try await deployment.runWorkload(Workload(seed: 7, transactions: 20, keys: 4))
            try await deployment.waitForConvergence()
            #expect(try await deployment.divergenceReport().isEmpty)
            let key = try await deployment.sql("r2") { connection in
                try connection.transaction { connection in
                    // Not captured: the write the agent's own apply would make.
                    _ = try connection.query("SELECT set_config('starling.applying', 'on', true)")
                    return try connection.query(
                        "UPDATE public.t_lww SET v = 'corrupt' WHERE k = (SELECT min(k) FROM public.t_lww) RETURNING k"
                    )[0].int64(0)
                }
            }
            let report = try await deployment.divergenceReport()
            print(report.joined(separator: "\n"))
            #expect(report.first?.hasPrefix("public.t_lww k=\(key): r2 row {") == true)
            #expect(report.contains { $0.hasPrefix("  head seq ") })
            #expect(report.contains { $0.hasPrefix("  log ") })
        }
    }
}
