import Foundation
import StarlingCore
import StarlingHTTP2
import StarlingHub
import StarlingTestSupport
import Testing

/// The deployment files under ops/: checked with the tools operators will use on them.
@Suite(.timeLimit(.minutes(3)))
struct OpsFilesTests {
    /// Metric names the rules and dashboard use that the hub does not export yet: none.
    static let pendingMetrics: Set<String> = []

    @Test func alertRulesPassPromtoolChecksAndUnitTests() async throws {
        // Proves alerts.yml is valid (`promtool check rules`), its unit tests fire the alerts as intended
        // (`promtool test rules`), and prometheus.yml is a valid configuration loading those rules.
        let directory = repositoryRoot + "/ops/monitoring"
        let rules = try await ProcessRunner.run("promtool", ["check", "rules", directory + "/alerts.yml"])
        #expect(rules.exitCode == 0, "\(rules.transcript)")
        let tests = try await ProcessRunner.run("promtool", ["test", "rules", directory + "/alerts.test.yml"])
        #expect(tests.exitCode == 0, "\(tests.transcript)")
        let config = try await ProcessRunner.run("promtool", ["check", "config", "--syntax-only", directory + "/prometheus.yml"])
        #expect(config.exitCode == 0, "\(config.transcript)")
    }

    @Test func rulesAndDashboardUseOnlyMetricsTheHubExports() async throws {
        // Proves every starling_* name in alerts.yml and the Grafana dashboard appears in a live hub's /metrics
        // (after some pushes, conflicts and a scrape), so a renamed metric breaks this test, not the on-call.
        let dashboardText = try repositoryFile("ops/monitoring/grafana-dashboard.json")
        let dashboard = try JSONValue(parsing: Array(dashboardText.utf8))
        #expect(dashboard["uid"] == "starling-hub" && (dashboard["panels"]?.arrayValue?.count ?? 0) > 10)
        let used = Self.metricNames(in: dashboardText).union(Self.metricNames(in: try repositoryFile("ops/monitoring/alerts.yml")))
        #expect(used.count > 10)
        try await OperatorHub.with { hub in
            try await hub.seed()
            _ = try await hub.harness.metrics()
            let metrics = try await hub.harness.metrics()
            let exported = Self.metricNames(in: String(decoding: metrics.body, as: UTF8.self))
            let missing = used.subtracting(exported).subtracting(Self.pendingMetrics)
            #expect(missing.isEmpty, "not exported by the hub: \(missing.sorted())")
        }
    }

    @Test func systemdUnitsAreSandboxed() throws {
        // Proves both units run the binary with --check first and carry the sandboxing options we promise.
        for unit in ["starling-hub.service", "starling-agent@.service"] {
            let text = try repositoryFile("ops/systemd/" + unit)
            for directive in [
                "DynamicUser=yes", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes", "ProtectHome=yes",
                "CapabilityBoundingSet=\n", "SystemCallFilter=@system-service", "RestrictAddressFamilies=",
                "MemoryDenyWriteExecute=yes", "--check",
            ] {
                #expect(text.contains(directive), "\(unit) lacks \(directive)")
            }
        }
        let agent = try repositoryFile("ops/systemd/starling-agent@.service")
        #expect(agent.contains("/etc/starling/agent-%i.yaml"))
        let hub = try repositoryFile("ops/systemd/starling-hub.service")
        #expect(hub.contains("ExecReload=/bin/kill -HUP $MAINPID"), "systemctl reload must send SIGHUP (the table reload)")
    }

    @Test func everySampleConfigurationPasses() async throws {
        // Proves ops/examples/hub.yaml and ops/examples/ha/hub.yaml pass `starling hub --check` and each of the eight agent samples passes
        // `starling agent --check`, one per region named in hub.yaml, with that region's example token.
        let binary = try StarlingBinary.path()
        let examples = repositoryRoot + "/ops/examples"
        let hub = try await ProcessRunner.run(binary, ["hub", "--config", examples + "/hub.yaml", "--check"])
        #expect(hub.exitCode == 0 && hub.stdout.contains("configuration ok"), "\(hub.transcript)")
        let haHub = try await ProcessRunner.run(binary, ["hub", "--config", examples + "/ha/hub.yaml", "--check"])
        #expect(haHub.exitCode == 0 && haHub.stdout.contains("configuration ok"), "\(haHub.transcript)")
        let hubText = try repositoryFile("ops/examples/hub.yaml")
        let files = try FileManager.default.contentsOfDirectory(atPath: examples).filter { $0.hasPrefix("agent-") }
        #expect(files.count == 8)
        for file in files {
            let region = String(file.dropFirst("agent-".count).dropLast(".yaml".count))
            let result = try await ProcessRunner.run(binary, ["agent", "--config", examples + "/" + file, "--check"])
            #expect(result.exitCode == 0 && result.stdout.contains("configuration ok"), "\(file): \(result.transcript)")
            let text = try repositoryFile("ops/examples/" + file)
            #expect(text.contains("region: \(region)\n") && text.contains("token: \"change-me-\(region)\""))
            #expect(hubText.contains("name: \(region),") && hubText.contains("token: \"change-me-\(region)\""))
        }
    }

    @Test func demoInstallsOnlyWhatTheDemoNeeds() async throws {
        // Proves ops/demo asks apt for the build libraries, a PostgreSQL server and openssl only (no browser,
        // Prometheus or Python for a newcomer's first command), while ops/test asks for those plus the test tools.
        let demo = try repositoryFile("ops/demo")
        #expect(demo.contains("starling_need_demo_deps\n"))
        for other in ["starling_need_test_deps", "starling_need_venv", "starling_need_datadiff", "starling_need_debs"] {
            #expect(!demo.contains(other), "ops/demo calls \(other)")
        }
        let demoPackages = try await Self.packages(askedFor: "starling_need_demo_deps")
        #expect(
            demoPackages == [
                "libpq-dev", "libssl-dev", "libnghttp2-dev", "zlib1g-dev", "pkg-config", "postgresql", "openssl",
            ])
        let testPackages = try await Self.packages(askedFor: "starling_need_test_deps")
        #expect(testPackages.isSuperset(of: demoPackages))
        #expect(testPackages.isSuperset(of: ["chromium", "prometheus", "python3-httpx", "nghttp2-client", "curl"]))
        let test = try repositoryFile("ops/test")
        #expect(test.contains("starling_need_test_deps\n") && test.contains("starling_need_venv\n"))
    }

    /// The Debian packages `function` of ops/lib/common.sh asks for (`starling_need_debs` replaced by an echo).
    static func packages(askedFor function: String) async throws -> Set<String> {
        let script = #". "$1/ops/lib/common.sh"; starling_need_debs() { printf '%s\n' "$@"; }; "# + function
        let result = try await ProcessRunner.run("/bin/bash", ["-c", script, "bash", repositoryRoot])
        #expect(result.exitCode == 0, "\(result.transcript)")
        return Set(result.stdout.split(separator: "\n").map(String.init))
    }

    @Test func certificateScriptMakesCertificatesAHubAndTheCLIAccept() async throws {
        // Proves ops/certs makes a CA, a hub certificate with the requested SANs and client certificates that
        // verify, keeps an existing CA on a second run, and that a hub serving its certificate is reachable by
        // `starling admin status --ca ca.crt`.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("starling-certs-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let script = repositoryRoot + "/ops/certs"
        let made = try await ProcessRunner.run(
            script, ["--out", directory, "--hub-name", "localhost", "--hub-name", "127.0.0.1", "--client", "us-east"])
        #expect(made.exitCode == 0, "\(made.transcript)")
        let san = try await ProcessRunner.run("openssl", ["x509", "-in", directory + "/hub.crt", "-noout", "-ext", "subjectAltName"])
        #expect(san.stdout.contains("DNS:localhost") && san.stdout.contains("IP Address:127.0.0.1"), "\(san.transcript)")
        let verified = try await ProcessRunner.run(
            "openssl", ["verify", "-CAfile", directory + "/ca.crt", directory + "/hub.crt", directory + "/client-us-east.crt"])
        #expect(verified.exitCode == 0, "\(verified.transcript)")
        let caBefore = try String(contentsOfFile: directory + "/ca.crt", encoding: .utf8)
        let again = try await ProcessRunner.run(script, ["--out", directory, "--client", "eu-west"])
        #expect(again.exitCode == 0 && again.stderr.contains("kept"), "\(again.transcript)")
        #expect(try String(contentsOfFile: directory + "/ca.crt", encoding: .utf8) == caBefore)
        let keyMode = try FileManager.default.attributesOfItem(atPath: directory + "/hub.key")[.posixPermissions] as? Int
        #expect(keyMode == 0o600)

        try await OperatorHub.with(tls: (directory + "/hub.crt", directory + "/hub.key", directory + "/ca.crt")) { hub in
            let status = try await AdminCLITests.admin(hub, ["status"])
            #expect(status.exitCode == 0 && status.stdout.contains("head seq 0"), "\(status.transcript)")
        }
    }

    /// Every `starling_…` identifier in `text`.
    static func metricNames(in text: String) -> Set<String> {
        var names: Set<String> = []
        var current = ""
        for character in text + " " {
            if character.isLetter || character.isNumber || character == "_" {
                current.append(character)
            } else {
                if current.hasPrefix("starling_") { names.insert(current) }
                current = ""
            }
        }
        return names
    }
}
