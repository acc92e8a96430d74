import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Conflict verdicts from the real hub, handled by real agents: the region that lost applies the image the
/// verdict carries.
@Suite("Agent verdicts", .timeLimit(.minutes(3)))
struct AgentVerdictTests {
    @Test("a rejected and a merged verdict are applied locally from the verdict, not from a later pull")
    func rejectedAndMergedVerdictsAreApplied() async throws {
        // Proves the verdict path: r2, offline, inserts a key r1 already inserted (reject policy: first writer
        // wins) and updates another column of a row r1 updated meanwhile (merge policy); on reconnecting its
        // push is answered rejected and merged, and r2 ends with the winner's row and the merged row while
        // its agent applied no pulled entry at all (the entries it pulls afterwards are older than the
        // versions the verdicts recorded). r1 applies the merge entry; the hub recorded both conflicts.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let (r1, r2) = (cluster["r1"], cluster["r2"])
            try cluster.startAgent("r1")
            let first = try cluster.startAgent("r2")
            try await cluster.waitUntilStarted("r1")
            try await cluster.waitUntilStarted("r2")
            try await r1.execute("INSERT INTO merged VALUES (1, 1, 'x')")
            try await cluster.waitUntilConverged(["r1", "r2"], table: "merged")
            #expect(try await r2.int("SELECT count(*) FROM merged") == 1)
            try await first.stop()

            // While r2's agent is down: r1's writes reach the hub, r2 writes the same keys.
            try await r1.execute("INSERT INTO firsts VALUES (1, 1, 'r1')")
            try await r1.execute("UPDATE merged SET qty = 2 WHERE id = 1")
            try await waitUntil("r1's writes reached the hub") { cluster.hub.hub.head == 3 }
            try await r2.execute("INSERT INTO firsts VALUES (1, 9, 'r2')")
            try await r2.execute("UPDATE merged SET note = 'r2' WHERE id = 1")

            let second = try cluster.startAgent("r2")
            try await waitUntil("r2 pushed and pulled up to the hub's head") {
                try await r2.outboxDepth() == 0 && second.progress.cursor == cluster.hub.hub.head
                    && cluster.hub.hub.head == 4
            }
            #expect(try await r2.text("SELECT qty || ':' || note FROM firsts WHERE id = 1") == "1:r1")
            #expect(try await r2.text("SELECT qty || ':' || note FROM merged WHERE id = 1") == "2:r2")
            #expect(second.progress.appliedEntries == 0, "r2 applied \(second.progress.appliedEntries) pulled entries")
            try await waitUntil("r1 applied the merge entry") {
                try await r1.text("SELECT qty || ':' || note FROM merged WHERE id = 1") == "2:r2"
            }
            try await cluster.waitUntilConverged(["r1", "r2"], table: "firsts")
            try await cluster.waitUntilConverged(["r1", "r2"], table: "merged")

            let conflicts = try await cluster.hub.conflicts()
            #expect(conflicts.count == 2)
            let rejected = conflicts.first { $0["table"] == "public.firsts" }
            #expect(rejected?["policy"] == "reject" && rejected?["winner"] == "current")
            #expect(rejected?["incoming"]?["origin"] == "r2")
            let merged = conflicts.first { $0["table"] == "public.merged" }
            #expect(merged?["policy"] == "merge" && merged?["incoming"]?["origin"] == "r2")
            // The hub's log holds r2's merge as the fourth entry, rewritten with both columns.
            let entry = try await Self.hubEntry(cluster, seq: 4)
            #expect(entry == "r2:true:2:r2", "\(entry ?? "nil")")
        }
    }

    /// `origin:rewritten:qty:note` of the hub's log entry `seq`.
    static func hubEntry(_ cluster: AgentCluster, seq: Int64) async throws -> String? {
        try await cluster.hubDatabase.withConnection { connection in
            try connection.query(
                "SELECT origin || ':' || rewritten::text || ':' || (row::jsonb->>'qty') || ':' "
                    + "|| (row::jsonb->>'note') FROM starling_hub.log WHERE seq = $1", [.int64(seq)]
            ).first.flatMap { try $0.optionalString(0) }
        }
    }
}
