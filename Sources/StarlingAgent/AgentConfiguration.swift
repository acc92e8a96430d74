/// `agent.yaml` (DESIGN.md "Interfaces"): one region's agent.
///
/// ```yaml
/// region: us-east
/// hub: https://127.0.0.1:8443          # or a list: [https://hub-a:8443, https://hub-b:8443] (failover)
/// token: "…"
/// ca: certs/ca.crt
/// database: postgresql://postgres@127.0.0.1:5544/region_us_east
/// tuning:            # optional, every member optional
///   batch: {max_count: 1000, max_bytes: 4194304}
///   pull: {limit: 5000, wait_ms: 250}
///   backoff: {initial_ms: 100, max_ms: 10000}
///   status_interval_ms: 1000
///   request_timeout_ms: 30000
/// ```
/// Decoded by the CLI (YAML via Yams), checked with ``validate()`` before anything starts.
public struct AgentConfiguration: Sendable, Decodable, Hashable {
    /// This region's name, as the hub knows it (not `hub`; letters, digits, `-`, `_`, `.`).
    public var region: String
    /// The hub base URLs, in order of preference: `https://host:port` (TLS) or `http://host:port` (h2c,
    /// loopback tests only). `hub:` in YAML is one URL or a list of 1…16 (an active hub and its standbys); the
    /// agent stays on the one that answers and moves on when it fails or answers 503 `standby`
    /// (`HubEndpoints`).
    public var hubs: [String]
    /// The preferred (first) hub URL; setting it replaces the whole list with that one URL.
    public var hub: String {
        get { hubs.first ?? "" }
        set { hubs = [newValue] }
    }
    /// The region's bearer token.
    public var token: String
    /// CA certificate (PEM) the hub's certificate is verified against; required for https.
    public var ca: String?
    /// The region's database (`postgresql://…`).
    public var database: String
    /// Limits and timeouts; defaults when absent.
    public var tuning: Tuning
    /// How a fresh region joins (Bootstrapper.swift). Default `{replace_local: false}`.
    public var bootstrap = Bootstrap()

    /// `bootstrap: {replace_local: true}`: when this region's existing rows of a table differ from the hub's
    /// (adopted from another region), replace them with the hub's snapshot, keeping the replaced rows in
    /// `starling.replaced_rows`, instead of refusing to start. Default false.
    public struct Bootstrap: Sendable, Decodable, Hashable {
        public var replaceLocal = false

        public init(replaceLocal: Bool = false) {
            self.replaceLocal = replaceLocal
        }

        enum CodingKeys: String, CodingKey {
            case replaceLocal = "replace_local"
        }
    }

    /// Limits and timeouts of the loop.
    public struct Tuning: Sendable, Decodable, Hashable {
        public var batch: Batch
        public var pull: Pull
        public var backoff: Backoff
        /// How often outbox depth, apply lag and the last error are reported to the hub. Default 1000 ms.
        public var statusIntervalMs: Int
        /// Timeout of a push or any request but the long poll (which gets `pull.wait_ms` on top). Default 30 s.
        public var requestTimeoutMs: Int

        public init(
            batch: Batch = Batch(), pull: Pull = Pull(), backoff: Backoff = Backoff(), statusIntervalMs: Int = 1000,
            requestTimeoutMs: Int = 30_000
        ) {
            self.batch = batch
            self.pull = pull
            self.backoff = backoff
            self.statusIntervalMs = statusIntervalMs
            self.requestTimeoutMs = requestTimeoutMs
        }

        enum CodingKeys: String, CodingKey {
            case batch, pull, backoff
            case statusIntervalMs = "status_interval_ms"
            case requestTimeoutMs = "request_timeout_ms"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Tuning()
            batch = try container.decodeIfPresent(Batch.self, forKey: .batch) ?? defaults.batch
            pull = try container.decodeIfPresent(Pull.self, forKey: .pull) ?? defaults.pull
            backoff = try container.decodeIfPresent(Backoff.self, forKey: .backoff) ?? defaults.backoff
            statusIntervalMs =
                try container.decodeIfPresent(Int.self, forKey: .statusIntervalMs) ?? defaults.statusIntervalMs
            requestTimeoutMs =
                try container.decodeIfPresent(Int.self, forKey: .requestTimeoutMs) ?? defaults.requestTimeoutMs
        }
    }

    /// Push batches: bounded by both; an origin transaction larger than either still goes whole, alone.
    public struct Batch: Sendable, Decodable, Hashable {
        /// Changes per push, 1…100 000. Default 1000.
        public var maxCount: Int
        /// Approximate JSON bytes per push, 1 KiB…64 MiB. Default 4 MiB.
        public var maxBytes: Int

        public init(maxCount: Int = 1000, maxBytes: Int = 4 << 20) {
            self.maxCount = maxCount
            self.maxBytes = maxBytes
        }

        enum CodingKeys: String, CodingKey {
            case maxCount = "max_count"
            case maxBytes = "max_bytes"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Batch()
            maxCount = try container.decodeIfPresent(Int.self, forKey: .maxCount) ?? defaults.maxCount
            maxBytes = try container.decodeIfPresent(Int.self, forKey: .maxBytes) ?? defaults.maxBytes
        }
    }

    /// Pulls: entries per request and the long-poll wait when the outbox is empty.
    public struct Pull: Sendable, Decodable, Hashable {
        /// Entries per pull, 1…100 000 (the hub caps it at its `max_pull_limit`). Default 5000, the hub's
        /// default `max_pull_limit` (an applied batch takes row locks only, which need no lock-table slots).
        public var limit: Int
        /// Long-poll wait, 0…60 000 ms. Default 250 ms (local writes wait at most this long to be pushed).
        public var waitMs: Int

        public init(limit: Int = 5000, waitMs: Int = 250) {
            self.limit = limit
            self.waitMs = waitMs
        }

        enum CodingKeys: String, CodingKey {
            case limit
            case waitMs = "wait_ms"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Pull()
            limit = try container.decodeIfPresent(Int.self, forKey: .limit) ?? defaults.limit
            waitMs = try container.decodeIfPresent(Int.self, forKey: .waitMs) ?? defaults.waitMs
        }
    }

    /// Exponential backoff with full jitter after a hub or database error.
    public struct Backoff: Sendable, Decodable, Hashable {
        /// First delay, 1…60 000 ms. Default 100 ms.
        public var initialMs: Int
        /// Largest delay, `initial_ms`…600 000 ms. Default 10 000 ms.
        public var maxMs: Int

        public init(initialMs: Int = 100, maxMs: Int = 10_000) {
            self.initialMs = initialMs
            self.maxMs = maxMs
        }

        enum CodingKeys: String, CodingKey {
            case initialMs = "initial_ms"
            case maxMs = "max_ms"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let defaults = Backoff()
            initialMs = try container.decodeIfPresent(Int.self, forKey: .initialMs) ?? defaults.initialMs
            maxMs = try container.decodeIfPresent(Int.self, forKey: .maxMs) ?? defaults.maxMs
        }
    }

    public init(
        region: String, hub: String, token: String, ca: String? = nil, database: String, tuning: Tuning = Tuning()
    ) {
        self.region = region
        self.hubs = [hub]
        self.token = token
        self.ca = ca
        self.database = database
        self.tuning = tuning
    }

    enum CodingKeys: String, CodingKey {
        case region, hub, token, ca, database, tuning, bootstrap
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        region = try container.decode(String.self, forKey: .region)
        if let list = try? container.decode([String].self, forKey: .hub) {
            hubs = list
        } else {
            hubs = [try container.decode(String.self, forKey: .hub)]
        }
        token = try container.decode(String.self, forKey: .token)
        ca = try container.decodeIfPresent(String.self, forKey: .ca)
        database = try container.decode(String.self, forKey: .database)
        tuning = try container.decodeIfPresent(Tuning.self, forKey: .tuning) ?? Tuning()
        bootstrap = try container.decodeIfPresent(Bootstrap.self, forKey: .bootstrap) ?? Bootstrap()
    }
}

extension AgentConfiguration {
    /// Checks every value; the error names the offending key.
    public func validate() throws(AgentError) {
        try Self.check(!region.isEmpty, "region", "must not be empty")
        try Self.check(region != "hub", "region", "\"hub\" is reserved for the hub's own log entries")
        try Self.check(region.utf8.count <= 64, "region", "must be at most 64 bytes")
        try Self.check(
            region.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)
                || $0 == "-" || $0 == "_" || $0 == ".") },
            "region", "may only contain ASCII letters, digits, '-', '_' and '.'")
        try Self.check(!hubs.isEmpty, "hub", "must name at least one URL")
        try Self.check(hubs.count <= 16, "hub", "lists \(hubs.count) URLs; at most 16")
        for (index, url) in hubs.enumerated() {
            let key = hubs.count == 1 ? "hub" : "hub[\(index)]"
            try Self.check(url.hasPrefix("https://") || url.hasPrefix("http://"), key, "must start with https:// or http://")
            try Self.check(hubs.firstIndex(of: url) == index, key, "lists \(url) twice")
        }
        try Self.check(!token.isEmpty, "token", "must not be empty")
        if hubs.contains(where: { $0.hasPrefix("https://") }) {
            try Self.check(ca.map { !$0.isEmpty } ?? false, "ca", "is required when hub is https://")
        }
        try Self.check(!database.isEmpty, "database", "must not be empty")
        try Self.range(tuning.batch.maxCount, 1...100_000, "tuning.batch.max_count")
        try Self.range(tuning.batch.maxBytes, 1024...(64 << 20), "tuning.batch.max_bytes")
        try Self.range(tuning.pull.limit, 1...100_000, "tuning.pull.limit")
        try Self.range(tuning.pull.waitMs, 0...60_000, "tuning.pull.wait_ms")
        try Self.range(tuning.backoff.initialMs, 1...60_000, "tuning.backoff.initial_ms")
        try Self.range(tuning.backoff.maxMs, tuning.backoff.initialMs...600_000, "tuning.backoff.max_ms")
        try Self.range(tuning.statusIntervalMs, 100...3_600_000, "tuning.status_interval_ms")
        try Self.range(tuning.requestTimeoutMs, 100...600_000, "tuning.request_timeout_ms")
    }

    private static func check(_ condition: Bool, _ key: String, _ problem: String) throws(AgentError) {
        guard condition else {
            throw AgentError(code: .invalidConfiguration, message: "\(key) \(problem)", key: key)
        }
    }

    private static func range(_ value: Int, _ allowed: ClosedRange<Int>, _ key: String) throws(AgentError) {
        try check(
            allowed.contains(value), key,
            "is \(value), must be between \(allowed.lowerBound) and \(allowed.upperBound)")
    }
}
