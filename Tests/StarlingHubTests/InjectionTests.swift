import Foundation
import StarlingCore
import StarlingHub
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Identifiers and values that look like SQL injection, in pushed changes, in query strings and in hub.yaml:
/// refused with a 4xx or stored and served back byte for byte; the hub's own tables are never touched.
@Suite(.timeLimit(.minutes(2)))
struct InjectionTests {
    static let hostileStrings: [String] = [
        "'; DROP TABLE starling_hub.log; --", #"" OR 1=1 --"#, #"back\slash\\ and \"quote\""#, "semi;colon;",
        "$1 $$dollar$$ E'\\x00'", "nul\u{0}byte", "\u{0}", "ünïcödé 🦤", "%s%n%x", "line\nbreak\r\ttab",
    ]

    @Test func hostileColumnNamesAndValuesRoundTrip() async throws {
        // Proves row images whose column names and values hold quotes, semicolons, backslashes, NUL bytes and
        // SQL are stored and pulled back exactly (or refused 400), never a 5xx, and the log table survives.
        try await HubHarness.with { hub in
            var row: JSONObject = [:]
            for (index, text) in Self.hostileStrings.enumerated() {
                row["c\(index) \(text)"] = .string(text)
            }
            let pushed = try await hub.push("r1", [Changes.insert("r1", 1, id: 1, row: row)])
            #expect(pushed.status == 200, "\(pushed.json)")
            if pushed.status == 200 {
                #expect(pushed.json["results"]?[0]?["status"] == "accepted")
                let pulled = try await hub.pull("r2", after: 0)
                var expected = row
                expected["id"] = .integer(1)
                #expect(pulled.json["entries"]?[0]?["row"] == .object(expected))
            } else {
                #expect(pushed.json["error"]?["code"] != nil)
            }
            let counts = try await hub.counts()
            #expect(counts[0] == (pushed.status == 200 ? 1 : 0))
        }
    }

    @Test(arguments: hostileStrings)
    func hostileKeysAndIdentifiers(text: String) async throws {
        // Proves a hostile string as a key value, key column or tx is stored and served back exactly; as a
        // change id suffix it is refused 400 (ids are `<region>:<n>`); as a table name refused as not synced.
        try await HubHarness.with { hub in
            var badID: JSONValue = Changes.insert("r1", 1, id: 1)
            if case .object(var object) = badID {
                object["id"] = .string("r1:\(text)")
                badID = .object(object)
            }
            let refused = try await hub.push("r1", [badID])
            #expect(refused.status == 400)
            #expect(refused.json["error"]?["code"] == "invalid_change")
            let change: JSONValue = [
                "id": "r1:7", "tx": .string("r1:\(text)"), "table": "public.items", "op": "insert",
                "key": [text: .string(text)], "after": [text: .string(text), "v": .string(text)], "base": 0, "hlc": 5,
            ]
            let pushed = try await hub.push("r1", [change])
            // NUL cannot be stored in Postgres text (tx, key column names): refused up front, naming the field.
            // Regression: it used to reach the sequencer and fail the whole group-commit batch with a 5xx.
            let hasNUL = text.utf8.contains(0)
            #expect(pushed.status == (hasNUL ? 400 : 200), "\(pushed.json)")
            if hasNUL { #expect(pushed.json["error"]?["code"] == "invalid_change") }
            if pushed.status == 200 {
                let pulled = try await hub.pull("r2", after: 0)
                let entry = pulled.json["entries"]?[0]
                #expect(entry?["key"] == [text: .string(text)])
                #expect(entry?["tx"] == .string("r1:\(text)"))
                #expect(entry?["row"]?["v"] == .string(text))
                let again = try await hub.push("r1", [change])
                #expect(again.json["results"]?[0]?["seq"] == pushed.json["results"]?[0]?["seq"])
            }
            var table = change.objectValue ?? [:]
            table["table"] = .string("public.items\(text)")
            table["id"] = "r1:other"
            let unsynced = try await hub.push("r1", [.object(table)])
            #expect(unsynced.status == 400)
            #expect(try await hub.counts()[0] == (pushed.status == 200 ? 1 : 0))
        }
    }

    @Test func hostileQueryParametersAreRefused() async throws {
        // Proves query parameters carrying SQL get 400 (they are parsed as integers or enumerations, never
        // pasted into SQL), and that path parameters of the resolve route are checked the same way.
        try await HubHarness.with { hub in
            for query in ["after=0;DROP%20TABLE%20x", "after=0%27", "limit=1%20OR%201=1", "wait_ms=-1"] {
                let answer = try await hub.send("GET", "/v1/changes?\(query)", token: HubHarness.token("r1"))
                #expect(answer.status == 400, "\(query): \(answer.status)")
            }
            for query in ["status=open%27--", "after=1;select", "limit=x"] {
                let answer = try await hub.admin("GET", "/v1/conflicts?\(query)")
                #expect(answer.status == 400, "\(query): \(answer.status)")
            }
            let resolve = try await hub.admin("POST", "/v1/conflicts/1%3BDROP/resolve", body: ["pick": "current"])
            #expect((400..<500).contains(resolve.status))
            #expect(try await hub.counts() == [0, 0, 0, 0, 0])
        }
    }

    @Test(arguments: [
        #"public."x; drop table y""#, "public.items; drop table starling_hub.log", "public.it'ems", "public.it\"ems",
        "public.items --", "public. items", "public.items\u{0}", "items", "a.b.c", "public.1items",
    ])
    func hostileTableNamesInConfigurationAreRefused(name: String) {
        // Proves a hub.yaml table name that is not a plain schema.table identifier pair is refused, naming the key.
        let configuration = HubConfiguration(
            database: "postgresql://x", adminToken: "admin-token", regions: [.init(name: "a", token: "token-a1")],
            tables: [.init(name: "public.ok"), .init(name: name)])
        #expect(throws: HubError.self) { try configuration.validate() }
        #expect((try? configuration.validate()) == nil)
        do {
            _ = try configuration.validate()
        } catch {
            #expect(error.key == "tables[1].name")
        }
    }

    @Test(arguments: ["us'east", "us east", "us;east", "us\"east", "", String(repeating: "a", count: 65)])
    func hostileRegionNamesInConfigurationAreRefused(name: String) {
        // Proves region names (which end up in SQL parameters, metric labels and logs) are restricted.
        let configuration = HubConfiguration(
            database: "postgresql://x", adminToken: "admin-token", regions: [.init(name: name, token: "token-a1")],
            tables: [])
        do {
            _ = try configuration.validate()
            Issue.record("accepted region name \(name)")
        } catch {
            #expect(error.key == "regions[0].name")
        }
    }

    static let yamlSamples: [(String, Int32, String?)] = [
        ("Tests/StarlingHubTests/Fixtures/hub-rotation.yaml", 0, nil),
        ("Tests/StarlingHubTests/Fixtures/hub-rotation-bad-until.yaml", 2, "regions[0].previous_tokens[0].until"),
        ("Tests/StarlingHubTests/Fixtures/hub-injection-table.yaml", 2, "tables[1].name"),
    ]

    @Test(arguments: yamlSamples)
    func securityYAMLSamplesWithTheRealBinary(_ path: String, _ exitCode: Int32, _ key: String?) async throws {
        // Proves the rotation and hostile-name samples go through Yams and validation as expected.
        let result = try await ProcessRunner.run(
            try StarlingBinary.path(), ["hub", "--check", "--config", repositoryRoot + "/" + path])
        #expect(result.exitCode == exitCode, "\(result.transcript)")
        if let key { #expect(result.stderr.contains(key), "\(result.transcript)") }
    }
}
