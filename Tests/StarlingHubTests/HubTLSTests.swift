import Foundation
import StarlingCore
import StarlingHTTP2
import StarlingHub
import StarlingTestSupport
import Testing

/// TLS on the hub's port: only HTTP/2 over TLS gets in; with `tls.client_ca`, only clients with a certificate.
@Suite(.timeLimit(.minutes(2)))
struct HubTLSTests {
    static func curl(_ arguments: [String]) async throws -> ProcessRunner.Result {
        try await ProcessRunner.run("curl", ["-sS", "--max-time", "10", "-w", "\n%{http_version} %{http_code}"] + arguments)
    }

    @Test func tlsPortServesOnlyHTTP2OverTLS() async throws {
        // Proves the TLS hub answers curl over h2 with the test CA, and refuses cleartext HTTP/1.1, h2c prior
        // knowledge and HTTP/1.1 over TLS (no ALPN h2) without ever answering with an HTTP response.
        let ca = try TestCertificates.shared().caCertificatePath
        try await SecureHub.with(tls: try SecureHub.tls(), client: try SecureHub.clientTLS()) { hub, port in
            let good = try await Self.curl(["--http2", "--cacert", ca, "https://localhost:\(port)/healthz"])
            #expect(good.exitCode == 0 && good.stdout.hasSuffix("\n2 200"), "\(good.transcript)")
            let plain = try await Self.curl(["--http1.1", "http://127.0.0.1:\(port)/healthz"])
            #expect(plain.exitCode != 0, "\(plain.transcript)")
            #expect(!plain.stdout.contains("200"), "\(plain.transcript)")
            let h2c = try await Self.curl(["--http2-prior-knowledge", "http://127.0.0.1:\(port)/healthz"])
            #expect(h2c.exitCode != 0, "\(h2c.transcript)")
            let http11TLS = try await Self.curl(["--http1.1", "--cacert", ca, "https://localhost:\(port)/healthz"])
            #expect(http11TLS.exitCode != 0, "\(http11TLS.transcript)")
            #expect(!http11TLS.stdout.contains("200"), "\(http11TLS.transcript)")
            // Our own client over TLS reaches a region endpoint.
            let config = try await hub.send("GET", "/v1/config", token: HubHarness.token("r1"))
            #expect(config.status == 200)
        }
    }

    @Test func mutualTLSRefusesClientsWithoutACertificate() async throws {
        // Proves with tls.client_ca a client without a certificate (curl and ours) or with one from another CA
        // is refused during the handshake, while one with a certificate from the CA gets through, token and all.
        let certificates = try TestCertificates.shared()
        let withCertificate = try SecureHub.clientTLS(
            certificate: certificates.clientCertificatePath, key: certificates.clientKeyPath)
        try await SecureHub.with(tls: try SecureHub.tls(mutual: true), client: withCertificate) { hub, port in
            let url = "https://localhost:\(port)/healthz"
            let anonymous = try await Self.curl(["--http2", "--cacert", certificates.caCertificatePath, url])
            #expect(anonymous.exitCode != 0, "\(anonymous.transcript)")
            let stranger = try await Self.curl([
                "--http2", "--cacert", certificates.caCertificatePath, "--cert", certificates.untrustedCertificatePath,
                "--key", certificates.untrustedKeyPath, url,
            ])
            #expect(stranger.exitCode != 0, "\(stranger.transcript)")
            let known = try await Self.curl([
                "--http2", "--cacert", certificates.caCertificatePath, "--cert", certificates.clientCertificatePath,
                "--key", certificates.clientKeyPath, url,
            ])
            #expect(known.exitCode == 0 && known.stdout.hasSuffix("\n2 200"), "\(known.transcript)")

            let config = try await hub.send("GET", "/v1/config", token: HubHarness.token("r1"))
            #expect(config.status == 200)
            let noCertificate = try HTTP2Client(
                configuration: HTTP2ClientConfiguration(
                    baseURL: "https://127.0.0.1:\(port)", tls: try SecureHub.clientTLS()))
            defer { noCertificate.shutdown() }
            await #expect(throws: (any Error).self) {
                _ = try await hub.send("GET", "/v1/config", token: HubHarness.token("r1"), client: noCertificate)
            }
        }
    }

    @Test func cleartextIsLoopbackOnlyUnlessInsecure() throws {
        // Proves TLS is the default for a reachable address: no tls on 0.0.0.0 is refused naming `listen`.
        var configuration = HubConfiguration(
            listen: "0.0.0.0:8443", database: "postgresql://x", adminToken: "admin-token",
            regions: [.init(name: "a", token: "token-a1")], tables: [])
        do {
            _ = try configuration.validate()
            Issue.record("h2c on 0.0.0.0 accepted")
        } catch {
            #expect(error.key == "listen")
        }
        configuration.insecure = true
        #expect(throws: Never.self) { try configuration.validate() }
    }
}
