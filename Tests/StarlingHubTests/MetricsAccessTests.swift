import StarlingHub
import StarlingTestSupport
import Testing

/// `/metrics` names regions, their lags and conflict counts: it takes the scrape token (`metrics_token`) or the
/// admin token, never a region's and never nobody's, unless the operator opens it (`metrics_public: true`).
@Suite(.timeLimit(.minutes(2)))
struct MetricsAccessTests {
    static let scrapeToken = "scrape-token-0123456789"

    @Test func theScrapeTokenReadsMetricsAndNothingElse() async throws {
        try await SecureHub.with(configure: { $0.metricsToken = Self.scrapeToken }) { hub, _ in
            var statuses: [String: Int] = [:]
            for (name, path, token) in [
                ("scrape", "/metrics", Self.scrapeToken), ("admin", "/metrics", HubHarness.adminToken),
                ("none", "/metrics", nil), ("region", "/metrics", HubHarness.token("r1")),
                // The scrape token opens nothing else: no admin endpoint, no region endpoint.
                ("scrape on status", "/v1/status", Self.scrapeToken), ("scrape on config", "/v1/config", Self.scrapeToken),
            ] as [(String, String, String?)] {
                statuses[name] = try await hub.send("GET", path, token: token).status
            }
            #expect(statuses == [
                "scrape": 200, "admin": 200, "none": 401, "region": 403, "scrape on status": 403,
                "scrape on config": 403,
            ])
        }
    }

    @Test func metricsPublicReadsNoToken() async throws {
        try await SecureHub.with(configure: { $0.metricsPublic = true }) { hub, _ in
            let metrics = try await hub.send("GET", "/metrics", token: nil)
            let status = try await hub.send("GET", "/v1/status", token: nil)
            #expect(metrics.status == 200)
            #expect(status.status == 401)
        }
    }

    @Test func aScrapeTokenEqualToAnotherTokenIsRefused() {
        ConfigurationLoading.expectRefused(
            """
            {"database": "postgresql://localhost/x", "admin_token": "admin-token-0123456789",
             "metrics_token": "token-r1-0123456789",
             "regions": [{"name": "r1", "token": "token-r1-0123456789"}], "tables": [{"name": "public.items"}]}
            """, naming: "metrics_token")
        ConfigurationLoading.expectRefused(
            """
            {"database": "postgresql://localhost/x", "admin_token": "admin-token-0123456789", "metrics_token": "short",
             "regions": [{"name": "r1", "token": "token-r1-0123456789"}], "tables": [{"name": "public.items"}]}
            """, naming: "metrics_token")
    }
}
