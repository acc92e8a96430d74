// swift-tools-version:6.0
// Starling: multi-active PostgreSQL sync (hub + regional agents).
// Layers, lowest first: C shims → IO → TLS → HTTP2, Postgres → Core (pure) → Hub, Agent → CLI.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// Documents and SQL migrations are files, embedded in the binary as SwiftPM resources (`embedInCode`: one
/// `PackageResources` byte array per file, named after the file), so an installed `starling` needs no files beside
/// it. The migrations stay in the top-level `Migrations/` folder operators read; a resource path may leave the
/// target's folder but not name a folder, so each file is listed. A new migration is listed here and in
/// `HubMigrations`/`AgentMigrations`; their tests fail when a file of `Migrations/` is not embedded.
func migrations(_ folder: String, _ files: [String]) -> [Resource] {
    files.map { .embedInCode("../../Migrations/\(folder)/\($0)") }
}

let hubMigrations = migrations("hub", [
    "0001_init.sql", "0002_dead_letters.sql", "0003_partitioned_log.sql", "0004_reconcile.sql",
    "0005_c_collation.sql", "0006_origin_marks.sql", "0007_staged_chunks.sql", "0008_log_terms.sql",
    "0009_schema_changes.sql",
])

let agentMigrations = migrations("agent", [
    "0001_starling_schema.sql", "0002_bootstrap.sql", "0003_shape_guard.sql", "0004_deferred_entries.sql",
    "0005_next_id.sql", "0006_wal_capture.sql", "0007_table_lifecycle.sql", "0008_log_terms.sql",
    "0009_spilled_entries.sql", "0010_schema_changes.sql", "0011_apply_parts.sql", "0012_ddl_events.sql",
    "0013_apply_refusal.sql", "0014_schema_made_here.sql", "0015_lock_rows.sql",
])

let package = Package(
    name: "starling",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "starling", targets: ["StarlingCLI"]),
        // Fuzz targets (ops/fuzz builds them with -sanitize=fuzzer; a plain build gives a corpus replayer).
        // Benchmarks' WAN emulation: a delaying TCP proxy (StarlingProxy), a tool beside `starling`, not in it.
        .executable(name: "starling-netdelay", targets: ["StarlingNetDelay"]),
        .executable(name: "FuzzChangeDecoder", targets: ["FuzzChangeDecoder"]),
        .executable(name: "FuzzHTTP2Server", targets: ["FuzzHTTP2Server"]),
        .executable(name: "FuzzPgOutputDecoder", targets: ["FuzzPgOutputDecoder"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "5.0.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C shims and system libraries.
        .target(name: "CShims", cSettings: [.define("_GNU_SOURCE")]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CNGHTTP2", pkgConfig: "libnghttp2", providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),

        // Transport.
        .target(name: "StarlingIO", dependencies: ["CShims"], swiftSettings: strict),
        .target(name: "StarlingTLS", dependencies: ["COpenSSL"], swiftSettings: strict),
        .target(name: "StarlingHTTP2",
                dependencies: ["StarlingIO", "StarlingTLS", "CNGHTTP2", "CZlib",
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),

        // Postgres client.
        .target(name: "StarlingPostgres",
                dependencies: ["CLibPQ", .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),

        // Pure model and conflict logic: imports none of our modules.
        .target(name: "StarlingCore", swiftSettings: strict),

        // Hub and agent.
        .target(name: "StarlingHub",
                dependencies: ["StarlingCore", "StarlingHTTP2", "StarlingPostgres", "StarlingIO", "StarlingTLS",
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "Prometheus", package: "swift-prometheus")],
                resources: [.embedInCode("Resources/openapi.json"), .embedInCode("Resources/dashboard.html")]
                    + hubMigrations,
                swiftSettings: strict),
        .target(name: "StarlingAgent",
                dependencies: ["StarlingCore", "StarlingHTTP2", "StarlingIO", "StarlingPostgres", "StarlingTLS",
                               .product(name: "Logging", package: "swift-log")],
                resources: agentMigrations,
                swiftSettings: strict),

        // The `starling` executable.
        .executableTarget(name: "StarlingCLI",
                          dependencies: ["StarlingHub", "StarlingAgent", "StarlingCore", "StarlingHTTP2",
                                         "StarlingPostgres", "StarlingTLS", "StarlingIO",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log"),
                                         .product(name: "Yams", package: "Yams")],
                          swiftSettings: strict),

        // A loopback TCP proxy that cuts, delays, truncates, refuses: for the fault tests (through TestSupport)
        // and the benchmarks' `starling-netdelay`. Imports none of our modules; never linked into `starling`.
        .target(name: "StarlingProxy", swiftSettings: strict),
        .executableTarget(name: "StarlingNetDelay", dependencies: ["StarlingProxy"], swiftSettings: strict),

        // Not a product: throwaway databases, certificates, process runners for tests.
        .target(name: "StarlingTestSupport",
                dependencies: ["StarlingPostgres", "StarlingProxy", "CShims"],
                swiftSettings: strict),

        // libFuzzer targets; sources and committed corpora live under Tests/Fuzz/<target>. FuzzReplay is their
        // shared entry point in a plain build (replaying inputs without libFuzzer).
        .target(name: "FuzzReplay", path: "Tests/Fuzz/FuzzReplay"),
        .executableTarget(name: "FuzzChangeDecoder", dependencies: ["StarlingCore", "FuzzReplay"],
                          path: "Tests/Fuzz/FuzzChangeDecoder", exclude: ["corpus"]),
        .executableTarget(name: "FuzzHTTP2Server",
                          dependencies: ["StarlingHTTP2", "StarlingIO", "FuzzReplay",
                                         .product(name: "Logging", package: "swift-log")],
                          path: "Tests/Fuzz/FuzzHTTP2Server", exclude: ["corpus"]),
        .executableTarget(name: "FuzzPgOutputDecoder", dependencies: ["StarlingPostgres", "FuzzReplay"],
                          path: "Tests/Fuzz/FuzzPgOutputDecoder", exclude: ["corpus"]),

        .testTarget(name: "StarlingIOTests", dependencies: ["StarlingIO"]),
        .testTarget(name: "StarlingTLSTests", dependencies: ["StarlingTLS", "StarlingTestSupport"]),
        .testTarget(name: "StarlingHTTP2Tests",
                    dependencies: ["StarlingHTTP2", "StarlingTLS", "StarlingIO", "StarlingTestSupport",
                                   .product(name: "Logging", package: "swift-log")],
                    exclude: ["Fixtures"]),
        .testTarget(name: "StarlingProxyTests", dependencies: ["StarlingProxy"]),
        .testTarget(name: "StarlingTestSupportTests", dependencies: ["StarlingTestSupport", "StarlingPostgres"]),
        .testTarget(name: "StarlingPostgresTests", dependencies: ["StarlingPostgres", "StarlingTestSupport"]),
        .testTarget(name: "StarlingCoreTests", dependencies: ["StarlingCore", "StarlingTestSupport"]),
        .testTarget(name: "StarlingHubTests",
                    dependencies: ["StarlingHub", "StarlingCore", "StarlingHTTP2", "StarlingIO", "StarlingPostgres",
                                   "StarlingTLS", "StarlingTestSupport",
                                   .product(name: "Logging", package: "swift-log")],
                    exclude: ["Fixtures"]),
        // The agent's loop tests run real agents against the real hub in-process (not a double): a test target
        // may depend on both; the sources never import each other.
        .testTarget(name: "StarlingAgentTests",
                    dependencies: ["StarlingAgent", "StarlingCore", "StarlingTestSupport", "StarlingHub",
                                   "StarlingHTTP2", "StarlingPostgres", "StarlingIO",
                                   .product(name: "Logging", package: "swift-log")],
                    exclude: ["Fixtures"]),
        // StarlingCore: the oracles replay the hub's log through the pure resolver.
        .testTarget(name: "EndToEndTests",
                    dependencies: ["StarlingTestSupport", "StarlingCore", "StarlingHTTP2", "StarlingPostgres"],
                    exclude: ["Fixtures"]),
    ]
)
