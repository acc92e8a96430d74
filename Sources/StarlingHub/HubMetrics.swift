import Prometheus
import StarlingHTTP2
import Synchronization

/// The hub's metrics, kept in a swift-prometheus registry and served as Prometheus text at `/metrics`.
///
/// Names follow `starling_<subsystem>_<name>_<unit>`; counters end in `_total`; labels are bounded (region,
/// table, policy, outcome, status class). Fixed handles are created once; labelled ones are looked up per
/// batch (one lookup per label combination, not per change). Per-region gauges and the HTTP server counters
/// are refreshed when `/metrics` is scraped. Thread-safe.
final class HubMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let headSeq: Gauge
    private let pushDuration: DurationHistogram
    private let batchSize: ValueHistogram
    private let commitDuration: DurationHistogram
    private let waitingPulls: Gauge
    /// The last HTTP counter snapshot, to turn totals into counter increments.
    private let lastHTTP = Mutex<HTTP2ServerCounters.Snapshot?>(nil)

    init() {
        headSeq = registry.makeGauge(descriptor: Self.name("hub", "head", "seq", "Newest committed log seq."))
        pushDuration = registry.makeDurationHistogram(
            descriptor: Self.name("hub", "push_duration", "seconds", "Push latency: request parsed to verdicts."),
            labels: [],
            buckets: [
                .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                .seconds(2.5), .seconds(5), .seconds(10),
            ])
        batchSize = registry.makeValueHistogram(
            descriptor: Self.name("hub", "commit_batch_size", "changes", "Changes per group commit."), labels: [],
            buckets: [1, 10, 100, 500, 1000, 2000, 5000, 10000, 20000, 50000])
        commitDuration = registry.makeDurationHistogram(
            descriptor: Self.name("hub", "commit_duration", "seconds", "Duration of one group commit."), labels: [],
            buckets: [
                .milliseconds(1), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
            ])
        waitingPulls = registry.makeGauge(
            descriptor: Self.name("hub", "waiting_pulls", "", "Long-polls waiting for a commit."))
    }

    static func name(_ subsystem: String, _ name: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "starling", subsystem: subsystem, metricName: name, unitName: unit, helpText: help)
    }

    func recordPush(seconds: Double) {
        pushDuration.record(.nanoseconds(Int64(seconds * 1e9)))
    }

    /// Counts a committed batch: size, duration, changes by region and outcome, conflicts by table/policy/outcome.
    func recordBatch(_ outcome: SequencerWriter.BatchOutcome, changes: Int, seconds: Double) {
        batchSize.record(Double(changes))
        commitDuration.record(.nanoseconds(Int64(seconds * 1e9)))
        headSeq.set(Double(outcome.head))
        for (labels, count) in outcome.ingested {
            registry.makeCounter(
                descriptor: Self.name("hub", "changes_ingested", "total", "Pushed changes by region and outcome."),
                labels: [("region", labels.region), ("outcome", labels.outcome)]
            ).increment(by: Int64(count))
        }
        for (labels, count) in outcome.conflicts {
            registry.makeCounter(
                descriptor: Self.name("hub", "conflicts", "total", "Conflicts by table, policy and outcome."),
                labels: [("table", labels.table), ("policy", labels.policy), ("outcome", labels.outcome)]
            ).increment(by: Int64(count))
        }
    }

    /// Counts dead letters an agent reported (entries it could not apply; each became an open conflict).
    func recordDeadLetters(region: String, table: String, count: Int) {
        deadLetterCounter(region: region, table: table).increment(by: Int64(count))
    }

    /// Creates the dead-letter counters at zero for every region and table, so alert rules see the series
    /// before the first letter arrives.
    func prepareDeadLetterCounters(regions: [String], tables: [String]) {
        for region in regions {
            for table in tables { _ = deadLetterCounter(region: region, table: table) }
        }
    }

    private func deadLetterCounter(region: String, table: String) -> Counter {
        registry.makeCounter(
            descriptor: Self.name("hub", "dead_letters", "total", "Entries agents could not apply, by region and table."),
            labels: [("region", region), ("table", table)])
    }

    /// Per-region figures, refreshed at scrape time.
    struct RegionFigures {
        var name: String
        var cursor: Int64
        var lagEntries: Int64
        var lagSeconds: Double
        var lastPushAt: Int64?
        var lastPullAt: Int64?
        /// WAL the region's replication slot retains (WAL capture), as its agent last reported.
        var retainedWALBytes: Int64? = nil
    }

    /// Refreshes the gauges that are computed, then renders the registry.
    func render(head: Int64, regions: [RegionFigures], waiting: Int, http: HTTP2ServerCounters.Snapshot?) -> [UInt8] {
        headSeq.set(Double(head))
        waitingPulls.set(Double(waiting))
        for region in regions {
            let labels = [("region", region.name)]
            registry.makeGauge(
                descriptor: Self.name("hub", "region_cursor", "seq", "Pull cursor per region."), labels: labels
            )
            .set(Double(region.cursor))
            registry.makeGauge(
                descriptor: Self.name("hub", "region_lag", "entries", "Log entries a region has not pulled."),
                labels: labels
            ).set(Double(region.lagEntries))
            registry.makeGauge(
                descriptor: Self.name(
                    "hub", "region_lag", "seconds", "Age of the oldest entry a region has not pulled."),
                labels: labels
            ).set(region.lagSeconds)
            registry.makeGauge(
                descriptor: Self.name(
                    "hub", "region_last_push", "timestamp_seconds", "Time of the region's last push."),
                labels: labels
            ).set(Double(region.lastPushAt ?? 0) / 1e6)
            registry.makeGauge(
                descriptor: Self.name(
                    "hub", "region_last_pull", "timestamp_seconds", "Time of the region's last pull."),
                labels: labels
            ).set(Double(region.lastPullAt ?? 0) / 1e6)
            if let retained = region.retainedWALBytes {
                registry.makeGauge(
                    descriptor: Self.name(
                        "hub", "region_slot_retained", "bytes",
                        "WAL the region's replication slot retains (WAL capture), as its agent reported."),
                    labels: labels
                ).set(Double(retained))
            }
        }
        if let http { recordHTTP(http) }
        return registry.emitToBuffer()
    }

    private func recordHTTP(_ now: HTTP2ServerCounters.Snapshot) {
        let previous = lastHTTP.withLock { last in
            defer { last = now }
            return last
        }
        var before = now
        if let previous {
            before = previous
        } else {
            before.connectionsAccepted = 0
            before.connectionsRejected = 0
            before.tlsFailures = 0
            before.protocolErrors = 0
            before.timeouts = 0
            before.requests = 0
            before.responsesByClass = [Int](repeating: 0, count: 6)
        }
        func counter(_ name: String, _ help: String, _ delta: Int, labels: [(String, String)] = []) {
            let handle = registry.makeCounter(descriptor: Self.name("http", name, "total", help), labels: labels)
            if delta > 0 { handle.increment(by: Int64(delta)) }
        }
        counter("connections_accepted", "Accepted connections.", now.connectionsAccepted - before.connectionsAccepted)
        counter(
            "connections_rejected", "Connections refused at the limit.",
            now.connectionsRejected - before.connectionsRejected)
        counter("tls_failures", "Failed TLS handshakes.", now.tlsFailures - before.tlsFailures)
        counter("protocol_errors", "HTTP/2 protocol errors.", now.protocolErrors - before.protocolErrors)
        counter("timeouts", "Connections or requests timed out.", now.timeouts - before.timeouts)
        counter("requests", "Requests received.", now.requests - before.requests)
        for statusClass in 1...5 {
            counter(
                "responses", "Responses by status class.",
                now.responsesByClass[statusClass] - before.responsesByClass[statusClass],
                labels: [("status_class", "\(statusClass)xx")])
        }
        registry.makeGauge(descriptor: Self.name("http", "connections_open", "", "Open connections."))
            .set(Double(now.connectionsOpen))
    }
}
