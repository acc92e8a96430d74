import StarlingCore
import StarlingHub
import Testing

/// Bugs schemathesis found, each pinned by a direct test.
@Suite(.timeLimit(.minutes(2)))
struct ContractRegressionTests {
    @Test func malformedDeadLetterIsRefused() async throws {
        // Proves a dead-letter report with seq -1, an entry that is not an object or a sqlstate that is not a
        // string gets 400 and stores nothing
        // (it used to be stored, and GET /v1/conflicts then served seq/base -1 against its own schema).
        try await HubHarness.with { hub in
            let before = try await hub.counts()
            let letter: JSONObject = [
                "id": 1, "seq": 3, "table": "public.items", "entry": ["seq": 3], "error": "unique violation",
            ]
            var negative = letter
            negative["seq"] = -1
            var scalar = letter
            scalar["entry"] = "not an object"
            var sqlState = letter
            sqlState["sqlstate"] = [:]
            for bad in [negative, scalar, sqlState] {
                let body: JSONValue = ["dead_letters": [.object(bad)]]
                let answer = try await hub.send(
                    "POST", "/v1/dead-letters", token: HubHarness.token("r1"), body: body.serialized())
                #expect(answer.status == 400)
                #expect(answer.json["error"]?["code"] == "invalid_request")
            }
            #expect(try await hub.counts() == before)
            let good: JSONValue = ["dead_letters": [.object(letter)]]
            let accepted = try await hub.send(
                "POST", "/v1/dead-letters", token: HubHarness.token("r1"), body: good.serialized())
            #expect(accepted.status == 200)
            let conflicts = try await hub.admin("GET", "/v1/conflicts?status=all")
            #expect(conflicts.json["conflicts"]?[0]?["current"]?["seq"]?.int64Value.map { $0 >= 0 } == true)
        }
    }
}
