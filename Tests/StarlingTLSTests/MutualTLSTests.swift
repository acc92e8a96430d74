import StarlingTLS
import StarlingTestSupport
import Testing

@Suite struct MutualTLSTests {
    private func client(certificate: String?, key: String?, version: TLSConfiguration.Version?) throws -> TLSContext {
        var configuration = try Contexts.clientConfiguration()
        configuration.certificateChainPath = certificate
        configuration.privateKeyPath = key
        configuration.maximumVersion = version
        return try TLSContext.client(configuration)
    }

    @Test(arguments: [TLSConfiguration.Version.tls12, .tls13])
    func requiredModeRefusesClientWithoutCertificate(version: TLSConfiguration.Version) throws {
        // Proves clientCertificateMode .required refuses a client that sends no certificate, on both sides.
        let pair = try EnginePair(
            client: client(certificate: nil, key: nil, version: version), server: Contexts.server(mode: .required))
        pair.pump()
        #expect(pair.serverFailure == .peerCertificateMissing)
        // TLS 1.3 clients finish before the server judges them and learn it from the alert when reading;
        // TLS 1.2 servers answer with a generic handshake_failure alert.
        #expect(pair.clientFailure == (version == .tls13 ? .peerCertificateMissing : .handshakeFailed))
    }

    @Test(arguments: [TLSConfiguration.Version.tls12, .tls13])
    func requiredModeAcceptsCertificateFromTrustedCA(version: TLSConfiguration.Version) throws {
        // Proves a client certificate issued by the trusted CA is accepted and visible to the server.
        let certificates = try Contexts.certificates()
        let pair = try EnginePair(
            client: client(
                certificate: certificates.clientCertificatePath, key: certificates.clientKeyPath, version: version),
            server: Contexts.server(mode: .required))
        pair.pump()
        #expect(pair.clientHandshake == .complete)
        #expect(pair.serverHandshake == .complete)
        #expect(pair.serverFailure == nil && pair.clientFailure == nil)
        #expect(pair.server.peerCertificateVerified)
        #expect(pair.server.peerCertificateSubject == "CN=starling-test-client")
        let data = pattern(10_000)
        #expect(data.withUnsafeBytes { pair.client.writePlaintext($0) } == .wrote(data.count))
        pair.pump()
        #expect(pair.serverReceived == data)
    }

    @Test(arguments: [TLSConfiguration.Version.tls12, .tls13])
    func requiredModeRefusesCertificateFromOtherCA(version: TLSConfiguration.Version) throws {
        // Proves a client certificate from an untrusted CA is refused, and the client learns it.
        let certificates = try Contexts.certificates()
        let pair = try EnginePair(
            client: client(
                certificate: certificates.untrustedCertificatePath, key: certificates.untrustedKeyPath,
                version: version),
            server: Contexts.server(mode: .required))
        pair.pump()
        #expect(pair.serverFailure == .verificationFailed)
        #expect(pair.clientFailure == .verificationFailed)
        #expect(!pair.server.peerCertificateVerified)
    }

    @Test func optionalModeAcceptsClientWithoutCertificate() throws {
        // Proves .optional lets a certificate-less client in and reports no verified peer.
        let pair = try EnginePair(
            client: client(certificate: nil, key: nil, version: nil), server: Contexts.server(mode: .optional))
        pair.pump()
        #expect(pair.clientHandshake == .complete && pair.serverHandshake == .complete)
        #expect(pair.serverFailure == nil && pair.clientFailure == nil)
        #expect(pair.server.peerCertificateSubject == nil)
        #expect(!pair.server.peerCertificateVerified)
    }

    @Test func optionalModeStillRefusesCertificateFromOtherCA() throws {
        // Proves .optional does not accept a certificate that fails verification.
        let certificates = try Contexts.certificates()
        let pair = try EnginePair(
            client: client(
                certificate: certificates.untrustedCertificatePath, key: certificates.untrustedKeyPath,
                version: nil),
            server: Contexts.server(mode: .optional))
        pair.pump()
        #expect(pair.serverFailure == .verificationFailed)
    }
}
