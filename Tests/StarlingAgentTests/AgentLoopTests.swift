import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// The agent's loop (capture → push → pull → apply) with real agents against the real in-process hub over
/// our HTTP/2 client (``AgentCluster``).
@Suite("Agent loop", .timeLimit(.minutes(3)))
struct AgentLoopTests {
    @Test("two regions converge through the loop, also after the hub was unreachable")
    func twoRegionsConverge() async throws {
        // Proves capture → push → pull → apply end to end; while the hub is unreachable writes queue in the
        // outbox with the failure as the agent's last error, drain once it is back, and the hub's status shows
        // the region's outbox empty and its error cleared; both regions end identical.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let proxy = try FaultProxy(upstreamPort: cluster.hub.port)
            do {
                try await converge(cluster, r2ThroughProxy: proxy)
            } catch {
                await proxy.stop()
                throw error
            }
            await proxy.stop()
        }
    }

    private func converge(_ cluster: AgentCluster, r2ThroughProxy proxy: FaultProxy) async throws {
        let (r1, r2) = (cluster["r1"], cluster["r2"])
        try cluster.startAgent("r1")
        let agent2 = try cluster.startAgent("r2", hubs: ["http://127.0.0.1:\(proxy.port)"])
        try await cluster.waitUntilStarted("r1")
        try await cluster.waitUntilStarted("r2")
        for id in 1...20 { try await r1.execute("INSERT INTO items VALUES ($1, $2, 'from r1')", [.int(id), .int(id)]) }
        try await r1.sql { _ = try $0.executeScript("BEGIN; UPDATE items SET qty = qty + 100 WHERE id <= 10; COMMIT") }
        try await r2.execute("INSERT INTO items VALUES (100, 1, 'from r2')")
        try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
        #expect(try await r1.int("SELECT count(*) FROM items") == 21)
        #expect(try await r2.int("SELECT sum(qty) FROM items") == 20 * 21 / 2 + 1000 + 1)

        proxy.faults.isRefusing = true
        proxy.cutAll()
        try await r2.execute("UPDATE items SET note = 'r2 was here' WHERE id = 5")
        try await r2.execute("DELETE FROM items WHERE id = 6")
        try await waitUntil("r2 queued both writes and reports the failure") {
            try await r2.outboxDepth() == 2 && agent2.progress.lastError != nil
        }
        proxy.heal()
        try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
        #expect(try await r1.int("SELECT count(*) FROM items") == 20)
        #expect(try await r1.text("SELECT note FROM items WHERE id = 5") == "r2 was here")
        try await waitUntil("the hub shows r2 healthy") {
            let status = try await cluster.hub.status(of: "r2")
            return status["outbox_depth"] == 0 && status["last_error"] == .null
        }
        #expect(proxy.counters.refused + proxy.counters.cut > 0)
    }

    @Test("over a 100 ms link a steady trickle is applied once and in order, with two pulls in flight")
    func slowLinkTrickleAppliesOnceInOrder() async throws {
        // Proves the pull pipeline's second, staggered pull (PullLanes) loses, repeats and reorders nothing: r2
        // reaches the hub through a proxy adding 50 ms each way and is caught up, so it keeps two overlapping
        // pulls in flight while r1 writes a row and bumps one counter row every 10 ms. A repeated or reordered
        // page would leave the counter's full image behind (the stored cursor refuses a page that does not start
        // where the last one ended); r2 ends with every row, the counter at its last value and its cursor at
        // the hub's head.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let proxy = try FaultProxy(upstreamPort: cluster.hub.port, faults: .init(delay: .milliseconds(50)))
            do {
                let (r1, r2) = (cluster["r1"], cluster["r2"])
                try cluster.startAgent("r1")
                let agent2 = try cluster.startAgent("r2", hubs: ["http://127.0.0.1:\(proxy.port)"])
                try await cluster.waitUntilStarted("r1")
                try await cluster.waitUntilStarted("r2")
                try await r1.execute("INSERT INTO items VALUES (0, 0, 'counter')")
                for id in 1...60 {
                    try await r1.execute("INSERT INTO items VALUES ($1, $1, 'trickle')", [.int(id)])
                    try await r1.execute("UPDATE items SET qty = qty + 1 WHERE id = 0")
                    try await Task.sleep(for: .milliseconds(10))  // the trickle's pace is the test's input
                }
                try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
                #expect(try await r2.int("SELECT count(*) FROM items") == 61)
                #expect(try await r2.int("SELECT qty FROM items WHERE id = 0") == 60)
                try await waitUntil("r2's cursor reached the hub's head") {
                    agent2.progress.cursor == cluster.hub.hub.head
                }
                #expect(proxy.counters.bytesForwarded > 0)
            } catch {
                await proxy.stop()
                throw error
            }
            await proxy.stop()
        }
    }

    @Test("after a bulk push the agent vacuums its outbox; apply functions probe indexes")
    func outboxIsVacuumedAfterBulkPush() async throws {
        // Proves the agent vacuums starling.outbox itself once it removed OutboxVacuum's threshold of rows
        // (autovacuum comes at most once a minute; until then reading the next batch stepped over every dead
        // index entry of a bulk load).
        try await AgentCluster.with(regions: ["r1"]) { cluster in
            let r1 = cluster["r1"]
            let agent = try cluster.startAgent("r1")
            try await cluster.waitUntilStarted("r1")
            try await r1.execute("INSERT INTO items SELECT g, g, 'bulk' FROM generate_series(1, 6000) g")
            try await waitUntil("the bulk load was pushed") { try await r1.outboxDepth() == 0 }
            try await waitUntil("the outbox was vacuumed") { agent.progress.outboxVacuums > 0 }
            #expect(cluster.hub.hub.head == 6000)
            // The apply functions plan with index probes only (stale statistics after such a bulk load made the
            // planner hash the whole versions table for a batch of a few entries).
            let settings = try await r1.sql { connection in
                try connection.query(
                    "SELECT coalesce(array_to_string(proconfig, ','), '') AS c FROM pg_proc p "
                        + "JOIN pg_namespace n ON n.oid = p.pronamespace "
                        + "WHERE n.nspname = 'starling' AND p.proname LIKE 'apply\\_%'"
                ).map { try $0.string("c") }
            }
            #expect(
                settings.count == 4 * AgentCluster.tables.count,
                "four apply functions per synced table (with version rows and WAL capture's, each per entry and batch)")
            for config in settings {
                #expect(config.contains("enable_hashjoin=off") && config.contains("enable_seqscan=off"), "\(config)")
            }
        }
    }

    @Test("a local write wakes the agent through NOTIFY, long before its long poll ends")
    func localWriteWakesTheAgent() async throws {
        // Proves the capture trigger's NOTIFY wakes an agent parked in a 30 s long poll: each of three local
        // writes reaches the hub and the other region within 3 s. Were the agent to push only when its poll
        // returns, each write would wait up to 30 s and the 10 s deadline below would fail the test.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let (r1, r2) = (cluster["r1"], cluster["r2"])
            for region in ["r1", "r2"] {
                try cluster.startAgent(region) { $0.tuning.pull.waitMs = 30_000 }
                try await cluster.waitUntilStarted(region)
            }
            // Parked: the hub records a pull when it begins; with an empty outbox that pull is a 30 s long poll,
            // and it goes on past r1's own entries (the hub does not send a region its own changes), so r1 stays
            // parked in it through every round below.
            try await waitUntil("r1 is parked in a long poll") {
                try await cluster.hub.status(of: "r1")["last_pull_at"] != .null
            }
            for round in 1...3 {
                let started = ContinuousClock.now
                try await r1.execute("INSERT INTO items VALUES ($1, 1, 'wake')", [.int(round)])
                try await waitUntil("write \(round) reached the hub", timeout: .seconds(10), every: .milliseconds(5)) {
                    cluster.hub.hub.head == Int64(round)
                }
                let atHub = ContinuousClock.now - started
                try await waitUntil("write \(round) reached r2", timeout: .seconds(10), every: .milliseconds(5)) {
                    try await r2.int("SELECT count(*) FROM items") == Int64(round)
                }
                let atR2 = ContinuousClock.now - started
                #expect(atHub < .seconds(3) && atR2 < .seconds(3), "round \(round): hub \(atHub), r2 \(atR2)")
            }
        }
    }

    @Test("OutboxVacuum is due after its row threshold, at most once per interval")
    func outboxVacuumPolicy() {
        // Proves the pure policy: not due below the threshold, due at it, not again within the interval.
        var policy = OutboxVacuum(rowsPerVacuum: 100, minimumInterval: .seconds(5))
        let start = ContinuousClock.now
        let belowThreshold = policy.removed(99, now: start)
        let atThreshold = policy.removed(1, now: start)
        policy.vacuumed(at: start)
        let withinInterval = policy.removed(150, now: start + .seconds(1))
        let afterInterval = policy.removed(0, now: start + .seconds(6))
        #expect(!belowThreshold && atThreshold && !withinInterval && afterInterval)
    }
}
