import StarlingCore
import StarlingHub
import StarlingTestSupport
import Synchronization
import Testing

/// `POST /v1/admin/reload` replaces the synced tables while the hub runs; a file that does not validate changes
/// nothing and the answer names the key; keys that need a restart are reported, not applied.
@Suite(.timeLimit(.minutes(2)))
struct HubReloadTests {
    /// What "the file" says at the next reload: a configuration, or the loader's error.
    final class FileStandIn: Sendable {
        let content: Mutex<Result<HubConfiguration, HubError>>
        init(_ configuration: HubConfiguration) { content = Mutex(.success(configuration)) }
        func set(_ value: Result<HubConfiguration, HubError>) { content.withLock { $0 = value } }
        func read() throws(HubError) -> HubConfiguration { try content.withLock { $0 }.get() }
    }

    private func configTables(_ harness: HubHarness) async throws -> [String] {
        let response = try await harness.send("GET", "/v1/config", token: HubHarness.token("r1"))
        #expect(response.status == 200)
        return (response.json["tables"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
    }

    private func reload(_ harness: HubHarness) async throws -> (status: Int, json: JSONValue) {
        try await harness.send("POST", "/v1/admin/reload", token: HubHarness.adminToken)
    }

    @Test func tablesJoinAndLeaveAndABadFileKeepsTheRunningOnes() async throws {
        // Proves: a table added to the file is synced after a reload (config, push), a file with a bad policy or
        // one that cannot be read is refused naming the key and changes nothing, a removed table is refused in
        // pushes, and only a region admin token may reload.
        try await TestDatabase.with { database in
            let items = HubConfiguration.Table(name: "public.items", policy: "lww")
            let notes = HubConfiguration.Table(name: "public.notes", policy: "merge")
            let initial = HubHarness.configuration(database: database.url, tables: [items])
            let file = FileStandIn(initial)
            try await HubHarness.run(initial, on: database, configurationSource: { () throws(HubError) in try file.read() }) {
                harness in
                #expect(try await configTables(harness) == ["public.items"])
                let forbidden = try await harness.send("POST", "/v1/admin/reload", token: HubHarness.token("r1"))
                #expect(forbidden.status == 403)

                var next = initial
                next.tables = [items, notes]
                file.set(.success(next))
                let added = try await reload(harness)
                #expect(added.status == 200)
                #expect(added.json["added"] == ["public.notes"] && added.json["removed"] == [])
                #expect(added.json["restart_required"] == [])
                #expect(try await configTables(harness) == ["public.items", "public.notes"])
                let push = try await harness.push("r1", [Changes.insert("r1", 1, table: "public.notes", id: 1)])
                #expect(push.status == 200)

                var bad = next
                bad.tables = [items, .init(name: "public.notes", policy: "bogus")]
                file.set(.success(bad))
                let refused = try await reload(harness)
                #expect(refused.status == 400)
                #expect(refused.json["error"]?["code"] == "invalid_configuration")
                let message = refused.json["error"]?["message"]?.stringValue ?? ""
                #expect(message.contains("tables[1].policy"), "\(message)")
                file.set(.failure(HubError(code: .invalidConfiguration, message: "hub.yaml is not valid YAML: line 3")))
                let unreadable = try await reload(harness)
                #expect(unreadable.status == 400)
                #expect(unreadable.json["error"]?["message"]?.stringValue?.contains("not valid YAML") == true)
                #expect(try await configTables(harness) == ["public.items", "public.notes"])

                var restart = initial
                restart.limits.maxPullLimit = 4000
                file.set(.success(restart))
                let removed = try await reload(harness)
                #expect(removed.status == 200)
                #expect(removed.json["removed"] == ["public.notes"] && removed.json["restart_required"] == ["limits"])
                #expect(try await configTables(harness) == ["public.items"])
                let refusedPush = try await harness.push("r1", [Changes.insert("r1", 2, table: "public.notes", id: 2)])
                #expect(refusedPush.status == 400)
                #expect(refusedPush.json["error"]?["message"]?.stringValue?.contains("is not synced") == true)
            }
        }
    }

    @Test func aHubWithoutAFileRefusesToReload() async throws {
        // Proves: a hub started from a configuration value (no file) answers a reload with 400 saying so.
        try await HubHarness.with { harness in
            let response = try await reload(harness)
            #expect(response.status == 400)
            #expect(response.json["error"]?["message"]?.stringValue?.contains("not started from a configuration file") == true)
        }
    }
}
