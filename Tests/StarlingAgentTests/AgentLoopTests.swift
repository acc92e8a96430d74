import Logging
import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Synchronization
import Testing

/// A hub double for loop tests that need no conflict logic: it accepts every change in push order
/// (seq = position in its log), serves the log by cursor, and can be switched "down".
final class InMemoryHub: HubLink {
    private let state = Mutex<(log: [LogEntry], isDown: Bool, statuses: [String: AgentStatus])>(([], false, [:]))
    let tables: [String]

    init(tables: [String]) { self.tables = tables }

    func setDown(_ isDown: Bool) { state.withLock { $0.isDown = isDown } }
    var logCount: Int { state.withLock { $0.log.count } }

    /// One link per region (the token decides the region at a real hub).
    func link(region: String) -> any HubLink { RegionLink(hub: self, region: region) }

    func config() async throws(AgentError) -> HubConfig { throw AgentError(code: .hubRejected, message: "use link") }
    func register(_ tables: [TableShape]) async throws(AgentError) {}
    func push(_ changes: [Change]) async throws(AgentError) -> [Verdict] { [] }
    func pull(after: Int64, limit: Int, waitMs: Int) async throws(AgentError) -> PullPage { PullPage(entries: [], next: 0, head: 0) }
    func reportStatus(_ status: AgentStatus) async throws(AgentError) {}
    func reportDeadLetters(_ letters: [DeadLetter]) async throws(AgentError) {}

    fileprivate func checkUp() throws(AgentError) {
        if state.withLock({ $0.isDown }) { throw AgentError(code: .hubUnavailable, message: "down", isRetryable: true) }
    }

    fileprivate func append(_ changes: [Change]) -> [Verdict] {
        state.withLock { state in
            changes.map { change in
                if let existing = state.log.first(where: { $0.id == change.id }) {
                    return Verdict(id: change.id, outcome: .accepted(seq: existing.seq))
                }
                let seq = Int64(state.log.count + 1)
                state.log.append(
                    LogEntry(
                        seq: seq, origin: change.region, id: change.id, tx: change.tx, table: change.table,
                        op: change.op, key: change.key, row: change.after, hlc: change.hlc, kind: .change,
                        rewritten: false))
                return Verdict(id: change.id, outcome: .accepted(seq: seq))
            }
        }
    }

    fileprivate func page(after: Int64, limit: Int) -> PullPage {
        state.withLock { state in
            let entries = Array(state.log.dropFirst(Int(after)).prefix(limit))
            return PullPage(entries: entries, next: entries.last?.seq ?? after, head: Int64(state.log.count))
        }
    }

    fileprivate func record(_ status: AgentStatus, region: String) { state.withLock { $0.statuses[region] = status } }
    func status(of region: String) -> AgentStatus? { state.withLock { $0.statuses[region] } }
}

private struct RegionLink: HubLink {
    let hub: InMemoryHub
    let region: String

    func config() async throws(AgentError) -> HubConfig {
        try hub.checkUp()
        return HubConfig(region: region, tables: hub.tables.map { .init(name: $0, policy: "lww") })
    }
    func register(_ tables: [TableShape]) async throws(AgentError) { try hub.checkUp() }
    func push(_ changes: [Change]) async throws(AgentError) -> [Verdict] {
        try hub.checkUp()
        return hub.append(changes)
    }
    func pull(after: Int64, limit: Int, waitMs: Int) async throws(AgentError) -> PullPage {
        try hub.checkUp()
        let page = hub.page(after: after, limit: limit)
        if page.entries.isEmpty && waitMs > 0 { try? await Task.sleep(for: .milliseconds(min(waitMs, 20))) }
        return page
    }
    func reportStatus(_ status: AgentStatus) async throws(AgentError) {
        try hub.checkUp()
        hub.record(status, region: region)
    }
    func reportDeadLetters(_ letters: [DeadLetter]) async throws(AgentError) { try hub.checkUp() }
}

@Suite("Agent loop")
struct AgentLoopTests {
    static let ddl = "CREATE TABLE items (id bigint PRIMARY KEY, qty integer, note text)"

    /// Polls `condition` every 20 ms until it holds or `seconds` pass.
    static func eventually(seconds: Double = 20, _ condition: () throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
        while ContinuousClock.now < deadline {
            if try condition() { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return try condition()
    }

    /// The agent of `connection`'s region finished starting (schema, triggers, bootstrap): rows written before
    /// would be adopted as existing data rather than captured.
    static func isStarted(_ connection: PostgresConnection) throws -> Bool {
        try connection.query("SELECT to_regclass('starling.state') IS NOT NULL AS ok")[0].bool("ok")
            && connection.query(
                "SELECT count(*) > 0 AS ok FROM starling.state s WHERE to_jsonb(s)->>'bootstrapped_at' IS NOT NULL")[0]
                .bool("ok")
    }

    static func agent(_ region: String, _ database: TestDatabase, hub: InMemoryHub) throws -> Agent {
        var configuration = AgentConfiguration(region: region, hub: "http://unused", token: "t", database: database.url)
        configuration.tuning.backoff = .init(initialMs: 5, maxMs: 50)
        configuration.tuning.statusIntervalMs = 100
        configuration.tuning.pull.limit = 7
        var logger = Logger(label: "test.agent")
        logger.logLevel = .critical
        return Agent(configuration: configuration, hub: hub.link(region: region), schema: try AgentTestSupport.schema(),
                     logger: logger)
    }

    @Test("two regions converge through the loop, also after the hub was down", .timeLimit(.minutes(3)))
    func twoRegionsConverge() async throws {
        // Proves: capture → push → pull → apply end to end; while the hub is down writes queue in the outbox
        // (reported depth) and drain once it is back; both regions end identical.
        try await TestDatabase.with { a in
            try await TestDatabase.with { b in
                let hub = InMemoryHub(tables: ["public.items"])
                let connA = try a.connect()
                let connB = try b.connect()
                try connA.executeScript(Self.ddl)
                try connB.executeScript(Self.ddl)
                let agentA = try Self.agent("a", a, hub: hub)
                let agentB = try Self.agent("b", b, hub: hub)
                async let runA: Void = agentA.run()
                async let runB: Void = agentB.run()
                #expect(try await Self.eventually { agentA.progress.isRunning && agentB.progress.isRunning })
                #expect(try await Self.eventually { try Self.isStarted(connA) && Self.isStarted(connB) })
                for id in 1...20 {
                    try connA.execute("INSERT INTO items VALUES ($1, $2, 'from a')", [.int(id), .int(id)])
                }
                try connA.executeScript("BEGIN; UPDATE items SET qty = qty + 100 WHERE id <= 10; COMMIT")
                try connB.execute("INSERT INTO items VALUES (100, 1, 'from b')")
                let sameContents = {
                    try AgentTestSupport.fingerprint("items", orderBy: "id", connA)
                        == AgentTestSupport.fingerprint("items", orderBy: "id", connB)
                        && connA.query("SELECT count(*) AS n FROM items")[0].int64("n") == 21
                }
                #expect(try await Self.eventually(sameContents))
                hub.setDown(true)
                try connB.execute("UPDATE items SET note = 'b was here' WHERE id = 5")
                try connB.execute("DELETE FROM items WHERE id = 6")
                #expect(try await Self.eventually {
                    try AgentStore(region: "b").outboxDepth(connection: connB) == 2 && agentB.progress.lastError != nil
                })
                hub.setDown(false)
                #expect(try await Self.eventually {
                    try sameContents() == false
                        && AgentTestSupport.fingerprint("items", orderBy: "id", connA)
                            == AgentTestSupport.fingerprint("items", orderBy: "id", connB)
                        && connA.query("SELECT count(*) AS n FROM items")[0].int64("n") == 20
                })
                #expect(try await Self.eventually { hub.status(of: "b")?.outboxDepth == 0 })
                #expect(try AgentStore(region: "a").outboxDepth(connection: connA) == 0)
                agentA.stop()
                agentB.stop()
                try await runA
                try await runB
                connA.close()
                connB.close()
            }
        }
    }

    @Test("after a bulk push the agent vacuums its outbox; apply functions probe indexes", .timeLimit(.minutes(3)))
    func outboxIsVacuumedAfterBulkPush() async throws {
        // Proves the agent vacuums starling.outbox itself once it removed OutboxVacuum's threshold of rows
        // (autovacuum comes at most once a minute; until then reading the next batch stepped over every dead
        // index entry of a bulk load).
        try await TestDatabase.with { a in
            let hub = InMemoryHub(tables: ["public.items"])
            let connection = try a.connect()
            try connection.executeScript(Self.ddl)
            let agent = try Self.agent("a", a, hub: hub)
            async let run: Void = agent.run()
            // Written once the agent finished starting (triggers installed, bootstrap done): rows written earlier
            // would be adopted as existing data instead of captured.
            #expect(try await Self.eventually { try Self.isStarted(connection) })
            try connection.execute("INSERT INTO items SELECT g, g, 'bulk' FROM generate_series(1, 6000) g")
            #expect(try await Self.eventually { try AgentStore(region: "a").outboxDepth(connection: connection) == 0 })
            #expect(try await Self.eventually(seconds: 60) { agent.progress.outboxVacuums > 0 })
            // The apply functions plan with index probes only (stale statistics after such a bulk load made the
            // planner hash the whole versions table for a batch of a few entries).
            let settings = try connection.query(
                "SELECT coalesce(array_to_string(proconfig, ','), '') AS c FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    + "WHERE n.nspname = 'starling' AND p.proname LIKE 'apply\\_%'")
            #expect(settings.count == 2)
            for row in settings {
                let config = try row.string("c")
                #expect(config.contains("enable_hashjoin=off") && config.contains("enable_seqscan=off"), "\(config)")
            }
            agent.stop()
            try await run
            connection.close()
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
