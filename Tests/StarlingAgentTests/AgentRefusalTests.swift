import StarlingAgent
import StarlingCore
import StarlingHub
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Real agents against a real hub that refuses them: 413 (a transaction over the body limit), 410
/// `cursor_pruned` (the log moved on without them), 503 `standby` (the URL they try first is not the active hub).
@Suite("Agent against a refusing hub", .timeLimit(.minutes(3)))
struct AgentRefusalTests {
    /// The hub limit a single origin transaction can exceed (README, `limits`), answered 413. (The others bound
    /// requests, and the agent cuts its pushes and chunks within them: `max_push_changes` and
    /// `max_transaction_changes` never refuse an agent's transaction, whatever its size.)
    enum Oversize: String, CaseIterable, CustomTestStringConvertible {
        /// `max_body_bytes` 8 KiB and one change of ~10 KB: no chunk can carry it (the agent chunks a transaction
        /// by bytes within the hub's limit, so only a change larger than the body limit is refused), and the HTTP/2
        /// server refuses its body (`body_too_large`).
        case bodyBytes

        var limits: HubConfiguration.Limits {
            var limits = HubConfiguration.Limits()
            switch self {
            case .bodyBytes:
                limits.maxBodyBytes = 8192
            }
            return limits
        }

        var testDescription: String { rawValue }
    }

    @Test(
        "a transaction over a hub limit is retried in order and shown as the region's last error",
        arguments: Oversize.allCases)
    func oversizedTransactionIsRetriedInOrderAndReported(_ oversize: Oversize) async throws {
        // Proves README's promise for a 413: the agent keeps retrying the refused transaction, pushes nothing
        // after it meanwhile (order kept), shows the hub's refusal as its last error, and so does the hub's
        // /v1/status with the real outbox depth (a regression once showed depth 0 and no error); once the operator
        // raises the limit (a hub restart) everything goes out in capture order and the error clears.
        try await AgentCluster.with(regions: ["r1", "r2"], limits: oversize.limits) { cluster in
            let r1 = cluster["r1"]
            // Batches below the hub's limit: only a single transaction larger than both goes over it.
            let agent = try cluster.startAgent("r1") { $0.tuning.batch.maxBytes = 4096 }
            try cluster.startAgent("r2")
            try await cluster.waitUntilStarted("r1")
            try await cluster.waitUntilStarted("r2")
            try await r1.execute("INSERT INTO items VALUES (1, 1, 'before')")
            // 100 rows of ~300 bytes of JSON each (one of ~10 KB when the body limit is at stake): 100 changes and
            // ~30 KB in one origin transaction.
            let wide = oversize == .bodyBytes ? 320 : 8
            try await r1.execute(
                "INSERT INTO items SELECT g, g, repeat(md5(g::text), CASE WHEN g = 150 THEN \(wide) ELSE 8 END) "
                    + "FROM generate_series(100, 199) g")
            try await r1.execute("INSERT INTO items VALUES (2, 2, 'after')")

            try await waitUntil("r1's agent shows the refusal") { agent.progress.lastError?.contains("413") == true }
            var seen = JSONValue.null
            do {
                try await waitUntil("the hub's status shows r1's refusal and its outbox") {
                    seen = try await cluster.hub.status(of: "r1")
                    return seen["last_error"]?.stringValue?.contains("413") == true && seen["outbox_depth"] == 101
                }
            } catch {
                Issue.record("r1 in /v1/status: \(String(decoding: seen.serialized(), as: UTF8.self))")
                throw error
            }
            #expect(try await Self.hubKeys(cluster, origin: "r1") == [1], "only the transaction before was pushed")
            #expect(try await r1.outboxDepth() == 101)

            try await cluster.restartHub(limits: HubConfiguration.Limits())
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
            #expect(try await Self.hubKeys(cluster, origin: "r1") == [1] + Array(100...199) + [2])
            let span = try await cluster.hubDatabase.withConnection { connection in
                try connection.query(
                    "SELECT max(seq) - min(seq) FROM starling_hub.log WHERE (key::jsonb->>'id')::bigint >= 100"
                )[0].int64(0)
            }
            #expect(span == 99, "the large transaction's entries are contiguous")
            try await waitUntil("the hub shows r1 healthy again") {
                let status = try await cluster.hub.status(of: "r1")
                return status["last_error"] == .null && status["outbox_depth"] == 0
            }
        }
    }

    @Test("a region whose cursor fell behind the pruned log re-bootstraps on 410 and keeps its local writes")
    func prunedCursorReBootstraps() async throws {
        // Proves the agent's answer to 410 cursor_pruned: r2, offline while the hub pruned entries it never
        // pulled, pushes its own writes, gets 410 on its pull, reloads the heads (a second bootstrap) and
        // converges with r1, including r1's changes whose entries are gone; its offline writes reach r1.
        var retention = HubConfiguration.Retention()
        retention.window = "0s"
        retention.partitionEntries = 10
        retention.inactiveAfter = "1s"
        try await AgentCluster.with(regions: ["r1", "r2"], retention: retention) { cluster in
            let (r1, r2) = (cluster["r1"], cluster["r2"])
            try cluster.startAgent("r1")
            let first = try cluster.startAgent("r2")
            try await cluster.waitUntilStarted("r1")
            try await cluster.waitUntilStarted("r2")
            try await r1.execute("INSERT INTO items SELECT g, g, 'r1' FROM generate_series(1, 5) g")
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
            try await first.stop()
            let cursor = try await r2.int("SELECT cursor FROM starling.state")
            let bootstrapped = try await Self.bootstrappedAt(r2)

            for id in 6...40 { try await r1.execute("INSERT INTO items VALUES ($1, $1, 'r1')", [.int(id)]) }
            try await r1.execute("UPDATE items SET note = 'r1 later' WHERE id = 3")
            // r2 stops holding the log back once it has not pulled for inactive_after (1 s).
            try await waitUntil("the hub pruned entries r2 never pulled", every: .milliseconds(200)) {
                try await cluster.hub.hub.pruneLog().prunedThrough > cursor
            }
            try await r2.execute("INSERT INTO items VALUES (1000, 1, 'r2 offline')")
            try await r2.execute("UPDATE items SET qty = 50 WHERE id = 4")

            let second = try cluster.startAgent("r2")
            // The heads are applied table by table before the cursor moves: wait for the end of the bootstrap.
            try await waitUntil("r2 bootstrapped again") { try await Self.bootstrappedAt(r2) > bootstrapped }
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
            // The agent publishes its cursor after the bootstrap's transaction, which convergence can outrun.
            try await waitUntil("r2's agent reports a cursor past the pruned entries") { second.progress.cursor >= 41 }
            #expect(try await r2.text("SELECT note FROM items WHERE id = 3") == "r1 later")
            #expect(try await r1.text("SELECT qty || ':' || note FROM items WHERE id = 1000") == "1:r2 offline")
            #expect(try await r1.int("SELECT qty FROM items WHERE id = 4") == 50)
            #expect(try await r1.int("SELECT count(*) FROM items") == 41)
            #expect(try await r2.int("SELECT count(*) FROM starling.dead_letters") == 0)
        }
    }

    @Test("agents listing a standby hub first get 503 standby, use the active hub, and follow it when it dies")
    func standbyIsSkippedAndTakeoverFollowed() async throws {
        // Proves hub failover from the agents' side against two real hubs on one database: both agents list the
        // standby first, are answered 503 standby and replicate through the active hub; when the active hub
        // dies the standby takes the sequencer lock and the agents move to it and keep replicating.
        try await AgentCluster.with(regions: ["r1", "r2"], hubCount: 2) { cluster in
            let (r1, r2) = (cluster["r1"], cluster["r2"])
            let (active, standby) = (cluster.allHubs[0], cluster.allHubs[1])
            #expect(active.hub.isActive && !standby.hub.isActive)
            let refused = try await standby.send(
                "POST", "/v1/changes", token: InProcessHub.token("r1"), body: ["changes": []])
            #expect(refused.status == 503 && refused.json["error"]?["code"] == "standby")
            let urls = [standby.url, active.url]
            let agents = [try cluster.startAgent("r1", hubs: urls), try cluster.startAgent("r2", hubs: urls)]
            try await cluster.waitUntilStarted("r1")
            try await cluster.waitUntilStarted("r2")
            try await r1.execute("INSERT INTO items VALUES (1, 1, 'via the active hub')")
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
            #expect(try await r2.int("SELECT count(*) FROM items") == 1)
            #expect(agents.allSatisfy { $0.link.currentHub == active.url })

            await active.stop()
            try await waitUntil("the standby took over") { standby.hub.isActive }
            try await r2.execute("INSERT INTO items VALUES (2, 2, 'via the new active hub')")
            try await r1.execute("UPDATE items SET qty = 10 WHERE id = 1")
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
            #expect(try await r1.text("SELECT string_agg(id || ':' || qty, ',' ORDER BY id) FROM items") == "1:10,2:2")
            #expect(agents.allSatisfy { $0.link.currentHub == standby.url })
            #expect(standby.hub.head == 3)
        }
    }

    /// The key ids of `origin`'s entries in the hub's log, in seq order.
    static func hubKeys(_ cluster: AgentCluster, origin: String) async throws -> [Int64] {
        try await cluster.hubDatabase.withConnection { connection in
            try connection.query(
                "SELECT (key::jsonb->>'id')::bigint FROM starling_hub.log WHERE origin = $1 ORDER BY seq",
                [.text(origin)]
            ).map { try $0.int64(0) }
        }
    }

    /// `starling.state.bootstrapped_at` in microseconds since the epoch.
    static func bootstrappedAt(_ region: TestRegion) async throws -> Int64 {
        try await region.int("SELECT (extract(epoch FROM bootstrapped_at) * 1000000)::bigint FROM starling.state")
    }
}
