import Glibc
import StarlingCore

/// `agent.yaml` (DESIGN.md "Interfaces"): one region's agent.
///
/// ```yaml
/// region: us-east
/// hub: https://127.0.0.1:8443          # or a list: [https://hub-a:8443, https://hub-b:8443] (failover)
/// token: "…"
/// ca: certs/ca.crt
/// database: postgresql://postgres@127.0.0.1:5544/region_us_east
/// capture: auto      # WAL when the database allows it, else triggers; or wal, or trigger
/// output_plugin: auto  # a new slot's: starling_pgoutput when the database may load it, else pgoutput; or either
/// journal: false     # true: keep every WAL-captured change pushed, with its verdict, in starling.journal
/// compression: auto  # gzip to and from the hub unless it is on loopback; or gzip, or none
/// tuning:            # optional, every member optional
///   batch: {max_count: 1000, max_bytes: 4194304}
///   pull: {limit: 5000, wait_ms: 250}
///   apply: {workers: 4, min_parallel_entries: 200}   # workers: default half the machine's cores, 1…8
///   backoff: {initial_ms: 100, max_ms: 10000}
///   status_interval_ms: 1000
///   request_timeout_ms: 30000
///   capture_queue_max_changes: 100000
/// ```
/// Decoded by the CLI (YAML via Yams) strictly: an unknown key at any level is an error naming it
/// (`tuning.pul: unknown key`), as in `hub.yaml`; checked with ``validate()`` before anything starts.
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
    /// How changes are captured (``CaptureMode``). Default `auto`.
    public var capture = CaptureMode.auto
    /// The output plugin a new replication slot decodes with (``OutputPlugin``). Default `auto`.
    public var outputPlugin = OutputPlugin.auto
    /// Keep every WAL-captured change pushed, with its verdict, in `starling.journal` (an audit trail). Default false.
    public var journal = false
    /// gzip for the traffic with the hub (default `auto`: not on loopback).
    public var compression = HubCompression.auto

    /// `bootstrap: {replace_local: true}`: when this region's existing rows of a table differ from the hub's
    /// (adopted from another region), replace them with the hub's snapshot, keeping the replaced rows in
    /// `starling.replaced_rows`, instead of refusing to start. Default false.
    public struct Bootstrap: Sendable, Decodable, Hashable {
        public var replaceLocal = false

        public init(replaceLocal: Bool = false) {
            self.replaceLocal = replaceLocal
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: ConfigurationKey.self)
            try c.rejectUnknownKeys(["replace_local"])
            replaceLocal = try c.value("replace_local", default: false)
        }
    }

    /// Limits and timeouts of the loop.
    public struct Tuning: Sendable, Decodable, Hashable {
        public var batch: Batch
        public var pull: Pull
        public var apply: Apply
        public var backoff: Backoff
        /// How often outbox depth, apply lag and the last error are reported to the hub. Default 1000 ms.
        public var statusIntervalMs: Int
        /// Timeout of a push or any request but the long poll (which gets `pull.wait_ms` on top). Default 30 s.
        public var requestTimeoutMs: Int
        /// WAL capture: decoded changes the agent keeps in memory on their way to the hub, 1 000…10 000 000; past
        /// it the decoder stops reading until pushes drain them (the slot keeps the WAL meanwhile). Default 100 000.
        public var captureQueueMaxChanges: Int
        /// An origin transaction with more changes than this, 100…10 000 000, is never held whole in memory (README
        /// "Large transactions"): WAL capture writes it to a scratch file in `spill_directory` as it is decoded,
        /// trigger capture reads it from the outbox a chunk at a time; both handle its verdicts a slice at a time.
        /// At least `capture_queue_max_changes / 100`. Default 20 000.
        public var largeTransactionChanges: Int
        /// Where spilled transactions go: an unnamed file there (O_TMPFILE), freed when handled or when the
        /// process dies. Default `$TMPDIR`, else `/var/tmp` (not `/tmp`, which may be memory).
        public var spillDirectory: String

        public static var defaultSpillDirectory: String {
            if let dir = getenv("TMPDIR").map({ String(cString: $0) }), !dir.isEmpty { return dir }
            return "/var/tmp"
        }

        public init(
            batch: Batch = Batch(), pull: Pull = Pull(), apply: Apply = Apply(), backoff: Backoff = Backoff(),
            statusIntervalMs: Int = 1000,
            requestTimeoutMs: Int = 30_000, captureQueueMaxChanges: Int = 100_000, largeTransactionChanges: Int = 20_000,
            spillDirectory: String = Tuning.defaultSpillDirectory
        ) {
            self.batch = batch
            self.pull = pull
            self.apply = apply
            self.backoff = backoff
            self.statusIntervalMs = statusIntervalMs
            self.requestTimeoutMs = requestTimeoutMs
            self.captureQueueMaxChanges = captureQueueMaxChanges
            self.largeTransactionChanges = largeTransactionChanges
            self.spillDirectory = spillDirectory
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: ConfigurationKey.self)
            try c.rejectUnknownKeys([
                "batch", "pull", "apply", "backoff", "status_interval_ms", "request_timeout_ms",
                "capture_queue_max_changes", "large_transaction_changes", "spill_directory",
            ])
            let d = Tuning()
            batch = try c.value("batch", default: d.batch)
            pull = try c.value("pull", default: d.pull)
            apply = try c.value("apply", default: d.apply)
            backoff = try c.value("backoff", default: d.backoff)
            statusIntervalMs = try c.value("status_interval_ms", default: d.statusIntervalMs)
            requestTimeoutMs = try c.value("request_timeout_ms", default: d.requestTimeoutMs)
            captureQueueMaxChanges = try c.value("capture_queue_max_changes", default: d.captureQueueMaxChanges)
            largeTransactionChanges = try c.value("large_transaction_changes", default: d.largeTransactionChanges)
            spillDirectory = try c.value("spill_directory", default: d.spillDirectory)
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

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: ConfigurationKey.self)
            try c.rejectUnknownKeys(["max_count", "max_bytes"])
            let d = Batch()
            maxCount = try c.value("max_count", default: d.maxCount)
            maxBytes = try c.value("max_bytes", default: d.maxBytes)
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

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: ConfigurationKey.self)
            try c.rejectUnknownKeys(["limit", "wait_ms"])
            let d = Pull()
            limit = try c.value("limit", default: d.limit)
            waitMs = try c.value("wait_ms", default: d.waitMs)
        }
    }

    /// Parallel apply (README "Apply"): a pulled page's key-disjoint parts apply at once on their own connections.
    public struct Apply: Sendable, Decodable, Hashable {
        /// Connections applying at once, 1…32 (1: every page in one transaction). Default half the machine's cores,
        /// 1…8: the parts' work runs in the region's database, which also serves the application, and the agent's
        /// own decoding and pulls take a core (on 2 cores a second worker measured no gain: README "Apply").
        public var workers: Int
        /// A page with fewer entries applies in one transaction: below it, the parts' extra commits cost more than
        /// they save. 2…1 000 000. Default 200.
        public var minParallelEntries: Int

        public static var defaultWorkers: Int { max(1, min(8, sysconf(Int32(_SC_NPROCESSORS_ONLN)) / 2)) }

        public init(workers: Int = Apply.defaultWorkers, minParallelEntries: Int = 200) {
            self.workers = workers
            self.minParallelEntries = minParallelEntries
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: ConfigurationKey.self)
            try c.rejectUnknownKeys(["workers", "min_parallel_entries"])
            let d = Apply()
            workers = try c.value("workers", default: d.workers)
            minParallelEntries = try c.value("min_parallel_entries", default: d.minParallelEntries)
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

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: ConfigurationKey.self)
            try c.rejectUnknownKeys(["initial_ms", "max_ms"])
            let d = Backoff()
            initialMs = try c.value("initial_ms", default: d.initialMs)
            maxMs = try c.value("max_ms", default: d.maxMs)
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

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: ConfigurationKey.self)
        try c.rejectUnknownKeys([
            "region", "hub", "token", "ca", "database", "tuning", "bootstrap", "capture", "output_plugin", "journal",
            "compression",
        ])
        region = try c.required("region")
        if let list = try? c.decode([String].self, forKey: ConfigurationKey("hub")) {
            hubs = list
        } else {
            hubs = [try c.required("hub")]
        }
        token = try c.required("token")
        ca = try c.optional("ca")
        database = try c.required("database")
        tuning = try c.value("tuning", default: Tuning())
        bootstrap = try c.value("bootstrap", default: Bootstrap())
        capture = try c.value("capture", default: CaptureMode.auto)
        outputPlugin = try c.value("output_plugin", default: OutputPlugin.auto)
        journal = try c.value("journal", default: false)
        compression = try c.value("compression", default: HubCompression.auto)
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
        try Self.range(tuning.apply.workers, 1...32, "tuning.apply.workers")
        try Self.range(tuning.apply.minParallelEntries, 2...1_000_000, "tuning.apply.min_parallel_entries")
        try Self.range(tuning.backoff.initialMs, 1...60_000, "tuning.backoff.initial_ms")
        try Self.range(tuning.backoff.maxMs, tuning.backoff.initialMs...600_000, "tuning.backoff.max_ms")
        try Self.range(tuning.statusIntervalMs, 100...3_600_000, "tuning.status_interval_ms")
        try Self.range(tuning.requestTimeoutMs, 100...600_000, "tuning.request_timeout_ms")
        try Self.range(tuning.captureQueueMaxChanges, 1000...10_000_000, "tuning.capture_queue_max_changes")
        try Self.range(tuning.largeTransactionChanges, 100...10_000_000, "tuning.large_transaction_changes")
        // Each spilled transaction in the capture queue keeps a scratch file open: at most about 100 of them.
        try Self.check(
            tuning.largeTransactionChanges * 100 >= tuning.captureQueueMaxChanges, "tuning.large_transaction_changes",
            "must be at least tuning.capture_queue_max_changes / 100 (\(tuning.captureQueueMaxChanges / 100)): each "
                + "spilled transaction the capture queue holds keeps a scratch file open")
        try Self.check(
            tuning.spillDirectory.hasPrefix("/"), "tuning.spill_directory", "must be an absolute path")
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
