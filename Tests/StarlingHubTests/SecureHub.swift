import Foundation
import StarlingCore
import StarlingHTTP2
import StarlingHub
import StarlingTLS
import StarlingTestSupport

/// A hub started from a configuration the test shapes (tokens, rotation, TLS, mTLS), on 127.0.0.1:0 over a
/// fresh test database; the security tests' counterpart of ``HubHarness`` (whose configuration is fixed).
///
/// `with` hands the body a ``HubHarness`` (for its request helpers) and the port; the hub and the harness's
/// client are shut down and the database dropped whether the body returned or threw.
enum SecureHub {
    /// `HubHarness.configuration` with the given tweaks applied.
    static func with<T>(
        tls: HubConfiguration.TLS? = nil, client clientTLS: TLSConfiguration? = nil,
        configure: (inout HubConfiguration) -> Void = { _ in },
        _ body: (HubHarness, UInt16) async throws -> T
    ) async throws -> T {
        try await TestDatabase.with { database in
            var configuration = HubHarness.configuration(database: database.url, tables: HubHarness.defaultTables)
            configuration.tls = tls
            configure(&configuration)
            return try await HubHarness.run(configuration, on: database, clientTLS: clientTLS, logLevel: .critical) {
                harness in try await body(harness, harness.hub.localAddress?.port ?? 0)
            }
        }
    }

    /// The test CA's server certificate and key as hub.yaml `tls`, with `client_ca` when `mutual`.
    static func tls(mutual: Bool = false) throws -> HubConfiguration.TLS {
        let certificates = try TestCertificates.shared()
        return HubConfiguration.TLS(
            cert: certificates.serverCertificatePath, key: certificates.serverKeyPath,
            clientCA: mutual ? certificates.caCertificatePath : nil)
    }

    /// A client TLS configuration trusting the test CA, optionally presenting a certificate.
    static func clientTLS(certificate: String? = nil, key: String? = nil) throws -> TLSConfiguration {
        let certificates = try TestCertificates.shared()
        return .client(
            trustRootsPath: certificates.caCertificatePath, serverName: "localhost", certificateChainPath: certificate,
            privateKeyPath: key)
    }
}
