import StarlingAgent
import StarlingPostgres
import StarlingTestSupport
import Testing

/// WAL capture keeps no version rows: the versions above the cursor that verdicts gave keys live in the agent's
/// memory (``CaptureQueue``), fed by the verdicts as they commit and, after a restart, by the decoder reading
/// their markers again. These tests prove the applies skip by them across a restart.
@Suite("WAL capture: versions in memory", .serialized, .timeLimit(.minutes(3)))
struct WALVersionsTests {
    @Test("a verdict's version above the cursor outlives a restart: an older entry pulled afterwards is skipped")
    func verdictVersionSurvivesRestart() async throws {
        // r2 updates rows 1 and 2 in one transaction; in r1 a session holds row 2, so r1's apply of that
        // transaction keeps timing out on its lock and r1's cursor stays before it. Meanwhile r1 updates row 1
        // itself: its change wins over r2's older one (lww) at a seq above r2's entry. r1's agent is stopped
        // with that verdict handled and the entry not applied, the lock goes, and the agent starts again: the
        // entry on row 1 must be skipped (r1's own image is the head), which it knows only from the verdict's
        // marker in the WAL. Without the version, r1 keeps r2's image of row 1 and never converges.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let (r1, r2) = (cluster["r1"], cluster["r2"])
            let first = try cluster.startAgent("r1", tune: WALCaptureTests.wal)
            try cluster.startAgent("r2", tune: WALCaptureTests.wal)
            try await cluster.waitUntilStarted("r1")
            try await cluster.waitUntilStarted("r2")
            try await r1.execute("INSERT INTO items VALUES (1, 0, 'start'), (2, 0, 'start')")
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
            let blocker = try PostgresConnection.connect(url: r1.database.url)
            defer { blocker.close() }
            try blocker.execute("BEGIN")
            try blocker.query("SELECT id FROM items WHERE id = 2 FOR UPDATE")

            try await r2.execute("UPDATE items SET note = 'r2' WHERE id IN (1, 2)")
            try await waitUntil("the hub logged r2's transaction") {
                try await WALCaptureTests.logged(cluster, from: "r2") == 2
            }
            try await r1.execute("UPDATE items SET note = 'r1' WHERE id = 1")
            try await waitUntil("r1's change of row 1 won at the hub") {
                try await cluster.hubDatabase.withConnection { connection in
                    try connection.query(
                        "SELECT count(*) FROM starling_hub.heads WHERE table_name = 'public.items' AND origin = 'r1' "
                            + "AND row::jsonb ->> 'note' = 'r1'")[0].int64(0) == 1
                }
            }
            try await waitUntil("r1 handled its verdict") { first.progress.pushedChanges >= 3 && first.progress.captureQueued == 0 }
            let r2Seq = try await cluster.hubDatabase.withConnection { connection in
                try connection.query("SELECT min(seq) FROM starling_hub.log WHERE origin = 'r2'")[0].int64(0)
            }
            #expect(first.progress.cursor < r2Seq, "r1's apply of r2's transaction must still wait on the lock")
            try await first.stop()
            try blocker.execute("ROLLBACK")

            try cluster.startAgent("r1", tune: WALCaptureTests.wal)
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items", timeout: .seconds(30))
            #expect(try await r1.text("SELECT note FROM items WHERE id = 1") == "r1")
            #expect(try await r1.text("SELECT note FROM items WHERE id = 2") == "r2")
            #expect(try await r1.int("SELECT count(*) FROM starling.versions WHERE seq > 2") == 0, "no version rows")
        }
    }
}
