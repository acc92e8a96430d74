import StarlingPostgres
import Testing

/// An application transaction larger than the hub's push and pull limits replicates whole.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct LargeTransactionTests {
    /// A 12 000-row origin transaction (over max_push_changes 5000 and the 5000-entry pull page) reaches the
    /// other region complete: before the hub took single-transaction pushes up to max_transaction_changes, the
    /// agent's whole-transaction push got 413 on every retry and the region's replication stopped there.
    @Test func transactionOverThePushLimitReplicates() async throws {
        try await Deployment.with(regions: 2, tables: Workload.tables, ddl: Workload.ddl) { deployment in
            try await deployment.sql("r1") { connection in
                try connection.execute(
                    "INSERT INTO public.t_lww (k, v, note) SELECT 100000 + g, 'big:' || g, 'n-big' "
                        + "FROM generate_series(1, 12000) g")
            }
            try await deployment.waitForConvergence()
            let copied = try await deployment.sql("r2") {
                try $0.query("SELECT count(*) FROM public.t_lww WHERE k > 100000")[0].int64(0)
            }
            #expect(copied == 12_000)
            let logged = try await deployment.sql("hub") {
                try $0.query(
                    "SELECT count(*), max(seq) - min(seq) + 1 FROM starling_hub.log WHERE table_name = 'public.t_lww' "
                        + "AND (key::jsonb->>'k')::bigint > 100000")[0]
            }
            #expect(try logged.int64(0) == 12_000)
            #expect(try logged.int64(1) == 12_000, "one origin transaction occupies one contiguous run of the log")
        }
    }
}
