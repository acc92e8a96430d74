import Foundation
import Logging
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
            var logger = Logger(label: "test.hub.secure")
            logger.logLevel = .critical
            let hub = try Hub(configuration: configuration, logger: logger)
            try await hub.start()
            let port = hub.localAddress?.port ?? 0
            let scheme = tls == nil ? "http" : "https"
            let client = try HTTP2Client(
                configuration: HTTP2ClientConfiguration(baseURL: "\(scheme)://127.0.0.1:\(port)", tls: clientTLS))
            let harness = HubHarness(hub: hub, database: database, client: client)
            do {
                let value = try await body(harness, port)
                client.shutdown()
                await hub.shutdown(gracePeriod: .seconds(1))
                return value
            } catch {
                client.shutdown()
                await hub.shutdown(gracePeriod: .seconds(1))
                throw error
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
