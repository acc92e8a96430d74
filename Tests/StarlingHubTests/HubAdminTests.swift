import StarlingCore
import StarlingHTTP2
import StarlingHub
import StarlingIO
import Testing

@Suite(.timeLimit(.minutes(2)))
struct HubAdminTests {
    @Test func theHubReadsTheTimeFromTheClockItIsGiven() async throws {
        // Proves the TimeSource passed to Hub is where it reads the time: a region's last pull shows the
        // clock's (fixed) wall time, not the machine's.
        let clock = TimeSource(wallClockMicros: { 1_900_000_000_000_000 }, monotonicNanos: TimeSource.system.monotonicNanos)
        try await HubHarness.with(clock: clock) { hub in
            _ = try await hub.pull("r2", after: 0)
            let status = try await hub.admin("GET", "/v1/status")
            let r2 = try #require(status.json["regions"]?.arrayValue?.first { $0["name"] == "r2" })
            #expect(r2["last_pull_at"] == "2030-03-17T17:46:40.000000Z")
        }
    }

    @Test func configStatusAgentStatusAndMetricsReportActivity() async throws {
        // Proves /v1/config names the region's tables, agent reports and pulls show in /v1/status, and /metrics
        // exposes head, per-region cursor and ingest counters in Prometheus text.
        try await HubHarness.with { hub in
            let config = try await hub.send("GET", "/v1/config", token: HubHarness.token("r2"))
            #expect(config.json["region"] == "r2")
            #expect(config.json["tables"]?[3]?["policy"] == "manual")

            _ = try await hub.push("r1", [Changes.insert("r1", 1, id: 1), Changes.insert("r1", 2, id: 2)])
            _ = try await hub.pull("r2", after: 1)
            let report: JSONValue = ["outbox_depth": 7, "apply_lag": .number("0.25"), "last_error": "disk full"]
            let reported = try await hub.send(
                "POST", "/v1/agent-status", token: HubHarness.token("r2"), body: report.serialized())
            #expect(reported.status == 200)

            let status = try await hub.admin("GET", "/v1/status")
            let regions = try #require(status.json["regions"]?.arrayValue)
            let r2 = try #require(regions.first { $0["name"] == "r2" })
            #expect(r2["cursor"] == 1 && r2["lag_entries"] == 1)
            #expect(r2["outbox_depth"] == 7 && r2["last_error"] == "disk full")
            #expect(r2["last_pull_at"]?.stringValue?.hasSuffix("Z") == true)
            let r1 = try #require(regions.first { $0["name"] == "r1" })
            #expect(r1["last_push_at"]?.stringValue != nil)

            let metrics = try await hub.metrics()
            let text = String(decoding: metrics.body, as: UTF8.self)
            #expect(metrics.status == 200)
            #expect(text.contains("starling_hub_head_seq 2"))
            #expect(text.contains(#"starling_hub_region_cursor_seq{region="r2"} 1"#))
            #expect(text.contains(#"starling_hub_changes_ingested_total{region="r1",outcome="accepted"} 2"#))
            #expect(text.contains("starling_hub_push_duration_seconds_bucket"))
            #expect(text.contains("starling_http_requests_total"))
        }
    }
}
