import Foundation
import StarlingCore
import StarlingHTTP2
import StarlingHub
import StarlingTLS
import StarlingTestSupport

/// An in-process hub for the operator tests (dashboard, admin CLI, ops files): like ``HubHarness`` but
/// optionally over TLS, because headless Chromium speaks HTTP/2 only over TLS and our server is HTTP/2 only.
///
/// The harness value is a ``HubHarness`` (same tokens: `token-<region>`, `admin-token`), plus the base URL
/// and, for TLS, the CA file that signed the server certificate.
struct OperatorHub {
    let harness: HubHarness
    let baseURL: String
    let caPath: String?
    let certificatePath: String?

    /// Runs `body` against a fresh hub: TLS with `certificate`/`key` (signed by `ca`) when given, else h2c.
    static func with<T>(
        tls: (certificate: String, key: String, ca: String)? = nil, _ body: (OperatorHub) async throws -> T
    ) async throws -> T {
        try await TestDatabase.with { database in
            var configuration = HubHarness.configuration(database: database.url, tables: HubHarness.defaultTables)
            configuration.tls = tls.map { HubConfiguration.TLS(cert: $0.certificate, key: $0.key) }
            let clientTLS = tls.map { TLSConfiguration.client(trustRootsPath: $0.ca) }
            return try await HubHarness.run(configuration, on: database, clientTLS: clientTLS) { harness in
                let port = harness.hub.localAddress?.port ?? 0
                let url = tls == nil ? "http://127.0.0.1:\(port)" : "https://127.0.0.1:\(port)"
                return try await body(
                    OperatorHub(harness: harness, baseURL: url, caPath: tls?.ca, certificatePath: tls?.certificate))
            }
        }
    }

    /// Runs `body` against a TLS hub using the shared test certificates.
    static func withTLS<T>(_ body: (OperatorHub) async throws -> T) async throws -> T {
        let certificates = try TestCertificates.shared()
        return try await with(
            tls: (certificates.serverCertificatePath, certificates.serverKeyPath, certificates.caCertificatePath), body)
    }

    /// A small realistic history: r1 and r2 write the same items row (an lww conflict, auto), r1 and r3 race on a
    /// manual table (an open conflict with different columns), and r2 pulls everything and confirms it (so it is
    /// healthy however long the test takes). Returns the open conflict's id.
    @discardableResult
    func seed() async throws -> Int64 {
        let hub = harness
        _ = try await hub.push(
            "r1", [Changes.insert("r1", 1, id: 1, row: ["name": "Widget", "qty": 5, "price": "12.50"], hlc: 1000)])
        _ = try await hub.push(
            "r2", [Changes.insert("r2", 1, id: 1, row: ["name": "Widget EU", "qty": 7, "price": "12.50"], hlc: 2000)])
        _ = try await hub.push(
            "r1",
            [
                Changes.insert(
                    "r1", 2, table: "public.manual", id: 10, row: ["status": "new", "total": "99.90", "note": nil],
                    hlc: 3000)
            ])
        let raced = try await hub.push(
            "r3",
            [
                Changes.insert(
                    "r3", 1, table: "public.manual", id: 10, row: ["status": "paid", "total": "99.90", "note": "rush"],
                    hlc: 4000)
            ])
        // The hub records a region's cursor from the `after` of its pulls (what the region has applied), so r2
        // pulls twice: the second pull confirms the first page and puts r2's cursor at the head. With one pull its
        // cursor stayed 0 and its lag grew with the wall clock: past 10 s (a slow browser start under a loaded
        // run) the dashboard rightly showed r2 as lagging, and the dashboard test failed.
        let page = try await hub.pull("r2", after: 0)
        _ = try await hub.pull("r2", after: page.json["next"]?.int64Value ?? 0)
        guard let conflict = raced.json["results"]?[0]?["conflict"]?.int64Value else {
            throw SeedFailed(response: raced.json)
        }
        return conflict
    }

    struct SeedFailed: Error {
        var response: JSONValue
    }
}

/// Where a test may leave files for a human: `$STARLING_TEST_OUTPUT` (set by ops/test), else a temp folder.
func testOutputDirectory() throws -> String {
    let directory =
        ProcessInfo.processInfo.environment["STARLING_TEST_OUTPUT"]
        ?? FileManager.default.temporaryDirectory.appendingPathComponent("starling-test-output").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return directory
}

/// A file of the repository as text.
func repositoryFile(_ path: String) throws -> String {
    try String(contentsOfFile: repositoryRoot + "/" + path, encoding: .utf8)
}
