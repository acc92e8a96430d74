@testable import StarlingTLS
import StarlingTestSupport
import Testing

@Suite struct TLSContextTests {
    @Test func mismatchedKeyIsRefusedNamingTheFile() throws {
        // Proves a key that does not belong to the certificate is refused at load, naming the key file.
        let certificates = try Contexts.certificates()
        let configuration = TLSConfiguration.server(
            certificateChainPath: certificates.serverCertificatePath, privateKeyPath: certificates.clientKeyPath)
        let error = #expect(throws: TLSError.self) { try TLSContext.server(configuration) }
        #expect(error?.code == .keyMismatch)
        #expect(error?.path == certificates.clientKeyPath)
        #expect(error?.message.contains(certificates.clientKeyPath) == true)
        #expect(error?.message.contains(certificates.serverCertificatePath) == true)
    }

    @Test func missingCertificateFileIsACertificateLoadError() throws {
        // Proves an unreadable chain file fails with .certificateLoad, the path and OpenSSL's reason.
        let certificates = try Contexts.certificates()
        let missing = certificates.directory + "/missing.crt"
        let error = #expect(throws: TLSError.self) {
            try TLSContext.server(.server(certificateChainPath: missing, privateKeyPath: certificates.serverKeyPath))
        }
        #expect(error?.code == .certificateLoad)
        #expect(error?.path == missing)
        #expect(error?.openSSLErrors.isEmpty == false)
        #expect(error.map { String(describing: $0) }?.contains(missing) == true)
    }

    @Test func keyFileThatIsNotAKeyIsAPrivateKeyLoadError() throws {
        // Proves a key path holding something else fails with .privateKeyLoad naming that path.
        let certificates = try Contexts.certificates()
        let error = #expect(throws: TLSError.self) {
            try TLSContext.server(
                .server(
                    certificateChainPath: certificates.serverCertificatePath,
                    privateKeyPath: certificates.caCertificatePath))
        }
        #expect(error?.code == .privateKeyLoad)
        #expect(error?.path == certificates.caCertificatePath)
    }

    @Test func missingTrustRootsAreACertificateLoadError() throws {
        // Proves a client whose CA file is missing fails at context creation, naming the file.
        let error = #expect(throws: TLSError.self) {
            try TLSContext.client(.client(trustRootsPath: "/nonexistent/ca.pem", serverName: "localhost"))
        }
        #expect(error?.code == .certificateLoad)
        #expect(error?.path == "/nonexistent/ca.pem")
    }

    @Test func incompleteConfigurationsAreRefused() throws {
        // Proves contradictory or incomplete configurations fail with .invalidConfiguration.
        let certificates = try Contexts.certificates()
        let servers: [TLSConfiguration] = [
            TLSConfiguration(),
            .server(
                certificateChainPath: certificates.serverCertificatePath,
                privateKeyPath: certificates.serverKeyPath, clientCertificateMode: .required),
        ]
        let clients: [TLSConfiguration] = [
            .client(certificateChainPath: certificates.clientCertificatePath),
            TLSConfiguration(minimumVersion: .tls13, maximumVersion: .tls12),
            TLSConfiguration(applicationProtocols: [""]),
        ]
        for configuration in servers {
            let error = #expect(throws: TLSError.self) { try TLSContext.server(configuration) }
            #expect(error?.code == .invalidConfiguration)
        }
        for configuration in clients {
            let error = #expect(throws: TLSError.self) { try TLSContext.client(configuration) }
            #expect(error?.code == .invalidConfiguration)
        }
    }

    @Test func alpnSelectionFollowsServerPreferenceAndRejectsMalformedOffers() {
        // Proves the pure ALPN selection: server order wins, no match and malformed lists give nil.
        let h2 = Array("h2".utf8)
        let http11 = Array("http/1.1".utf8)
        func select(_ preferences: [[UInt8]], _ offered: [UInt8]) -> [UInt8]? {
            offered.withUnsafeBufferPointer { buffer in
                TLSContext.selectProtocol(preferences: preferences, offered: buffer).map { Array(offered[$0]) }
            }
        }
        let wire = [UInt8(http11.count)] + http11 + [UInt8(h2.count)] + h2
        #expect(select([h2, http11], wire) == h2)
        #expect(select([http11, h2], wire) == http11)
        #expect(select([h2], [UInt8(http11.count)] + http11) == nil)
        #expect(select([h2], []) == nil)
        #expect(select([h2], [5, 0x68, 0x32]) == nil)
        #expect(select([h2], [0, 2, 0x68, 0x32]) == nil)
        #expect(select([h2], [2, 0x68, 0x32, 9]) == nil)
        #expect(select([h2], [3, 0x68, 0x32, 0x63]) == nil)
    }
}
