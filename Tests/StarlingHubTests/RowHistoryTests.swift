import StarlingCore
import StarlingHub
import StarlingTestSupport
import Testing

/// `GET /v1/rows/{table}`: a row's metadata and history from the hub (DESIGN.md "Engine v2", row metadata).
@Suite(.timeLimit(.minutes(2)))
struct RowHistoryTests {
    @Test func versionSourceHistoryAndConflictsOfOneKey() async throws {
        // Proves: the head's seq, origin and commit time come back as version, source region and last sync
        // time; the key's entries newest first (other keys left out); its conflict; 404 for a table that is not
        // synced, 400 for a key that is not an object, 401 without the admin token.
        try await HubHarness.with { hub in
            _ = try await hub.push("r1", [Changes.insert("r1", 1, id: 7, row: ["note": "first"], hlc: 1000)])
            _ = try await hub.push("r2", [Changes.insert("r2", 1, id: 8, hlc: 1001)])
            _ = try await hub.push(
                "r2", [Changes.update("r2", 2, id: 7, before: ["note": "first"], after: ["note": "second"], base: 1, hlc: 1002)])
            // r1 writes again on seq 1 without having seen seq 3: a conflict (lww, the later HLC wins).
            _ = try await hub.push(
                "r1", [Changes.update("r1", 2, id: 7, before: ["note": "first"], after: ["note": "third"], base: 1, hlc: 1003)])

            let answer = try await hub.admin("GET", "/v1/rows/public.items?key=%7B%22id%22%3A7%7D")
            #expect(answer.status == 200)
            let body = answer.json
            #expect(body["version"] == 4 && body["source_region"] == "r1")
            #expect(body["last_sync_time"]?.stringValue?.hasSuffix("Z") == true)
            #expect(body["head"]?["row"]?["note"] == "third")
            let history = try #require(body["history"]?.arrayValue)
            #expect(history.compactMap { $0["seq"]?.int64Value } == [4, 3, 1])
            #expect(history.first?["id"] == "r1:2")
            #expect(body["conflicts"]?.arrayValue?.count == 1)
            #expect(body["conflicts"]?[0]?["incoming"]?["id"] == "r1:2")

            let limited = try await hub.admin("GET", "/v1/rows/public.items?key=%7B%22id%22%3A7%7D&limit=1")
            #expect(limited.json["history"]?.arrayValue?.count == 1)
            let unknown = try await hub.admin("GET", "/v1/rows/public.items?key=%7B%22id%22%3A99%7D")
            #expect(unknown.status == 200 && unknown.json["head"] == .null && unknown.json["version"] == .null)
            #expect(try await hub.admin("GET", "/v1/rows/public.nope?key=%7B%22id%22%3A7%7D").status == 404)
            #expect(try await hub.admin("GET", "/v1/rows/public.items?key=7").status == 400)
            #expect(try await hub.admin("GET", "/v1/rows/public.items").status == 400)
            #expect(try await hub.send("GET", "/v1/rows/public.items?key=%7B%7D", token: nil).status == 401)
        }
    }

    @Test func adminHistoryPrintsTheRow() async throws {
        // Proves `starling admin history TABLE KEY` (the real binary) prints version, source region and the
        // history, `--json` the hub's document, and exits 4 for a table that is not synced.
        try await OperatorHub.with { hub in
            _ = try await hub.seed()
            let text = try await AdminCLITests.admin(hub, ["history", "public.items", #"{"id": 1}"#])
            #expect(text.exitCode == 0, "\(text.transcript)")
            #expect(text.stdout.contains("version 2 from r2") && text.stdout.contains("1 conflicts:"), "\(text.stdout)")
            let json = try await AdminCLITests.admin(hub, ["history", "public.items", #"{"id": 1}"#, "--json"])
            #expect(try JSONValue(parsing: Array(json.stdout.utf8))["history"]?.arrayValue?.count == 2)
            let missing = try await AdminCLITests.admin(hub, ["history", "public.nope", #"{"id": 1}"#])
            #expect(missing.exitCode == 4, "\(missing.transcript)")
        }
    }
}
