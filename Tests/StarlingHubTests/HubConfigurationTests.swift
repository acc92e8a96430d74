import Foundation
import StarlingHub
import StarlingPostgres
import StarlingTestSupport
import Testing

struct HubConfigurationTests {
    /// Decodes JSON text (YAML's subset) with the strict decoder, then validates.
    private func load(_ json: String) throws -> HubSettings { try ConfigurationLoading.settings(json) }

    private static let base = #""database":"postgresql://x/y","admin_token":"admin-secret""#
    private static let region = #"{"name":"us-east","token":"secret-token"}"#
    private static let table = #"{"name":"public.items"}"#

    static let invalid: [(String, String)] = [
        (#"{\#(base),"regions":[\#(region)],"tables":[\#(table)],"colour":1}"#, "colour"),
        (#"{\#(base),"regions":[\#(region),{"name":"eu","tokn":"secret-token"}],"tables":[]}"#, "regions[1].tokn"),
        (#"{\#(base),"regions":[\#(region),{"name":"eu"}],"tables":[]}"#, "regions[1].token"),
        (#"{\#(base),"regions":[\#(region),\#(region)],"tables":[]}"#, "regions[1].name"),
        (#"{\#(base),"regions":[{"name":"hub","token":"secret-token"}],"tables":[]}"#, "regions[0].name"),
        (
            #"{\#(base),"regions":[\#(region)],"tables":[{"name":"public.items","policy":"newest"}]}"#,
            "tables[0].policy"
        ),
        (#"{\#(base),"regions":[\#(region)],"tables":[{"name":"items"}]}"#, "tables[0].name"),
        (
            #"{\#(base),"regions":[\#(region)],"tables":[{"name":"public.items","manual_provisional":"lww"}]}"#,
            "tables[0].manual_provisional"
        ),
        (#"{\#(base),"listen":"localhost","regions":[\#(region)],"tables":[]}"#, "listen"),
        (#"{\#(base),"listen":"10.0.0.1:8443","regions":[\#(region)],"tables":[]}"#, "listen"),
        (#"{"database":"postgresql://x/y","regions":[\#(region)],"tables":[]}"#, "admin_token"),
        (#"{\#(base),"regions":[{"name":"us","token_sha256":"abc"}],"tables":[]}"#, "regions[0].token_sha256"),
        (#"{\#(base),"regions":[],"tables":[]}"#, "regions"),
        (#"{\#(base),"regions":[\#(region)],"tables":[],"limits":{"max_wait_ms":-1}}"#, "limits.max_wait_ms"),
        (#"{\#(base),"regions":[\#(region)],"tables":[],"limits":{"max_wait":1}}"#, "limits.max_wait"),
        (#"{"admin_token":"admin-secret","regions":[\#(region)],"tables":[]}"#, "database"),
    ]

    @Test(arguments: invalid)
    func invalidConfigurationNamesTheKey(_ json: String, _ key: String) throws {
        // Proves each broken configuration is refused with an error naming the offending key.
        ConfigurationLoading.expectRefused(json, naming: key)
    }

    @Test func validConfigurationKeepsOnlyHashes() throws {
        // Proves a valid configuration resolves policies, priorities and token hashes, with defaults applied.
        let settings = try load(
            #"{\#(Self.base),"regions":[{"name":"us-east","token":"secret-token","priority":7}],"#
                + #""tables":[{"name":"public.items","policy":"manual","manual_provisional":"lww"},"#
                + #"{"name":"public.b"}]}"#
        )
        #expect(settings.regions[0].tokenHash.count == 32)
        #expect(settings.priorities["us-east"] == 7)
        #expect(settings.tablesByName["public.items"]?.policy == .manual(provisional: .lww))
        #expect(settings.tablesByName["public.b"]?.policy == .lww)
        #expect(settings.listen.port == 8443)
        #expect(settings.limits.maxPullLimit == 5000)
    }

    @Test func everyLimitTheDecoderReadsIsAccepted() throws {
        // Proves each `limits` key is accepted (not refused as unknown) and lands in its field.
        let limits = #"{"max_body_bytes":2048,"max_push_changes":10,"max_transaction_changes":20,"#
            + #""max_queued_changes":30,"max_batch_changes":40,"default_pull_limit":50,"max_pull_limit":60,"#
            + #""max_wait_ms":70,"pool_connections":8,"status_flush_ms":90,"log_cache_bytes":100}"#
        let settings = try load(#"{\#(Self.base),"regions":[\#(Self.region)],"tables":[],"limits":\#(limits)}"#)
        let expected = [2048, 10, 20, 30, 40, 50, 60, 70, 8, 90, 100]
        let l = settings.limits
        let actual = [
            l.maxBodyBytes, l.maxPushChanges, l.maxTransactionChanges, l.maxQueuedChanges, l.maxBatchChanges,
            l.defaultPullLimit, l.maxPullLimit, l.maxWaitMs, l.poolConnections, l.statusFlushMs, l.logCacheBytes,
        ]
        #expect(actual == expected)
    }

    static let yamlSamples: [(String, Int32, String?)] = [
        ("Tests/StarlingHubTests/Fixtures/hub-minimal.yaml", 0, nil),
        ("Tests/StarlingHubTests/Fixtures/hub-full.yaml", 0, nil),
        ("ops/examples/hub.yaml", 0, nil),
        ("Tests/StarlingHubTests/Fixtures/hub-unknown-key.yaml", 2, "regions[1].tokn"),
        ("Tests/StarlingHubTests/Fixtures/hub-bad-policy.yaml", 2, "tables[0].policy"),
    ]

    @Test(arguments: yamlSamples)
    func yamlSamplesParseWithTheRealBinary(_ path: String, _ exitCode: Int32, _ key: String?) async throws {
        // Proves every sample hub.yaml is read by `starling hub --check` as expected (YAML goes through Yams).
        let result = try await ProcessRunner.run(
            try StarlingBinary.path(), ["hub", "--check", "--config", repositoryRoot + "/" + path])
        #expect(result.exitCode == exitCode, "\(result.transcript)")
        if let key { #expect(result.stderr.contains(key), "\(result.transcript)") }
    }
}

struct HubMigrationsTests {
    @Test func everyMigrationFileIsEmbeddedInOrder() throws {
        // Proves the binary embeds every Migrations/hub/*.sql, in version order: a file added to the folder but
        // not listed in Package.swift and HubMigrations fails here instead of never being applied.
        let files = try PostgresMigrator.loadMigrations(directory: repositoryRoot + "/Migrations/hub")
        #expect(files.map(\.label) == HubMigrations.all.map(\.label))
        #expect(files == HubMigrations.all)
    }
}
