import StarlingCore
import StarlingHTTP2
import StarlingHub
import Testing

@Suite(.timeLimit(.minutes(2)))
struct HubRefusalTests {
    @Test func refusedRequestsChangeNothing() async throws {
        // Proves malformed, invalid, oversized, unauthenticated, wrong-token and foreign-id pushes are refused
        // with the right status and leave the head and every table unchanged.
        var limits = HubConfiguration.Limits()
        limits.maxBodyBytes = 4096
        try await HubHarness.with(limits: limits) { hub in
            _ = try await hub.push("r1", [Changes.insert("r1", 1, id: 1)])
            let before = try await hub.counts()
            let head = hub.hub.head

            let malformed = try await hub.send(
                "POST", "/v1/changes", token: HubHarness.token("r1"), body: Array("{\"changes\":[".utf8))
            #expect(malformed.status == 400)
            #expect(malformed.json["error"]?["code"] == "malformed_json")

            let bad = try await hub.push(
                "r1",
                [
                    Changes.insert("r1", 2, id: 2),
                    [
                        "id": "r1:3", "tx": "t", "table": "public.items", "op": "insert", "key": ["id": 3], "base": 0,
                        "hlc": 1,
                    ],
                ])
            #expect(bad.status == 400)
            #expect(bad.json["error"]?["message"]?.stringValue?.hasPrefix("changes[1]") == true)

            let unsynced = try await hub.push("r1", [Changes.insert("r1", 4, table: "public.other", id: 4)])
            #expect(unsynced.status == 400)

            let big = (0..<60).map {
                Changes.insert("r1", 10 + $0, id: Int64(10 + $0), row: ["pad": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"])
            }
            let oversized = try await hub.push("r1", big)
            #expect(oversized.status == 413)

            let anonymous = try await hub.send("POST", "/v1/changes", token: nil, body: Array(#"{"changes":[]}"#.utf8))
            #expect(anonymous.status == 401)
            let wrong = try await hub.send(
                "POST", "/v1/changes", token: "not-a-token", body: Array(#"{"changes":[]}"#.utf8))
            #expect(wrong.status == 401)
            #expect(wrong.json["error"]?["code"] == "unauthorized")

            let regionOnAdmin = try await hub.send("GET", "/v1/status", token: HubHarness.token("r1"))
            #expect(regionOnAdmin.status == 403)
            let adminOnRegion = try await hub.send("GET", "/v1/changes?after=0", token: HubHarness.adminToken)
            #expect(adminOnRegion.status == 403)

            let foreign = try await hub.push("r1", [Changes.insert("r2", 9, id: 9)])
            #expect(foreign.status == 403)
            #expect(foreign.json["error"]?["code"] == "forbidden_region")

            #expect(try await hub.counts() == before)
            #expect(hub.hub.head == head)
        }
    }

    @Test func oneLargeTransactionIsAcceptedWholeSeveralAreNot() async throws {
        // Proves a push of one origin transaction larger than max_push_changes is committed whole (agents never
        // split a transaction, so refusing it stopped that region's replication for good), while a push that large
        // mixing transactions, or one transaction above max_transaction_changes, is refused with 413 and stores
        // nothing.
        var limits = HubConfiguration.Limits()
        limits.maxPushChanges = 10
        limits.maxTransactionChanges = 40
        try await HubHarness.with(limits: limits) { hub in
            func transaction(_ ids: Range<Int>, tx: (Int) -> String) -> [JSONValue] {
                ids.map { n in
                    guard case .object(var change) = Changes.insert("r1", n, id: Int64(n)) else { return .null }
                    change["tx"] = .string(tx(n))
                    return .object(change)
                }
            }
            let mixed = try await hub.push("r1", transaction(0..<25) { "r1:tx\($0 % 2)" })
            #expect(mixed.status == 413)
            #expect(mixed.json["error"]?["code"] == "too_many_changes")
            let tooLarge = try await hub.push("r1", transaction(100..<141) { _ in "r1:big" })
            #expect(tooLarge.status == 413)
            #expect(hub.hub.head == 0)

            let whole = try await hub.push("r1", transaction(200..<240) { _ in "r1:whole" })
            #expect(whole.status == 200)
            let results = whole.json["results"]?.arrayValue ?? []
            #expect(results.count == 40)
            #expect(results.allSatisfy { $0["status"] == "accepted" })
            let page = try await hub.pull("r2", after: 0, limit: 100)
            #expect(page.json["entries"]?.arrayValue?.count == 40)
        }
    }
}
