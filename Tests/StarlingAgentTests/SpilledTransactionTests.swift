import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// WAL capture's large transactions (README "Large transactions"): past `tuning.capture_spill_changes` a decoded
/// transaction goes to a scratch file as it is decoded, is pushed in chunks read back from it, and its verdicts
/// are handled a slice at a time. The threshold is lowered here so that a small transaction takes that path.
@Suite("Spilled transactions", .serialized, .timeLimit(.minutes(3)))
struct SpilledTransactionTests {
    @Test("a spilled transaction with conflicts and keys written twice converges, journaled whole")
    func spilledTransactionWithConflicts() async throws {
        // Proves the spilled path decides like the in-memory one: r1's transaction (1,500 updates, then 100 of the
        // same keys again: 1,600 changes, over a threshold of 100) is pushed while r2 changed 50 of its keys later
        // (so r1 loses those under lww and writes r2's images back from the verdicts); the keys written twice take
        // the version of their last change only; both regions end equal, every change is in r1's journal once,
        // and the hub logged each of r1's changes once, at contiguous seqs.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let proxy = try FaultProxy(upstreamPort: cluster.hub.port)
            do {
                let (r1, r2) = (cluster["r1"], cluster["r2"])
                let agent = try cluster.startAgent("r1", hubs: ["http://127.0.0.1:\(proxy.port)"]) {
                    $0.capture = .wal
                    $0.journal = true
                    $0.tuning.captureSpillChanges = 100
                }
                try cluster.startAgent("r2", tune: WALCaptureTests.wal)
                try await cluster.waitUntilStarted("r1")
                try await cluster.waitUntilStarted("r2")
                try await r2.execute("INSERT INTO items SELECT g, 0, 'base' FROM generate_series(1, 1500) g")
                try await cluster.waitUntilConverged(["r1", "r2"], table: "items", timeout: .seconds(60))

                proxy.faults.isRefusing = true
                proxy.cutAll()
                try await r1.sql { connection in
                    try connection.transaction(name: "test.big") { connection in
                        _ = try connection.query("UPDATE items SET qty = 1, note = 'r1 first'")
                        _ = try connection.query("UPDATE items SET qty = 2, note = 'r1 again' WHERE id <= 100")
                    }
                }
                // Later than r1's commit, and logged first: r1's changes of these keys lose under lww.
                try await r2.execute("UPDATE items SET qty = 9, note = 'r2 later' WHERE id BETWEEN 51 AND 100")
                try await waitUntil("r2's updates are logged") {
                    try await WALCaptureTests.logged(cluster, from: "r2") == 1550
                }
                proxy.heal()
                try await cluster.waitUntilConverged(["r1", "r2"], table: "items", timeout: .seconds(90))

                // Convergence can show before the push task counts the transaction it has just handled.
                try await waitUntil("r1 counts its spilled transaction") { agent.progress.spilledTransactions == 1 }
                #expect(try await r1.int("SELECT count(*) FROM items WHERE note = 'r2 later' AND qty = 9") == 50)
                #expect(try await r1.int("SELECT count(*) FROM items WHERE note = 'r1 again' AND qty = 2") == 50)
                #expect(try await r1.int("SELECT count(*) FROM items WHERE note = 'r1 first' AND qty = 1") == 1400)
                #expect(try await r1.int("SELECT count(*) FROM starling.journal") == 1600)
                let (count, span) = try await cluster.hubDatabase.withConnection { connection in
                    let row = try connection.query(
                        "SELECT count(*), max(seq) - min(seq) + 1 FROM starling_hub.log WHERE origin = 'r1' AND kind = 'change'"
                    )[0]
                    return (try row.int64(0), try row.int64(1))
                }
                #expect(count == 1500 && count == span, "r1's transaction is logged once, at contiguous seqs: \(count), \(span)")
            } catch {
                await proxy.stop()
                throw error
            }
            await proxy.stop()
        }
    }
}
