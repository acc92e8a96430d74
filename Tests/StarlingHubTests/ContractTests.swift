import Foundation
import StarlingCore
import StarlingHub
import StarlingTestSupport
import Testing

/// schemathesis against a live hub from the hub's own `/openapi.json`, with region and admin tokens.
///
/// schemathesis speaks HTTP/1.1 (`requests`) and the hub HTTP/2 only, so the fixture runs a test-only
/// HTTP/1.1 → HTTP/2 forwarding proxy (httpx with h2) in front of the in-process h2c hub; see
/// `Fixtures/contract/run_schemathesis.py`. The venv comes from `ops/test` (`STARLING_VENV`).
@Suite(.timeLimit(.minutes(5)))
struct ContractTests {
    @Test func schemathesisFindsNoServerErrorOrSchemaBreak() async throws {
        // Proves that for generated requests to every documented operation the hub answers no 5xx, only
        // documented statuses and content types, and bodies that match its OpenAPI schemas.
        guard let venv = ProcessInfo.processInfo.environment["STARLING_VENV"] else {
            Issue.record("STARLING_VENV is not set: run the suite with ops/test (it creates the schemathesis venv)")
            return
        }
        let script = repositoryRoot + "/Tests/StarlingHubTests/Fixtures/contract/run_schemathesis.py"
        let examples = ProcessInfo.processInfo.environment["STARLING_CONTRACT_EXAMPLES"] ?? "25"
        // Long polls are capped at 500 ms here so a generated wait_ms cannot outlast schemathesis's timeout.
        var limits = HubConfiguration.Limits()
        limits.maxWaitMs = 500
        try await HubHarness.with(limits: limits) { hub in
            // Some data so pulls, status and conflicts have entries to describe.
            _ = try await hub.push("r1", [Changes.insert("r1", 1, id: 1, row: ["qty": 1])])
            _ = try await hub.push("r2", [Changes.insert("r2", 1, id: 1, row: ["qty": 2], hlc: 2000)])
            _ = try await hub.push("r1", [Changes.insert("r1", 2, table: "public.manual", id: 1)])
            _ = try await hub.push("r2", [Changes.insert("r2", 2, table: "public.manual", id: 1)])
            let port = hub.hub.localAddress?.port ?? 0
            let result = try await ProcessRunner.run(
                venv + "/bin/python",
                [script, "http://127.0.0.1:\(port)", HubHarness.token("r1"), HubHarness.adminToken, examples],
                timeout: .seconds(240))
            if let output = ProcessInfo.processInfo.environment["STARLING_TEST_OUTPUT"] {
                try? result.transcript.write(toFile: output + "/schemathesis.txt", atomically: true, encoding: .utf8)
            }
            #expect(result.exitCode == 0, "\(result.transcript)")
            #expect(result.stdout.components(separatedBy: "Tested: ").count == 3, "both runs tested operations")
            #expect(try await hub.send("GET", "/healthz", token: nil).status == 200, "the hub survived")
        }
    }
}
