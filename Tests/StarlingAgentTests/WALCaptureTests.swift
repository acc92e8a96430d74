import StarlingAgent
import StarlingCore
import StarlingHub
import StarlingPostgres
import StarlingTestSupport
import Testing

/// WAL capture end to end: real agents reading their region's replication slot, against the in-process hub.
@Suite("WAL capture", .serialized, .timeLimit(.minutes(3)))
struct WALCaptureTests {
    static func wal(_ configuration: inout AgentConfiguration) { configuration.capture = .wal }

    /// Writes 4,000 rows into `region`'s items in four transactions of 1,000 (the bounded-queue tests' bound).
    static func insertBulk(into region: TestRegion) async throws {
        for first in stride(from: 1, through: 3001, by: 1000) {
            try await region.execute(
                "INSERT INTO items SELECT g, 1, 'bulk' FROM generate_series($1::bigint, $2::bigint) g",
                [.int(first), .int(first + 999)])
        }
    }

    /// After ``insertBulk(into:)`` in r1 and one row from r2: both regions converge, the hub logged r1's 4,000, and
    /// r1's capture queue never held more than one transaction of 1,000 (its bound).
    static func expectBulkReplicated(_ cluster: AgentCluster, peak progress: @autoclosure () -> Agent.Progress)
        async throws
    {
        try await cluster.waitUntilConverged(["r1", "r2"], table: "items", timeout: .seconds(90))
        #expect(try await cluster["r2"].int("SELECT count(*) FROM items") == 4001)
        #expect(try await logged(cluster, from: "r1") == 4000)
        #expect(progress().captureQueuePeak == 1000, "one transaction of 1000 fills it; the rest waits")
    }

    /// Entries the hub logged from `region`'s changes.
    static func logged(_ cluster: AgentCluster, from region: String) async throws -> Int64 {
        try await cluster.hubDatabase.withConnection { connection in
            try connection.query(
                "SELECT count(*) FROM starling_hub.log WHERE origin = $1 AND kind = 'change'", [.text(region)])[0].int64(0)
        }
    }

    /// Log entries of `region` whose HLC is not above the region's previous one (each change gets its own stamp).
    static func nonIncreasingHLCs(_ cluster: AgentCluster, from region: String) async throws -> Int64 {
        try await cluster.hubDatabase.withConnection { connection in
            try connection.query(
                """
                SELECT count(*) FROM (SELECT hlc, lag(hlc) OVER (ORDER BY seq) AS previous FROM starling_hub.log
                                      WHERE origin = $1 AND kind = 'change') x WHERE hlc <= previous
                """, [.text(region)])[0].int64(0)
        }
    }

    static func conflicts(_ cluster: AgentCluster) async throws -> Int64 {
        let (count, listed) = try await cluster.hubDatabase.withConnection { connection in
            (try connection.query("SELECT count(*) FROM starling_hub.conflicts")[0].int64(0),
             try connection.query(
                """
                SELECT string_agg(format('%s %s current %s@%s incoming %s %s base %s', table_name, key, current_origin,
                                         current_seq, incoming_origin, incoming_op, incoming_base), '; ')
                FROM starling_hub.conflicts
                """)[0].optionalString(0))
        }
        if count > 0 { Issue.record("conflicts: \(listed ?? "")") }
        return count
    }

    /// Runs `body` with region r1's database on a cluster of its own (`cluster`: the tables of the suite's regions
    /// created there) and r1's configuration for it, beside an agent cluster whose only region is r2.
    static func withOwnCluster(
        _ cluster: TestPostgresCluster,
        _ body: (AgentCluster, PostgresConnection, AgentConfiguration) async throws -> Void
    ) async throws {
        do {
            try await AgentCluster.with(regions: ["r2"]) { agents in
                let admin = try PostgresConnection.connect(url: cluster.url())
                try admin.execute("CREATE DATABASE region")
                admin.close()
                let url = cluster.url(database: "region")
                let region = try PostgresConnection.connect(url: url)
                defer { region.close() }
                try region.executeScript(AgentCluster.ddl)
                var configuration = AgentConfiguration(
                    region: "r1", hub: agents.hub.url, token: InProcessHub.token("r1"), database: url)
                configuration.tuning.backoff = .init(initialMs: 5, maxMs: 100)
                try await body(agents, region, configuration)
            }
        } catch {
            await cluster.destroy()
            throw error
        }
        await cluster.destroy()
    }

    /// Starts an agent on `configuration` and expects it to stop by itself with an ``AgentError`` that `matches`.
    static func expectRefused(_ configuration: AgentConfiguration, _ matches: (AgentError) -> Bool) async throws {
        let refused = try RunningAgent(configuration: configuration)
        do {
            try await refused.waitForExit()
            Issue.record("the agent started: \(configuration)")
        } catch let error as AgentError {
            #expect(matches(error), "\(error)")
        }
        try? await refused.stop()
    }

    @Test("two regions converge from their WAL; no trigger, no outbox row, the agents' own writes never pushed")
    func twoRegionsConverge() async throws {
        // Proves: inserts, updates, a primary-key change, deletes and a multi-row transaction travel through the
        // slot to the other region; the application's tables carry no capture trigger and the outbox stays
        // empty; the hub logs exactly the application's changes (applies in the other region are not captured).
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let (r1, r2) = (cluster["r1"], cluster["r2"])
            try cluster.startAgent("r1", tune: Self.wal)
            try cluster.startAgent("r2", tune: Self.wal)
            try await cluster.waitUntilStarted("r1")
            try await cluster.waitUntilStarted("r2")
            #expect(try await r1.int("SELECT count(*) FROM pg_trigger WHERE tgname = 'starling_capture'") == 0)
            // The ops/test cluster may load starling_pgoutput: `output_plugin: auto` decodes with it.
            for region in [r1, r2] {
                #expect(
                    try await region.int(
                        "SELECT count(*) FROM pg_replication_slots WHERE database = current_database() AND plugin = 'starling_pgoutput'")
                        == 1)
            }
            for id in 1...20 { try await r1.execute("INSERT INTO items VALUES ($1, $2, 'from r1')", [.int(id), .int(id)]) }
            try await r1.sql { _ = try $0.executeScript("BEGIN; UPDATE items SET qty = qty + 100 WHERE id <= 10; COMMIT") }
            try await r1.execute("UPDATE items SET id = 50 WHERE id = 20")
            try await r2.execute("INSERT INTO items VALUES (100, 1, 'from r2')")
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
            try await r2.execute("DELETE FROM items WHERE id = 19")
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
            #expect(try await r1.int("SELECT count(*) FROM items") == 20)
            #expect(try await r2.int("SELECT count(*) FROM items WHERE id = 50") == 1)
            #expect(try await r2.int("SELECT sum(qty) FROM items") == 20 * 21 / 2 + 1000 + 1 - 19)
            #expect(try await r1.outboxDepth() == 0)
            #expect(try await r2.outboxDepth() == 0)
            // 20 inserts + 10 updates + the key change (delete + insert) from r1; r2's insert and delete.
            try await waitUntil("the hub logged every change once") {
                let fromR1 = try await Self.logged(cluster, from: "r1")
                let fromR2 = try await Self.logged(cluster, from: "r2")
                return fromR1 == 32 && fromR2 == 2
            }
            #expect(try await Self.conflicts(cluster) == 0)
            #expect(try await Self.nonIncreasingHLCs(cluster, from: "r1") == 0, "one stamp per change, increasing")
            // TRUNCATE would not replicate (neither capture sees rows): it is refused with the reason.
            await #expect(throws: (any Error).self) { try await r1.execute("TRUNCATE items") }
            #expect(try await r1.int("SELECT count(*) FROM items") == 20)
        }
    }

    @Test("writes one after another on one key in two regions are no conflict; concurrent ones converge")
    func noFalseConflictThenConvergence() async throws {
        // Proves the base from the decoded stream: a key written in r1, applied in r2, then written in r2, and so
        // on, never conflicts (a base too low would); writes racing on the same keys still converge.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let (r1, r2) = (cluster["r1"], cluster["r2"])
            try cluster.startAgent("r1", tune: Self.wal)
            try cluster.startAgent("r2", tune: Self.wal)
            try await cluster.waitUntilStarted("r1")
            try await cluster.waitUntilStarted("r2")
            try await r1.execute("INSERT INTO items VALUES (1, 0, 'start')")
            for round in 1...6 {
                let (writer, name) = round % 2 == 0 ? (r1, "r1") : (r2, "r2")
                try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
                try await writer.execute("UPDATE items SET qty = $1, note = $2 WHERE id = 1", [.int(round), .text(name)])
            }
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
            #expect(try await r1.int("SELECT qty FROM items WHERE id = 1") == 6)
            #expect(try await Self.conflicts(cluster) == 0)

            for round in 0..<20 {
                try await r1.execute("INSERT INTO items VALUES ($1, 1, 'r1') ON CONFLICT (id) DO UPDATE SET qty = items.qty + 1", [.int(10 + round % 5)])
                try await r2.execute("INSERT INTO items VALUES ($1, 1, 'r2') ON CONFLICT (id) DO UPDATE SET qty = items.qty + 2", [.int(10 + round % 5)])
            }
            do {
                try await cluster.waitUntilConverged(["r1", "r2"], table: "items", timeout: .seconds(15))
            } catch {
                let rows1 = try await r1.text("SELECT string_agg(t::text, ' ' ORDER BY id) FROM items t")
                let rows2 = try await r2.text("SELECT string_agg(t::text, ' ' ORDER BY id) FROM items t")
                let heads = try await cluster.hubDatabase.withConnection { c in
                    try c.query("SELECT string_agg(key || '=' || coalesce(row, 'null') || '@' || seq::text, ' ' ORDER BY key) FROM starling_hub.heads")[0].optionalString(0)
                }
                Issue.record("r1: \(rows1 ?? "")\nr2: \(rows2 ?? "")\nhub: \(heads ?? "")")
                throw error
            }
        }
    }

    @Test("an agent stopped and started again resumes from its slot: nothing lost, nothing pushed twice")
    func restartResumesFromTheSlot() async throws {
        // Proves: changes decoded before a stop and not confirmed are decoded again after the restart and
        // answered by their stored verdicts (same ids), writes made while the agent is down are read from the
        // slot, and the slot's confirmed position advances.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let (r1, _) = (cluster["r1"], cluster["r2"])
            let first = try cluster.startAgent("r1", tune: Self.wal)
            try cluster.startAgent("r2", tune: Self.wal)
            try await cluster.waitUntilStarted("r1")
            try await cluster.waitUntilStarted("r2")
            for id in 1...30 { try await r1.execute("INSERT INTO items VALUES ($1, 1, 'a')", [.int(id)]) }
            try await first.stop()
            for id in 31...60 { try await r1.execute("INSERT INTO items VALUES ($1, 1, 'b')", [.int(id)]) }
            try cluster.startAgent("r1", tune: Self.wal)
            for id in 61...90 { try await r1.execute("INSERT INTO items VALUES ($1, 1, 'c')", [.int(id)]) }
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
            #expect(try await Self.logged(cluster, from: "r1") == 90)
            #expect(try await Self.nonIncreasingHLCs(cluster, from: "r1") == 0)
            try await waitUntil("the slot confirmed a position") {
                try await r1.text("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name LIKE 'starling_r1_%'")
                    != nil
            }
        }
    }

    @Test("a region that only applies other regions' changes confirms its slot past them: the WAL is not kept")
    func applyOnlyRegionConfirmsItsSlot() async throws {
        // Proves the slot of a region with nothing of its own to push moves past its applies of the other region's
        // 4,000 rows (over a megabyte of WAL here), to within 64 kB of where the WAL was once they were applied: the
        // push task wakes at least once a second and saves the decoder's checkpoint when every change before it is
        // handled, so a region that only applies does not keep the WAL of its applies.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let (r1, r2) = (cluster["r1"], cluster["r2"])
            try cluster.startAgent("r1", tune: Self.wal)
            try cluster.startAgent("r2", tune: Self.wal)
            try await cluster.waitUntilStarted("r1")
            try await cluster.waitUntilStarted("r2")
            let before = try #require(try await r1.text("SELECT pg_current_wal_lsn()::text"))
            try await Self.insertBulk(into: r2)
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items", timeout: .seconds(90))
            let applied = try #require(try await r1.text("SELECT pg_current_wal_lsn()::text"))
            // Positions the server gave, as pg_lsn literals.
            #expect(
                try await r1.int("SELECT pg_wal_lsn_diff('\(applied)', '\(before)')::bigint") > 1_000_000,
                "the applies wrote over a megabyte of WAL")
            try await waitUntil("r1's slot confirmed its applies", timeout: .seconds(30)) {
                try await r1.int(
                    """
                    SELECT coalesce((SELECT pg_wal_lsn_diff('\(applied)', confirmed_flush_lsn) FROM pg_replication_slots
                                     WHERE database = current_database() AND slot_name LIKE 'starling_r1_%'), 1e9)::bigint
                    """) < 64 * 1024
            }
            #expect(try await Self.logged(cluster, from: "r1") == 0, "r1 wrote nothing of its own")
        }
    }

    @Test("a WAL sender that dies restarts the agent's tasks from the confirmed position; the agent keeps running")
    func decoderConnectionLoss() async throws {
        // Proves the restart path: the decoder's connection is terminated under load; the agent starts over
        // from the slot's confirmed position instead of stopping (it once stopped for good), and every write
        // reaches the other region exactly once.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let r1 = cluster["r1"]
            let agent = try cluster.startAgent("r1", tune: Self.wal)
            try cluster.startAgent("r2", tune: Self.wal)
            try await cluster.waitUntilStarted("r1")
            try await cluster.waitUntilStarted("r2")
            for id in 1...20 { try await r1.execute("INSERT INTO items VALUES ($1, 1, 'before')", [.int(id)]) }
            // This test's WAL sender only: the server is shared with tests running beside it, whose regions are
            // named r1 as well (counting theirs, the wait once never saw exactly one, and the terminate ended theirs).
            let sender = "FROM pg_stat_activity WHERE backend_type = 'walsender' AND datname = current_database() "
                + "AND application_name = 'starling-agent-r1-wal'"
            for _ in 0..<2 {
                try await waitUntil("r1's WAL sender runs") { try await r1.int("SELECT count(*) \(sender)") == 1 }
                _ = try await r1.int("SELECT count(pg_terminate_backend(pid)) \(sender)")
            }
            for id in 21...40 { try await r1.execute("INSERT INTO items VALUES ($1, 1, 'after')", [.int(id)]) }
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
            #expect(agent.progress.isRunning)
            #expect(try await Self.logged(cluster, from: "r1") == 40)
        }
    }

    @Test("with the hub unreachable the capture queue stops at its bound; everything replicates once it is back")
    func boundedCaptureQueue() async throws {
        // Proves the memory bound of WAL capture: past `capture_queue_max_changes` decoded changes the decoder
        // stops reading (the slot keeps the WAL), the queue stays at the bound while the hub is unreachable, and
        // every write replicates once it is back.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let proxy = try FaultProxy(upstreamPort: cluster.hub.port)
            do {
                let r1 = cluster["r1"]
                let agent = try cluster.startAgent("r1", hubs: ["http://127.0.0.1:\(proxy.port)"]) {
                    $0.capture = .wal
                    $0.tuning.captureQueueMaxChanges = 1000
                }
                try cluster.startAgent("r2", tune: Self.wal)
                try await cluster.waitUntilStarted("r1")
                try await cluster.waitUntilStarted("r2")
                proxy.faults.isRefusing = true
                proxy.cutAll()
                // r1's first apply comes after the cut: it waits for the decoder only up to where the process
                // started (``Agent/takeCatchUpTarget()``), so it reads no transaction past the bound either.
                try await cluster["r2"].execute("INSERT INTO items VALUES (100000, 1, 'during the cut')")
                try await Self.insertBulk(into: r1)
                try await waitUntil("the queue reached its bound") { agent.progress.captureQueued >= 1000 }
                for _ in 0..<10 {
                    try await Task.sleep(for: .milliseconds(100))
                    #expect(agent.progress.captureQueued <= 1000, "one transaction of 1000 fills it; the rest waits")
                }
                proxy.heal()
                try await Self.expectBulkReplicated(cluster, peak: agent.progress)
            } catch {
                await proxy.stop()
                throw error
            }
            await proxy.stop()
        }
    }

    @Test("an agent started while the hub is unreachable keeps its capture queue at the bound when the hub is back")
    func boundedCaptureQueueAfterLateStart() async throws {
        // The first apply of an agent process waits for the decoder to read every marker committed before the
        // process started (``Agent/awaitDecoderCatchUp()``). The target of that wait is taken as the process
        // starts, before the hub is asked anything: taken at the first apply, as it was, it lay past every write
        // made while the hub was unreachable, and the decoder read them all into the queue at once.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let proxy = try FaultProxy(upstreamPort: cluster.hub.port)
            do {
                let r1 = cluster["r1"]
                let bounded = { (configuration: inout AgentConfiguration) in
                    configuration.capture = .wal
                    configuration.tuning.captureQueueMaxChanges = 1000
                }
                let hubs = ["http://127.0.0.1:\(proxy.port)"]
                let first = try cluster.startAgent("r1", hubs: hubs, tune: bounded)
                try cluster.startAgent("r2", tune: Self.wal)
                try await cluster.waitUntilStarted("r1")
                try await cluster.waitUntilStarted("r2")
                try await first.stop()
                proxy.faults.isRefusing = true
                proxy.cutAll()
                let agent = try cluster.startAgent("r1", hubs: hubs, tune: bounded)
                try await waitUntil("r1's new agent process failed to reach the hub") { agent.progress.lastError != nil }
                try await cluster["r2"].execute("INSERT INTO items VALUES (100000, 1, 'while r1 was cut off')")
                try await Self.insertBulk(into: r1)
                proxy.heal()
                try await Self.expectBulkReplicated(cluster, peak: agent.progress)
            } catch {
                await proxy.stop()
                throw error
            }
            await proxy.stop()
        }
    }

    @Test("a region that captured with triggers switches to the WAL without losing or repeating a change")
    func switchFromTriggers() async throws {
        // Proves the switch: outbox rows left from trigger capture are pushed, the triggers are dropped in a
        // transaction that sees the outbox empty, and every later write is read from the slot.
        try await AgentCluster.with(regions: ["r1", "r2"]) { cluster in
            let r1 = cluster["r1"]
            let trigger = try cluster.startAgent("r1")
            try cluster.startAgent("r2", tune: Self.wal)
            try await cluster.waitUntilStarted("r1")
            try await cluster.waitUntilStarted("r2")
            for id in 1...20 { try await r1.execute("INSERT INTO items VALUES ($1, 1, 'trigger')", [.int(id)]) }
            try await trigger.stop()
            for id in 21...40 { try await r1.execute("INSERT INTO items VALUES ($1, 1, 'left in the outbox')", [.int(id)]) }
            #expect(try await r1.outboxDepth() > 0)
            try cluster.startAgent("r1", tune: Self.wal)
            try await waitUntil("trigger capture ended") {
                try await r1.int("SELECT count(*) FROM pg_trigger WHERE tgname = 'starling_capture'") == 0
            }
            for id in 41...60 { try await r1.execute("INSERT INTO items VALUES ($1, 1, 'wal')", [.int(id)]) }
            try await cluster.waitUntilConverged(["r1", "r2"], table: "items")
            #expect(try await r1.outboxDepth() == 0)
            #expect(try await Self.logged(cluster, from: "r1") == 60)
        }
    }

    @Test("where the server refuses starling_pgoutput, output_plugin: auto decodes with pgoutput and starling_pgoutput stops")
    func pluginRefusedFallsBackToPgoutput() async throws {
        // A cluster that does not list starling_pgoutput in output_plugin_libraries (PostgreSQL's default): an agent
        // asked for it stops with an error naming the setting and the fix; one on `auto` creates a pgoutput slot,
        // says so in its status, and replicates both ways (its applies decoded in full, as before the plugin).
        try await Self.withOwnCluster(try await TestPostgresCluster.start(name: "noplugin")) { cluster, region, base in
            var configuration = base
            configuration.capture = .wal
            configuration.outputPlugin = .starlingPgoutput
            try await Self.expectRefused(configuration) { error in
                error.message.contains("output_plugin_libraries") && error.key == "output_plugin"
            }
            #expect(try region.query("SELECT count(*) FROM pg_replication_slots")[0].int64(0) == 0)
            configuration.outputPlugin = .auto
            let fallback = try RunningAgent(configuration: configuration)
            try cluster.startAgent("r2", tune: Self.wal)
            try await cluster.waitUntilStarted("r2")
            try await waitUntil("r1 decodes with pgoutput") {
                try region.query("SELECT count(*) FROM pg_replication_slots WHERE plugin = 'pgoutput'")[0].int64(0) == 1
            }
            try region.execute("INSERT INTO items VALUES (1, 1, 'from r1')")
            try await cluster["r2"].execute("INSERT INTO items VALUES (2, 1, 'from r2')")
            try await waitUntil("both rows in both regions") {
                try await cluster["r2"].int("SELECT count(*) FROM items") == 2
                    && region.query("SELECT count(*) FROM items")[0].int64(0) == 2
            }
            try await waitUntil("/v1/status says why r1 decodes with pgoutput") {
                let reason = try await cluster.hub.status(of: "r1")["capture"]?["reason"]?.stringValue ?? ""
                return reason.contains("starling_pgoutput unavailable") && reason.contains("output_plugin_libraries")
            }
            #expect(try await Self.logged(cluster, from: "r1") == 1, "r2's row applied in r1 is not pushed back")
            try await fallback.stop()
        }
    }

    @Test("a slot on starling_pgoutput that the server stops loading reports the fix, and streams once it loads again")
    func pluginWithdrawnIsReported() async throws {
        // A server that loaded the plugin when the slot was made and stops listing it (an upgrade to 15.19 or later, a
        // changed setting): the agent's stream fails with an error in /v1/status naming the setting and the ways
        // out; listed again, the stream resumes and nothing is lost.
        try await Self.withOwnCluster(try await TestPostgresCluster.start(name: "withdrawn")) { cluster, region, base in
            // A list setting: its names unquoted (one quoted string would be one name).
            func list(_ names: String) throws {
                try region.execute("ALTER SYSTEM SET output_plugin_libraries = \(names)")
                try region.query("SELECT pg_reload_conf()")
            }
            try list("pgoutput, test_decoding, starling_pgoutput")
            var configuration = base
            configuration.capture = .wal
            let agent = try RunningAgent(configuration: configuration)
            try cluster.startAgent("r2", tune: Self.wal)
            try await cluster.waitUntilStarted("r2")
            try await waitUntil("r1 decodes with starling_pgoutput") {
                try region.query(
                    "SELECT count(*) FROM pg_replication_slots WHERE plugin = 'starling_pgoutput' AND active"
                )[0].int64(0) == 1
            }
            try list("pgoutput, test_decoding")
            try region.query(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE plugin = 'starling_pgoutput'")
            try region.execute("INSERT INTO items VALUES (1, 1, 'while withdrawn')")
            try await waitUntil("/v1/status names the fix") {
                let error = try await cluster.hub.status(of: "r1")["last_error"]?.stringValue ?? ""
                return error.contains("output_plugin_libraries") && error.contains("ops/decoder/install")
            }
            try list("pgoutput, test_decoding, starling_pgoutput")
            try await waitUntil("r2 has r1's row") {
                try await cluster["r2"].int("SELECT count(*) FROM items WHERE id = 1") == 1
            }
            try await agent.stop()
        }
    }

    @Test("without wal_level = logical, capture: wal is refused naming the setting and auto falls back to triggers")
    func fallbackWithoutLogicalDecoding() async throws {
        // Proves the fallback: on a cluster at wal_level = replica an agent asked for WAL capture stops with an
        // error naming wal_level and the fix, and one on `auto` installs capture triggers and replicates.
        try await Self.withOwnCluster(try await TestPostgresCluster.start(name: "replica", walLevel: "replica")) {
            cluster, region, base in
            var configuration = base
            configuration.capture = .wal
            try await Self.expectRefused(configuration) { error in
                error.code == .capture && error.message.contains("wal_level is replica")
            }
            configuration.capture = .auto
            let fallback = try RunningAgent(configuration: configuration)
            try cluster.startAgent("r2", tune: Self.wal)
            try await waitUntil("r1 installed its capture triggers") {
                try region.query("SELECT count(*) FROM pg_trigger WHERE tgname = 'starling_capture'")[0].int64(0) == 3
            }
            try region.execute("INSERT INTO items VALUES (1, 1, 'through the outbox')")
            try await waitUntil("r2 has r1's row") {
                try await cluster["r2"].int("SELECT count(*) FROM items") == 1
            }
            try await fallback.stop()
        }
    }
}
