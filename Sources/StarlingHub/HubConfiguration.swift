import StarlingCore

/// The hub's configuration, `hub.yaml` (DESIGN.md "Interfaces"), decoded strictly (an unknown key is an error)
/// and checked by ``validate()`` before anything starts.
///
/// ```yaml
/// listen: 127.0.0.1:8443
/// tls: {cert: certs/hub.crt, key: certs/hub.key, client_ca: certs/ca.crt}   # omitted: h2c, loopback only
/// database: postgresql://postgres@127.0.0.1:5544/starling_hub
/// admin_token: "…"                       # or admin_token_sha256: hex
/// admin_previous_tokens:                 # optional: old admin tokens still accepted until a time
///   - {token_sha256: "…", until: "2026-12-01T00:00:00Z"}
/// regions:
///   - {name: us-east, token: "…", priority: 100, id: 1}    # or token_sha256: hex; id: see ``Region/id``
///   - name: eu-west
///     token: "new…"
///     previous_tokens: [{token: "old…", until: "2026-12-01T00:00:00Z"}]   # rotation window
/// tables:
///   - {name: public.items, policy: lww}  # lww | priority | merge | manual (manual_provisional: keep | lww) | reject
///   - {name: public.stock, policy: lww, delta: [qty, balance]}   # counter columns, see ``Table/delta``
/// limits: {max_body_bytes: 16777216, …}  # optional, see ``Limits``
/// retention: {window: 7d, partition_entries: 1000000, inactive_after: 30d}   # optional, see ``Retention``
/// insecure: false                        # h2c on a non-loopback address
/// ```
/// Plain tokens are hashed (SHA-256) when the hub starts; only hashes stay in memory.
///
/// Token rotation without downtime: put the new token in `token`, move the old one to `previous_tokens` with an
/// `until` (RFC 3339) and restart the hub (agents retry and reconnect within a second); both tokens work until
/// `until`, so the agents can be given the new token one by one. After `until` the old token gets 401; remove it
/// at the next restart. Tokens and regions are read at start only: a restart is the switch. Only `tables` is
/// reloaded while the hub runs (SIGHUP, `POST /v1/admin/reload`, ``HubReloader``).
public struct HubConfiguration: Sendable, Hashable, Decodable {
    /// `host:port` to listen on (numeric IPv4 or `[IPv6]`). Default `127.0.0.1:8443`.
    public var listen: String
    /// TLS files; nil serves cleartext h2c (loopback only unless ``insecure``).
    public var tls: TLS?
    /// libpq URL of the hub's database. Required.
    public var database: String
    /// The admin bearer token in clear text; exactly one of this and ``adminTokenSHA256``.
    public var adminToken: String?
    /// The admin token's SHA-256, lowercase hex.
    public var adminTokenSHA256: String?
    /// Earlier admin tokens still accepted until their `until` (rotation). Default none; at most 8.
    public var adminPreviousTokens: [PreviousToken]
    /// The regions allowed to push and pull. At least one.
    public var regions: [Region]
    /// The synced tables and their conflict policies.
    public var tables: [Table]
    /// Limits and batch sizes; every field has a default.
    public var limits: Limits
    /// Log retention and partitioning; every field has a default (HubConfiguration+Retention.swift).
    public var retention: Retention = Retention()
    /// Permits h2c on a non-loopback address (tests and trusted networks only). Default false.
    public var insecure: Bool
    /// The scrape token for `/metrics` in clear text (or ``metricsTokenSHA256``): Prometheus sends it as a bearer
    /// token. `/metrics` takes it or the admin token; without either it answers 401, as region names, lags and
    /// conflict counts are nobody else's business. Default none (then only the admin token).
    public var metricsToken: String?
    /// The scrape token's SHA-256, lowercase hex.
    public var metricsTokenSHA256: String?
    /// Serves `/metrics` to anyone who reaches the port, no token read (a scraper on a private network that cannot
    /// send one). Default false.
    public var metricsPublic: Bool = false
    /// Reconciliation schedule and limits, see ``Reconcile``.
    public var reconcile: Reconcile = Reconcile()

    /// TLS certificate, key and optional client CA (mTLS: clients must present a certificate it signed).
    ///
    /// The policy: `min_version` `"1.2"` (default) or `"1.3"`; `ciphers`, the TLS 1.2 suites in OpenSSL's list
    /// syntax (default ECDHE with AES-GCM or ChaCha20-Poly1305; a list allowing a suite HTTP/2 forbids is refused);
    /// `ciphersuites`, the TLS 1.3 suites (default OpenSSL's three).
    public struct TLS: Sendable, Hashable, Decodable {
        public var cert: String
        public var key: String
        public var clientCA: String?
        public var minVersion: String?
        public var ciphers: String?
        public var ciphersuites: String?

        public init(
            cert: String, key: String, clientCA: String? = nil, minVersion: String? = nil, ciphers: String? = nil,
            ciphersuites: String? = nil
        ) {
            self.cert = cert
            self.key = key
            self.clientCA = clientCA
            self.minVersion = minVersion
            self.ciphers = ciphers
            self.ciphersuites = ciphersuites
        }
    }

    /// One region: its name, bearer token (plain or SHA-256 hex), priority (higher wins; default 0) and the
    /// earlier tokens still accepted during a rotation (default none; at most 8).
    public struct Region: Sendable, Hashable, Decodable {
        public var name: String
        public var token: String?
        public var tokenSHA256: String?
        public var priority: Int
        public var previousTokens: [PreviousToken]
        /// The region's number for `starling.next_id()` (optional, 0-1023, unique): the region bits of every id
        /// its database hands out. Sent to the agent in `/v1/config`. Never reuse a number while ids made with
        /// it are still around under another region; without one, `starling.next_id()` raises an error there.
        public var id: Int?

        public init(
            name: String, token: String? = nil, tokenSHA256: String? = nil, priority: Int = 0,
            previousTokens: [PreviousToken] = [], id: Int? = nil
        ) {
            self.name = name
            self.token = token
            self.tokenSHA256 = tokenSHA256
            self.priority = priority
            self.previousTokens = previousTokens
            self.id = id
        }
    }

    /// A replaced token that stays valid until `until`, an RFC 3339 time (`2026-12-01T00:00:00Z`, or with an
    /// offset such as `+02:00`); exactly one of `token` and `token_sha256`.
    public struct PreviousToken: Sendable, Hashable, Decodable {
        public var token: String?
        public var tokenSHA256: String?
        public var until: String

        public init(token: String? = nil, tokenSHA256: String? = nil, until: String) {
            self.token = token
            self.tokenSHA256 = tokenSHA256
            self.until = until
        }
    }

    /// One synced table (`schema.table`), its policy (default `lww`) and, for `manual`, what happens until an
    /// operator resolves (`keep`, the default: the head stays; `lww`: last writer wins provisionally).
    public struct Table: Sendable, Hashable, Decodable {
        public var name: String
        public var policy: String
        public var manualProvisional: String?
        /// Counter columns (default none): on a conflict of two updates each becomes `head + (after − before)`
        /// instead of either side's value, so concurrent increments in every region count; the rest of the row
        /// goes by `policy`, and the combined row is sent to every region including the origin. Each must be a
        /// smallint, integer, bigint or numeric column that is not part of the primary key; names are checked
        /// here (non-empty, unique, at most ``HubSettings/maxDeltaColumns``); types at hub start for a table
        /// already registered, else when an agent registers it (409 `invalid_delta_column`): the hub learns
        /// column types only from registrations.
        public var delta: [String]

        public init(name: String, policy: String = "lww", manualProvisional: String? = nil, delta: [String] = []) {
            self.name = name
            self.policy = policy
            self.manualProvisional = manualProvisional
            self.delta = delta
        }
    }

    /// Bounds on what clients can make the hub do.
    public struct Limits: Sendable, Hashable, Decodable {
        /// Largest request body after gzip decoding; larger → 413. Default 16 MiB.
        public var maxBodyBytes: Int = 16 << 20
        /// Most changes in one push. Default 5000.
        public var maxPushChanges: Int = 5000
        /// Most changes in a plain push of one origin transaction (older agents, which do not chunk), within
        /// `maxBodyBytes`: a request, held in memory as one. It does not bound transactions: a chunked one (every
        /// current agent's way past its batch) is staged and sequenced a slice at a time, whatever its size
        /// (README "Large transactions"). Default 4 000 000.
        public var maxTransactionChanges: Int = 4_000_000
        /// Changes waiting for the sequencer before pushes get 503. Default 100 000.
        public var maxQueuedChanges: Int = 100_000
        /// Most changes the sequencer commits in one transaction. Default 20 000.
        public var maxBatchChanges: Int = 20_000
        /// Pull page size when the request names none. Default 500.
        public var defaultPullLimit: Int = 500
        /// Largest pull page. Default 5000.
        public var maxPullLimit: Int = 5000
        /// Longest long-poll, milliseconds. Default 30 000.
        public var maxWaitMs: Int = 30_000
        /// Connections of the read pool (pulls, admin). Default 4.
        public var poolConnections: Int = 4
        /// How often region cursors and activity are written to the database, milliseconds. Default 1000.
        public var statusFlushMs: Int = 1000
        /// Bytes of the newest log entries kept encoded in memory, so pulls near the head are answered
        /// without the database (``LogCache``); 0 turns it off. Default 64 MiB.
        public var logCacheBytes: Int = 64 << 20

        public init() {}
    }

    public init(
        listen: String = "127.0.0.1:8443", tls: TLS? = nil, database: String, adminToken: String? = nil,
        adminTokenSHA256: String? = nil, adminPreviousTokens: [PreviousToken] = [], regions: [Region],
        tables: [Table], limits: Limits = Limits(), insecure: Bool = false
    ) {
        self.listen = listen
        self.tls = tls
        self.database = database
        self.adminToken = adminToken
        self.adminTokenSHA256 = adminTokenSHA256
        self.adminPreviousTokens = adminPreviousTokens
        self.regions = regions
        self.tables = tables
        self.limits = limits
        self.insecure = insecure
    }
}

// MARK: - Strict decoding (``ConfigurationKey`` refuses unknown keys, naming them)

extension HubConfiguration {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: ConfigurationKey.self)
        try c.rejectUnknownKeys([
            "listen", "tls", "database", "admin_token", "admin_token_sha256", "admin_previous_tokens", "regions",
            "tables", "limits", "insecure", "retention", "reconcile", "metrics_token", "metrics_token_sha256",
            "metrics_public",
        ])
        self.init(
            listen: try c.value("listen", default: "127.0.0.1:8443"), tls: try c.optional("tls"),
            database: try c.required("database"), adminToken: try c.optional("admin_token"),
            adminTokenSHA256: try c.optional("admin_token_sha256"),
            adminPreviousTokens: try c.value("admin_previous_tokens", default: []),
            regions: try c.value("regions", default: []),
            tables: try c.value("tables", default: []), limits: try c.value("limits", default: Limits()),
            insecure: try c.value("insecure", default: false))
        retention = try c.value("retention", default: Retention())
        reconcile = try c.value("reconcile", default: Reconcile())
        metricsToken = try c.optional("metrics_token")
        metricsTokenSHA256 = try c.optional("metrics_token_sha256")
        metricsPublic = try c.value("metrics_public", default: false)
    }
}

extension HubConfiguration.TLS {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: ConfigurationKey.self)
        try c.rejectUnknownKeys(["cert", "key", "client_ca", "min_version", "ciphers", "ciphersuites"])
        self.init(
            cert: try c.required("cert"), key: try c.required("key"), clientCA: try c.optional("client_ca"),
            minVersion: try c.optional("min_version"), ciphers: try c.optional("ciphers"),
            ciphersuites: try c.optional("ciphersuites"))
    }
}

extension HubConfiguration.Region {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: ConfigurationKey.self)
        try c.rejectUnknownKeys(["name", "token", "token_sha256", "priority", "previous_tokens", "id"])
        self.init(
            name: try c.required("name"), token: try c.optional("token"), tokenSHA256: try c.optional("token_sha256"),
            priority: try c.value("priority", default: 0), previousTokens: try c.value("previous_tokens", default: []),
            id: try c.optional("id"))
    }
}

extension HubConfiguration.PreviousToken {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: ConfigurationKey.self)
        try c.rejectUnknownKeys(["token", "token_sha256", "until"])
        self.init(token: try c.optional("token"), tokenSHA256: try c.optional("token_sha256"), until: try c.required("until"))
    }
}

extension HubConfiguration.Table {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: ConfigurationKey.self)
        try c.rejectUnknownKeys(["name", "policy", "manual_provisional", "delta"])
        self.init(
            name: try c.required("name"), policy: try c.value("policy", default: "lww"),
            manualProvisional: try c.optional("manual_provisional"), delta: try c.value("delta", default: []))
    }
}

extension HubConfiguration.Limits {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: ConfigurationKey.self)
        try c.rejectUnknownKeys([
            "max_body_bytes", "max_push_changes", "max_transaction_changes", "max_queued_changes", "max_batch_changes", "default_pull_limit",
            "max_pull_limit", "max_wait_ms", "pool_connections", "status_flush_ms", "log_cache_bytes",
        ])
        let d = HubConfiguration.Limits()
        self.init()
        maxBodyBytes = try c.value("max_body_bytes", default: d.maxBodyBytes)
        maxPushChanges = try c.value("max_push_changes", default: d.maxPushChanges)
        maxTransactionChanges = try c.value("max_transaction_changes", default: d.maxTransactionChanges)
        maxQueuedChanges = try c.value("max_queued_changes", default: d.maxQueuedChanges)
        maxBatchChanges = try c.value("max_batch_changes", default: d.maxBatchChanges)
        defaultPullLimit = try c.value("default_pull_limit", default: d.defaultPullLimit)
        maxPullLimit = try c.value("max_pull_limit", default: d.maxPullLimit)
        maxWaitMs = try c.value("max_wait_ms", default: d.maxWaitMs)
        poolConnections = try c.value("pool_connections", default: d.poolConnections)
        statusFlushMs = try c.value("status_flush_ms", default: d.statusFlushMs)
        logCacheBytes = try c.value("log_cache_bytes", default: d.logCacheBytes)
    }
}

extension HubConfiguration {
    /// Turns a decoder's error into a ``HubError`` naming the key.
    public static func describe(decodingError error: any Error) -> HubError {
        guard let error = error as? DecodingError else {
            return HubError(code: .invalidConfiguration, message: "\(error)")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return HubError(
                code: .invalidConfiguration, message: "required key is missing",
                key: ConfigurationKey.path(context.codingPath + [key]))
        case .typeMismatch(let type, let context):
            return HubError(
                code: .invalidConfiguration, message: "expected \(typeName(type))", key: ConfigurationKey.path(context.codingPath))
        case .valueNotFound(let type, let context):
            return HubError(
                code: .invalidConfiguration, message: "expected \(typeName(type)), found null",
                key: ConfigurationKey.path(context.codingPath))
        case .dataCorrupted(let context):
            return HubError(
                code: .invalidConfiguration, message: context.debugDescription, key: ConfigurationKey.path(context.codingPath))
        @unknown default:
            return HubError(code: .invalidConfiguration, message: "\(error)")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type: "an integer"
        case is Bool.Type: "true or false"
        default: "\(type)"
        }
    }
}
