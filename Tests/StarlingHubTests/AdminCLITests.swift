import StarlingCore
import StarlingHub
import StarlingTestSupport
import Testing

/// `starling admin` as operators run it: the real binary against an in-process hub.
@Suite(.timeLimit(.minutes(3)))
struct AdminCLITests {
    static func admin(_ hub: OperatorHub, _ arguments: [String], token: String = HubHarness.adminToken)
        async throws -> ProcessRunner.Result
    {
        var all = ["admin"] + arguments + ["--hub", hub.baseURL, "--token", token]
        if let ca = hub.caPath { all += ["--ca", ca] }
        return try await ProcessRunner.run(try StarlingBinary.path(), all, timeout: .seconds(60))
    }

    @Test func statusPrintsATableOverTLS() async throws {
        // Proves `admin status` over TLS with --ca prints the head, conflict counts and one row per region with
        // its state, and `--json` prints the hub's /v1/status document.
        try await OperatorHub.withTLS { hub in
            try await hub.seed()
            let table = try await Self.admin(hub, ["status"])
            #expect(table.exitCode == 0, "\(table.transcript)")
            #expect(table.stdout.contains("head seq 3") && table.stdout.contains("conflicts 1 open / 2 total"))
            let lines = table.stdout.split(separator: "\n")
            #expect(lines.contains { $0.hasPrefix("REGION") && $0.contains("STATE") && $0.contains("LAG(S)") })
            let r2 = try #require(lines.first { $0.hasPrefix("r2 ") })
            #expect(r2.contains("healthy"))
            let r8 = try #require(lines.first { $0.hasPrefix("r8 ") })
            #expect(r8.contains("silent") && r8.contains("never"))

            let json = try await Self.admin(hub, ["status", "--json"])
            #expect(json.exitCode == 0, "\(json.transcript)")
            let status = try JSONValue(parsing: Array(json.stdout.utf8))
            #expect(status["head"] == 3 && status["regions"]?.arrayValue?.count == 8)
        }
    }

    @Test func conflictsFiltersAndJSON() async throws {
        // Proves `admin conflicts` lists open ones by default, --status all shows both, --table filters,
        // --limit pages with a "more" hint, and --json prints the hub's shape.
        try await OperatorHub.with { hub in
            let open = try await hub.seed()
            let table = try await Self.admin(hub, ["conflicts"])
            #expect(table.exitCode == 0, "\(table.transcript)")
            #expect(table.stdout.contains("public.manual") && !table.stdout.contains("public.items"))

            let json = try await Self.admin(hub, ["conflicts", "--status", "all", "--json"])
            #expect(json.exitCode == 0, "\(json.transcript)")
            let all = try JSONValue(parsing: Array(json.stdout.utf8))
            let conflicts = try #require(all["conflicts"]?.arrayValue)
            #expect(conflicts.count == 2)
            #expect(conflicts.contains { $0["id"]?.int64Value == open && $0["status"] == "open" })
            #expect(conflicts.allSatisfy { $0["current"]?["row"] != nil && $0["incoming"]?["row"] != nil })

            let filtered = try await Self.admin(hub, ["conflicts", "--status", "all", "--table", "public.items", "--json"])
            let only = try JSONValue(parsing: Array(filtered.stdout.utf8))
            #expect(only["conflicts"]?.arrayValue?.count == 1 && only["conflicts"]?[0]?["table"] == "public.items")

            let paged = try await Self.admin(hub, ["conflicts", "--status", "all", "--limit", "1", "--images"])
            #expect(paged.exitCode == 0 && paged.stdout.contains("more: --after"))
            #expect(paged.stdout.contains("current:") && paged.stdout.contains("incoming:"))

            let bad = try await Self.admin(hub, ["conflicts", "--status", "closed"])
            #expect(bad.exitCode == 1 && bad.stderr.contains("--status"))
        }
    }

    @Test func resolveThenAlreadyResolvedAndUnknown() async throws {
        // Proves `admin resolve ID --pick incoming` resolves (exit 0, resolution entry), a second resolve exits 4,
        // an unknown id exits 4, and --row with a written row works on another open conflict.
        try await OperatorHub.with { hub in
            let id = try await hub.seed()
            let resolved = try await Self.admin(hub, ["resolve", "\(id)", "--pick", "incoming"])
            #expect(resolved.exitCode == 0, "\(resolved.transcript)")
            #expect(resolved.stdout.contains("conflict \(id) resolved"))
            let again = try await Self.admin(hub, ["resolve", "\(id)", "--pick", "current"])
            #expect(again.exitCode == 4 && again.stderr.contains("409"), "\(again.transcript)")
            let unknown = try await Self.admin(hub, ["resolve", "999", "--pick", "current"])
            #expect(unknown.exitCode == 4, "\(unknown.transcript)")
            let both = try await Self.admin(hub, ["resolve", "\(id)", "--pick", "current", "--row", "{}"])
            #expect(both.exitCode == 1)

            let raced = try await hub.harness.push(
                "r4", [Changes.insert("r4", 1, table: "public.manual", id: 10, row: ["status": "void"], hlc: 5000)])
            let second = try #require(raced.json["results"]?[0]?["conflict"]?.int64Value)
            let row = #"{"id":10,"status":"refunded","total":"0.00","note":"operator"}"#
            let written = try await Self.admin(hub, ["resolve", "\(second)", "--row", row, "--json"])
            #expect(written.exitCode == 0, "\(written.transcript)")
            let answer = try JSONValue(parsing: Array(written.stdout.utf8))
            #expect(answer["entry"]?["row"]?["status"] == "refunded" && answer["entry"]?["kind"] == "resolution")
        }
    }

    @Test func exitCodesForAuthUnreachableAndReconcile() async throws {
        // Proves a wrong token exits 3, an unreachable hub exits 2, a missing --hub exits 1, and reconcile exits 6
        // with a clear message when its run does not finish in time (no agent answers here).
        try await OperatorHub.with { hub in
            let refused = try await Self.admin(hub, ["status"], token: "wrong-token")
            #expect(refused.exitCode == 3 && refused.stderr.contains("401"), "\(refused.transcript)")
            let regionToken = try await Self.admin(hub, ["conflicts"], token: HubHarness.token("r1"))
            #expect(regionToken.exitCode == 3 && regionToken.stderr.contains("403"), "\(regionToken.transcript)")
            let reconcile = try await Self.admin(hub, ["reconcile", "--wait", "1"])
            #expect(
                reconcile.exitCode == 6 && reconcile.stderr.contains("did not finish"), "\(reconcile.transcript)")
        }
        let binary = try StarlingBinary.path()
        let unreachable = try await ProcessRunner.run(
            binary, ["admin", "status", "--hub", "http://127.0.0.1:1", "--token", "t", "--timeout", "5"])
        #expect(unreachable.exitCode == 2, "\(unreachable.transcript)")
        let missing = try await ProcessRunner.run(
            binary, ["admin", "status", "--token", "t"], environment: ["STARLING_HUB": ""])
        #expect(missing.exitCode == 1 && missing.stderr.contains("--hub"), "\(missing.transcript)")
    }
}
