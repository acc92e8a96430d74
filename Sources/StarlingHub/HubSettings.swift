public import StarlingCore
public import StarlingIO
public import StarlingTLS

/// A validated ``HubConfiguration`` in the form the hub runs with: the parsed listen address, token hashes
/// only (plain tokens are dropped here), priorities and per-table policies.
public struct HubSettings: Sendable {
    /// A region as the hub knows it at run time.
    public struct Region: Sendable, Hashable {
        public var name: String
        /// SHA-256 of the bearer token (raw 32 bytes).
        public var tokenHash: [UInt8]
        public var priority: Int
        /// Replaced tokens still accepted until their time (rotation).
        public var previousTokens: [PreviousToken] = []
        /// The region bits of `starling.next_id()` (hub.yaml `regions[].id`); nil when not configured.
        public var id: Int? = nil
    }

    /// A replaced token's hash and the end of its validity (exclusive), microseconds since the Unix epoch.
    public struct PreviousToken: Sendable, Hashable {
        public var tokenHash: [UInt8]
        public var validUntilMicros: Int64
    }

    /// Most previous tokens per region (and for admin): a rotation needs one; a few allow overlapping ones.
    public static let maxPreviousTokens = 8

    /// A synced table and its conflict policy.
    public struct Table: Sendable, Hashable {
        /// `schema.table`.
        public var name: String
        public var policy: ConflictPolicy
        /// Counter columns (`delta:`), combined as `head + (after − before)` on a conflict.
        public var deltaColumns: [String] = []
    }

    public var listen: SocketAddress
    public var tls: TLSConfiguration?
    public var database: String
    public var adminTokenHash: [UInt8]
    /// Replaced admin tokens still accepted until their time.
    public var adminPreviousTokens: [PreviousToken]
    public var regions: [Region]
    /// The synced tables, shared by every copy of these settings and replaced by a reload (``HubTableSet``).
    public let tableSet: HubTableSet
    /// Tables in configuration order, as of now (a reload may change them between two reads).
    public var tables: [Table] { tableSet.current.list }
    /// Tables by name, as of now.
    public var tablesByName: [String: Table] { tableSet.current.byName }
    public var priorities: RegionPriorities
    public var limits: HubConfiguration.Limits
    public var insecure: Bool
    /// The `/metrics` scrape token's hash (``HubConfiguration/metricsToken``); nil: only the admin token.
    public var metricsTokenHash: [UInt8]?
    /// `/metrics` without a token (``HubConfiguration/metricsPublic``).
    public var metricsPublic = false
    /// Log retention: how long pulled entries stay, and the partitions that hold them.
    public var retention = Retention()
    /// Reconciliation schedule and limits.
    public var reconcile = ReconcileSettings()
}

extension HubConfiguration {
    /// Checks every rule and returns the run-time settings; the error names the offending key.
    public func validate() throws(HubError) -> HubSettings {
        let address: SocketAddress
        do {
            address = try SocketAddress(parsing: listen)
        } catch {
            throw HubError(code: .invalidConfiguration, message: "\(error.message)", key: "listen")
        }
        guard !database.isEmpty else {
            throw HubError(code: .invalidConfiguration, message: "must not be empty", key: "database")
        }
        let adminHash = try Self.tokenHash(plain: adminToken, hex: adminTokenSHA256, key: "admin_token")
        let adminPrevious = try Self.previousTokens(adminPreviousTokens, key: "admin_previous_tokens")
        let regions = try validateRegions()
        let metricsHash =
            metricsToken == nil && metricsTokenSHA256 == nil
            ? nil : try Self.tokenHash(plain: metricsToken, hex: metricsTokenSHA256, key: "metrics_token")
        try Self.checkTokensDistinct(
            admin: adminHash, adminPrevious: adminPrevious, regions: regions, metrics: metricsHash)
        let tables = try validateTables()
        try validateLimits()
        var tlsConfiguration: TLSConfiguration?
        if let tls {
            guard !tls.cert.isEmpty else { throw invalid("must not be empty", "tls.cert") }
            guard !tls.key.isEmpty else { throw invalid("must not be empty", "tls.key") }
            tlsConfiguration = try tls.validated()
        } else if !insecure && !address.isLoopback {
            throw invalid("h2c (no tls) is allowed on a loopback address only; add tls or insecure: true", "listen")
        }
        let retentionSettings = try retention.validate()
        var settings = HubSettings(
            listen: address, tls: tlsConfiguration, database: database, adminTokenHash: adminHash,
            adminPreviousTokens: adminPrevious, regions: regions,
            tableSet: HubTableSet(tables),
            priorities: RegionPriorities(
                Dictionary(regions.map { ($0.name, $0.priority) }, uniquingKeysWith: { a, _ in a })),
            limits: limits, insecure: insecure)
        settings.metricsTokenHash = metricsHash
        settings.metricsPublic = metricsPublic
        settings.retention = retentionSettings
        settings.reconcile = try reconcile.validated()
        return settings
    }

    private func validateRegions() throws(HubError) -> [HubSettings.Region] {
        guard !regions.isEmpty else { throw invalid("at least one region is required", "regions") }
        var seen = Set<String>()
        var ids = Set<Int>()
        var result: [HubSettings.Region] = []
        for (index, region) in regions.enumerated() {
            let key = "regions[\(index)]"
            guard Self.isValidRegionName(region.name) else {
                throw invalid(
                    "\"\(region.name)\" is not a region name (1-64 of a-z A-Z 0-9 _ -)", key + ".name")
            }
            guard region.name != LogEntry.hubOrigin else {
                throw invalid("\"hub\" is reserved for the hub's own entries", key + ".name")
            }
            guard seen.insert(region.name).inserted else {
                throw invalid("duplicate region \"\(region.name)\"", key + ".name")
            }
            let hash = try Self.tokenHash(plain: region.token, hex: region.tokenSHA256, key: key + ".token")
            let previous = try Self.previousTokens(region.previousTokens, key: key + ".previous_tokens")
            result.append(
                HubSettings.Region(
                    name: region.name, tokenHash: hash, priority: region.priority, previousTokens: previous,
                    id: try Self.validateRegionID(region.id, key: key + ".id", seen: &ids)))
        }
        return result
    }

    private func validateTables() throws(HubError) -> [HubSettings.Table] {
        var seen = Set<String>()
        var result: [HubSettings.Table] = []
        for (index, table) in tables.enumerated() {
            let key = "tables[\(index)]"
            guard Self.isQualifiedTableName(table.name) else {
                throw invalid("\"\(table.name)\" is not a schema.table name", key + ".name")
            }
            guard seen.insert(table.name).inserted else {
                throw invalid("duplicate table \"\(table.name)\"", key + ".name")
            }
            var provisional = ConflictPolicy.ManualProvisional.keepHead
            if let mode = table.manualProvisional {
                guard table.policy == "manual" else {
                    throw invalid("only a manual table takes manual_provisional", key + ".manual_provisional")
                }
                switch mode {
                case "keep": provisional = .keepHead
                case "lww": provisional = .lww
                default: throw invalid("must be keep or lww, not \"\(mode)\"", key + ".manual_provisional")
                }
            }
            let policy: ConflictPolicy
            do {
                policy = try ConflictPolicy(name: table.policy, manualProvisional: provisional)
            } catch {
                throw invalid(error.message, key + ".policy")
            }
            let delta = try Self.validateDeltaColumns(table.delta, key: key + ".delta")
            result.append(HubSettings.Table(name: table.name, policy: policy, deltaColumns: delta))
        }
        return result
    }

    private func validateLimits() throws(HubError) {
        let checks: [(String, Int, ClosedRange<Int>)] = [
            ("max_body_bytes", limits.maxBodyBytes, 1024...(1 << 30)),
            ("max_push_changes", limits.maxPushChanges, 1...100_000),
            ("max_transaction_changes", limits.maxTransactionChanges, limits.maxPushChanges...10_000_000),
            ("max_queued_changes", limits.maxQueuedChanges, 1...10_000_000),
            ("max_batch_changes", limits.maxBatchChanges, 1...1_000_000),
            ("default_pull_limit", limits.defaultPullLimit, 1...limits.maxPullLimit),
            ("max_pull_limit", limits.maxPullLimit, 1...100_000),
            ("max_wait_ms", limits.maxWaitMs, 0...300_000),
            ("pool_connections", limits.poolConnections, 1...64),
            ("status_flush_ms", limits.statusFlushMs, 10...60_000),
            ("log_cache_bytes", limits.logCacheBytes, 0...(16 << 30)),
        ]
        for (name, value, range) in checks where !range.contains(value) {
            throw invalid("\(value) is outside \(range.lowerBound)...\(range.upperBound)", "limits." + name)
        }
    }

    private func invalid(_ message: String, _ key: String) -> HubError {
        HubError(code: .invalidConfiguration, message: message, key: key)
    }

    /// The raw SHA-256 of a token given plain (`key`) or as hex (`key_sha256`); exactly one must be set.
    static func tokenHash(plain: String?, hex: String?, key: String) throws(HubError) -> [UInt8] {
        switch (plain, hex) {
        case (nil, nil):
            throw HubError(
                code: .invalidConfiguration, message: "missing token (give \(key) or \(key)_sha256)", key: key)
        case (.some, .some):
            throw HubError(code: .invalidConfiguration, message: "give \(key) or \(key)_sha256, not both", key: key)
        case (let plain?, nil):
            guard plain.utf8.count >= 8 else {
                throw HubError(code: .invalidConfiguration, message: "a token needs at least 8 characters", key: key)
            }
            return TLSDigest.sha256(Array(plain.utf8))
        case (nil, let hex?):
            guard let bytes = decodeHex(hex), bytes.count == TLSDigest.sha256Bytes else {
                throw HubError(
                    code: .invalidConfiguration, message: "must be 64 hex digits (a SHA-256)", key: key + "_sha256")
            }
            return bytes
        }
    }

    /// Validates a `previous_tokens` list: at most ``HubSettings/maxPreviousTokens``, each a token and an `until`.
    static func previousTokens(_ tokens: [PreviousToken], key: String) throws(HubError) -> [HubSettings.PreviousToken] {
        guard tokens.count <= HubSettings.maxPreviousTokens else {
            throw HubError(
                code: .invalidConfiguration, message: "at most \(HubSettings.maxPreviousTokens) previous tokens",
                key: key)
        }
        var result: [HubSettings.PreviousToken] = []
        for (index, token) in tokens.enumerated() {
            let entryKey = "\(key)[\(index)]"
            let hash = try tokenHash(plain: token.token, hex: token.tokenSHA256, key: entryKey + ".token")
            guard let until = RFC3339.microseconds(token.until) else {
                throw HubError(
                    code: .invalidConfiguration,
                    message: "\"\(token.until)\" is not an RFC 3339 time such as 2026-12-01T00:00:00Z",
                    key: entryKey + ".until")
            }
            result.append(HubSettings.PreviousToken(tokenHash: hash, validUntilMicros: until))
        }
        return result
    }

    /// Every token (current and previous, admin and regions, the `/metrics` scrape token) must be different: a shared token would let one
    /// principal act as another (the first match wins), so it is a configuration error naming the second one.
    static func checkTokensDistinct(
        admin: [UInt8], adminPrevious: [HubSettings.PreviousToken], regions: [HubSettings.Region],
        metrics: [UInt8]?
    ) throws(HubError) {
        var owners: [[UInt8]: String] = [admin: "admin_token"]
        var tokens: [(hash: [UInt8], key: String)] = adminPrevious.enumerated().map {
            ($1.tokenHash, "admin_previous_tokens[\($0)].token")
        }
        for (index, region) in regions.enumerated() {
            tokens.append((region.tokenHash, "regions[\(index)].token"))
            for (p, previous) in region.previousTokens.enumerated() {
                tokens.append((previous.tokenHash, "regions[\(index)].previous_tokens[\(p)].token"))
            }
        }
        if let metrics { tokens.append((metrics, "metrics_token")) }
        for (hash, key) in tokens {
            if let owner = owners[hash] {
                throw HubError(code: .invalidConfiguration, message: "the same token as \(owner)", key: key)
            }
            owners[hash] = key
        }
    }

    static func decodeHex(_ text: String) -> [UInt8]? {
        let digits = Array(text.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        var index = 0
        while index < digits.count {
            guard let high = hexValue(digits[index]), let low = hexValue(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        return bytes
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    static func isValidRegionName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...64).contains(bytes.count) else { return false }
        return bytes.allSatisfy { isIdentifierByte($0) || $0 == UInt8(ascii: "-") }
    }

    /// `schema.table`: two non-empty parts of letters, digits, `_` and `$`, neither starting with a digit.
    static func isQualifiedTableName(_ name: String) -> Bool {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        return parts.allSatisfy { part in
            let bytes = Array(part.utf8)
            guard let first = bytes.first, bytes.count <= 63, !(first >= 48 && first <= 57) else { return false }
            return bytes.allSatisfy { isIdentifierByte($0) || $0 == UInt8(ascii: "$") }
        }
    }

    private static func isIdentifierByte(_ byte: UInt8) -> Bool {
        (byte >= 48 && byte <= 57) || (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || byte == 95
    }
}

extension HubConfiguration.TLS {
    /// The server's TLS configuration; the versions and cipher lists are checked here (no file is read yet).
    func validated() throws(HubError) -> TLSConfiguration {
        var configuration = TLSConfiguration.server(
            certificateChainPath: cert, privateKeyPath: key, trustRootsPath: clientCA,
            clientCertificateMode: clientCA == nil ? .none : .required)
        switch minVersion {
        case nil, "1.2": configuration.minimumVersion = .tls12
        case "1.3": configuration.minimumVersion = .tls13
        case let other?:
            throw HubError(
                code: .invalidConfiguration, message: "\"\(other)\" is not a TLS version: \"1.2\" or \"1.3\"",
                key: "tls.min_version")
        }
        // Checked one list at a time, so the error names the key at fault.
        if let ciphers { configuration.tls12Ciphers = ciphers }
        try Self.check(configuration, key: "tls.ciphers")
        configuration.tls13CipherSuites = ciphersuites
        try Self.check(configuration, key: "tls.ciphersuites")
        return configuration
    }

    private static func check(_ configuration: TLSConfiguration, key: String) throws(HubError) {
        do {
            try TLSContext.checkPolicy(configuration)
        } catch {
            throw HubError(code: .invalidConfiguration, message: error.message, key: key)
        }
    }
}
