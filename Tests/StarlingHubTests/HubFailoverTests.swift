import Foundation
import Glibc
import Logging
import StarlingCore
import StarlingHTTP2
import StarlingHub
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Two in-process hubs over one database: one active, one standby.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct HubFailoverTests {
    /// Starts two hubs on one fresh database (the first becomes active), runs `body`, shuts both down.
    private func withTwoHubs(_ body: (HubHarness, HubHarness) async throws -> Void) async throws {
        try await TestDatabase.with { database in
            var logger = Logger(label: "test.hub.failover")
            logger.logLevel = .critical
            let configuration = HubHarness.configuration(database: database.url, tables: HubHarness.defaultTables)
            var harnesses: [HubHarness] = []
            do {
                for _ in 0..<2 {
                    let hub = try Hub(configuration: configuration, logger: logger)
                    try await hub.start()
                    let port = hub.localAddress?.port ?? 0
                    let client = try HTTP2Client(
                        configuration: HTTP2ClientConfiguration(baseURL: "http://127.0.0.1:\(port)"))
                    harnesses.append(HubHarness(hub: hub, database: database, client: client))
                }
                let runs = harnesses.map { harness in Task { await harness.hub.run() } }
                defer { for run in runs { run.cancel() } }
                try await body(harnesses[0], harnesses[1])
            } catch {
                await Self.stop(harnesses)
                throw error
            }
            await Self.stop(harnesses)
        }
    }

    private static func stop(_ harnesses: [HubHarness]) async {
        for harness in harnesses {
            harness.client.shutdown()
            await harness.hub.shutdown(gracePeriod: .seconds(1))
        }
    }

    /// Terminates the backend that holds the sequencer lock of `database` (the active hub's lock session).
    /// Advisory locks are per database; other suites' hubs on the same cluster hold the same key in theirs.
    private func terminateLockSession(_ database: TestDatabase) async throws {
        let url = database.url
        let terminated = try await Task.detached {
            let connection = try PostgresConnection.connect(url: url)
            defer { connection.close() }
            return try connection.query(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = 21332 "
                    + "AND objid = 1 AND objsubid = 2 AND granted "
                    + "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            ).rowCount
        }.value
        #expect(terminated == 1)
    }

    /// The backend PID holding the sequencer lock of `database`.
    private func lockHolderPID(_ database: TestDatabase) async throws -> Int32 {
        let url = database.url
        return try await Task.detached {
            let connection = try PostgresConnection.connect(url: url)
            defer { connection.close() }
            return Int32(
                try connection.query(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 21332 AND objid = 1 "
                        + "AND objsubid = 2 AND granted "
                        + "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )[0].int64(0))
        }.value
    }

    @Test func standbyRefusesWritesAndReportsItsRole() async throws {
        // Proves a second hub starts as a standby that answers health, readiness and status with its role, refuses
        // every write with 503 `standby`, and stores nothing, while the active hub accepts the same push.
        try await withTwoHubs { active, standby in
            #expect(active.hub.isActive && !standby.hub.isActive)
            let before = try await active.counts()
            let refused = try await standby.push("r1", [Changes.insert("r1", 1, id: 1)])
            #expect(refused.status == 503)
            #expect(refused.json["error"]?["code"] == "standby")
            let pull = try await standby.pull("r2", after: 0)
            #expect(pull.status == 503 && pull.json["error"]?["code"] == "standby")
            let resolve = try await standby.admin("POST", "/v1/conflicts/1/resolve", body: ["pick": "current"])
            #expect(resolve.status == 503)
            #expect(try await active.counts() == before)

            let health = try await standby.send("GET", "/healthz", token: nil)
            #expect(health.status == 200 && health.json["role"] == "standby")
            #expect(try await standby.send("GET", "/readyz", token: nil).status == 503)
            #expect(try await active.send("GET", "/readyz", token: nil).json["role"] == "active")
            let status = try await standby.admin("GET", "/v1/status")
            #expect(status.status == 200 && status.json["role"] == "standby")
            #expect(try await active.admin("GET", "/v1/status").json["role"] == "active")
            let metrics = try await standby.metrics()
            let text = String(decoding: metrics.body, as: UTF8.self)
            #expect(text.contains(#"starling_hub_role{role="standby"} 1"#))

            let accepted = try await active.push("r1", [Changes.insert("r1", 1, id: 1)])
            #expect(accepted.status == 200 && accepted.json["results"]?[0]?["seq"] == 1)
        }
    }

    /// Terminates the lock session of `active`, waits until it stepped down and one hub is active again;
    /// returns (the active hub, the other one). Either may win the lock: the stepped-down hub polls too.
    private func failover(from active: HubHarness, _ hubs: [HubHarness], fencings: Int64) async throws
        -> (HubHarness, HubHarness)
    {
        try await terminateLockSession(active.database)
        try await waitUntil("the hub stepped down and one hub is active") {
            let fenced = try await active.admin("GET", "/v1/status").json["fencings"]?.int64Value ?? 0
            return fenced == fencings && hubs.filter { $0.hub.isActive }.count == 1
        }
        let winner = try #require(hubs.first(where: { $0.hub.isActive }))
        let loser = try #require(hubs.first(where: { !$0.hub.isActive }))
        return (winner, loser)
    }

    @Test func lostLockSessionStepsDownAndAHubTakesOver() async throws {
        // Proves the fence: when the active hub's lock session is terminated it stops sequencing and steps down,
        // a hub takes over with the counters re-read from the database (seq continues: no gap, no reuse) and the
        // other refuses writes with 503 standby; twice in a row.
        try await withTwoHubs { first, second in
            let pushed = try await first.push("r1", [Changes.insert("r1", 1, id: 1), Changes.insert("r1", 2, id: 2)])
            #expect(pushed.json["results"]?[1]?["seq"] == 2)

            var (active, standby) = try await failover(from: first, [first, second], fencings: 1)
            let refused = try await standby.push("r1", [Changes.insert("r1", 3, id: 3)])
            #expect(refused.status == 503 && refused.json["error"]?["code"] == "standby")
            let taken = try await active.push("r2", [Changes.insert("r2", 1, id: 10)])
            #expect(taken.status == 200 && taken.json["results"]?[0]?["seq"] == 3)
            let status = try await active.admin("GET", "/v1/status")
            #expect(status.json["head"] == 3 && status.json["role"] == "active")
            #expect(status.json["last_takeover_seconds"]?.numberText != nil)

            let fencings: Int64 = active.hub === first.hub ? 2 : 1
            (active, standby) = try await failover(from: active, [first, second], fencings: fencings)
            #expect(try await standby.push("r1", [Changes.insert("r1", 3, id: 3)]).status == 503)
            let again = try await active.push("r1", [Changes.insert("r1", 3, id: 3)])
            #expect(again.status == 200 && again.json["results"]?[0]?["seq"] == 4)
            #expect(try await first.counts()[0] == 4)
        }
    }

    @Test(.timeLimit(.minutes(3))) func unansweredLockSessionStepsDownAndNobodyWrites() async throws {
        // Proves the fence when the lock session hangs instead of dying (a network cut, here a SIGSTOPped
        // backend): the active hub steps down once its lock check goes unanswered, the standby cannot take the
        // lock the frozen session still holds, so both refuse writes; when the session answers again a hub
        // becomes active and seq continues.
        try await withTwoHubs { first, second in
            #expect(try await first.push("r1", [Changes.insert("r1", 1, id: 1)]).json["results"]?[0]?["seq"] == 1)
            let pid = try await lockHolderPID(first.database)
            #expect(kill(pid, SIGSTOP) == 0)
            do {
                try await waitUntil("the first hub stepped down", timeout: .seconds(30)) { !first.hub.isActive }
                #expect(!second.hub.isActive)
                #expect(try await first.push("r1", [Changes.insert("r1", 2, id: 2)]).status == 503)
                #expect(try await second.push("r1", [Changes.insert("r1", 2, id: 2)]).status == 503)
            } catch {
                kill(pid, SIGCONT)
                throw error
            }
            kill(pid, SIGCONT)
            try await waitUntil("a hub is active again") { first.hub.isActive || second.hub.isActive }
            let active = first.hub.isActive ? first : second
            let pushed = try await active.push("r1", [Changes.insert("r1", 2, id: 2)])
            #expect(pushed.status == 200 && pushed.json["results"]?[0]?["seq"] == 2)
        }
    }
}
