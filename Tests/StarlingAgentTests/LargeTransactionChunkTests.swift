import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// The origin's side of large transactions (README "Large transactions"): past `tuning.large_transaction_changes`
/// WAL capture writes a decoded transaction to a scratch file as it is decoded and trigger capture reads it from
/// the outbox a chunk at a time; both push it in chunks and handle its verdicts a slice at a time. The threshold
/// is lowered here so that a small transaction takes that path.
@Suite("Large transactions at the origin", .serialized, .timeLimit(.minutes(3)))
struct LargeTransactionChunkTests {
    @Test(
        "a large transaction with conflicts and keys written twice converges, read a chunk at a time",
        arguments: [CaptureMode.wal, .trigger], [false, true])
    func largeTransactionWithConflicts(capture: CaptureMode, journal: Bool) async throws {
        // Proves the large-transaction path decides like the in-memory one: r1's transaction (1,500 updates, then
        // 100 of the same keys again: 1,600 changes, over a threshold of 100, with a later local change of two of
        // its keys queued behind it) is pushed while r2 changed 50 of its keys later (so r1 loses those under the table's reject policy and writes r2's images back from the verdicts); the keys written
        // twice take the version of their last change only; both regions end equal, under WAL capture every change
        // is in r1's journal once (with a journal the verdicts read every change back; without one only those that
        // were not accepted at their seq), and the hub logged each of r1's changes once, at contiguous seqs.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let proxy = try FaultProxy(upstreamPort: cluster.hub.port)
            do {
                let (r1, r2) = (cluster["r1"], cluster["r2"])
                let agent = try cluster.startAgent("r1", hubs: ["http://127.0.0.1:\(proxy.port)"]) {
                    $0.capture = capture
                    $0.journal = journal
                    $0.tuning.largeTransactionChanges = 100
                    // 1,600 changes fill the queue: the decoder pauses while the transaction waits for its verdicts.
                    $0.tuning.captureQueueMaxChanges = 1000
                }
                try cluster.startAgent("r2") { $0.capture = capture }
                try await cluster.waitUntilStarted("r1")
                try await cluster.waitUntilStarted("r2")
                try await r2.execute("INSERT INTO firsts SELECT g, 0, 'base' FROM generate_series(1, 1500) g")
                try await cluster.waitUntilConverged(["r1", "r2"], table: "firsts", timeout: .seconds(60))

                proxy.faults.isRefusing = true
                proxy.cutAll()
                try await r1.sql { connection in
                    try connection.transaction(name: "test.big") { connection in
                        _ = try connection.query("UPDATE firsts SET qty = 1, note = 'r1 first'")
                        _ = try connection.query("UPDATE firsts SET qty = 2, note = 'r1 again' WHERE id <= 100")
                    }
                }
                // A later local change of two of its keys, queued behind it: their verdicts there are superseded.
                try await r1.execute("UPDATE firsts SET qty = 3, note = 'r1 after' WHERE id IN (1, 60)")
                // Logged first: r1's changes of these keys, based on the older version, are refused (policy reject).
                try await r2.execute("UPDATE firsts SET qty = 9, note = 'r2 later' WHERE id BETWEEN 51 AND 100")
                try await waitUntil("r2's updates are logged") {
                    try await WALCaptureTests.logged(cluster, from: "r2") == 1550
                }
                proxy.heal()
                try await cluster.waitUntilConverged(["r1", "r2"], table: "firsts", timeout: .seconds(90))

                // Convergence can show before the push task counts the transaction it has just handled.
                try await waitUntil("r1 counts its large transaction") { agent.progress.largeTransactions == 1 }
                let notes = try await r1.text(
                    "SELECT string_agg(x, '; ') FROM (SELECT format('%s %s %s..%s', note, count(*), min(id), max(id)) x FROM firsts GROUP BY note) s")
                #expect(try await r1.int("SELECT count(*) FROM firsts WHERE note = 'r2 later' AND qty = 9") == 50, "\(notes ?? "")")
                #expect(try await r1.int("SELECT count(*) FROM firsts WHERE note = 'r1 again' AND qty = 2") == 49)
                #expect(try await r1.int("SELECT count(*) FROM firsts WHERE note = 'r1 after' AND qty = 3 AND id = 1") == 1)
                #expect(try await r1.int("SELECT count(*) FROM firsts WHERE note = 'r1 first' AND qty = 1") == 1400)
                // The later change's verdict is handled after r2 holds it: polled.
                if capture == .wal {
                    try await waitUntil("r1 journaled every change") {
                        try await r1.int("SELECT count(*) FROM starling.journal") == (journal ? 1602 : 0)
                    }
                } else {
                    try await waitUntil("r1's outbox is empty") { try await r1.outboxDepth() == 0 }
                    #expect(try await r1.int("SELECT count(*) FROM starling.versions WHERE table_name = 'public.firsts'") == 1500)
                }
                let (count, span) = try await cluster.hubDatabase.withConnection { connection in
                    let row = try connection.query(
                        "SELECT count(*), max(seq) - min(seq) + 1 FROM starling_hub.log WHERE origin = 'r1' AND kind = 'change'"
                    )[0]
                    return (try row.int64(0), try row.int64(1))
                }
                let conflicts = try await cluster.hubDatabase.withConnection { connection in
                    try connection.query("SELECT count(*) FROM starling_hub.conflicts")[0].int64(0)
                }
                // 1,500 of the transaction (the 100 changes of keys 51…100 refused) and the later change of key 1.
                #expect(count == 1501 && count == span, "conflicts \(conflicts): r1's changes are logged once, at contiguous seqs: \(count), \(span)")
            } catch {
                await proxy.stop()
                throw error
            }
            await proxy.stop()
        }
    }

    @Test("WAL capture with a spill directory it cannot write to stops at start, naming the setting")
    func unusableSpillDirectoryIsRefusedAtStart() async throws {
        // Proves the check at start: the agent does not wait for its first large transaction to find out.
        try await AgentCluster.with(regions: ["r1"]) { cluster in
            var configuration = AgentConfiguration(
                region: "r1", hub: cluster.hub.url, token: InProcessHub.token("r1"), database: cluster["r1"].database.url)
            configuration.capture = .wal
            configuration.tuning.spillDirectory = "/nonexistent/starling-spill"
            let refused = try RunningAgent(configuration: configuration)
            do {
                try await refused.waitForExit()
                Issue.record("the agent started with an unusable spill directory")
            } catch let error as AgentError {
                #expect(error.code == .invalidConfiguration && error.key == "tuning.spill_directory", "\(error)")
                #expect(error.message.contains("/nonexistent/starling-spill"), "\(error)")
            }
            try? await refused.stop()
        }
    }
}
