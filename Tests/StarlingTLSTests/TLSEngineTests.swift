import StarlingTLS
import StarlingTestSupport
import Testing

@Suite struct TLSEngineTests {
    @Test func handshakeNegotiatesH2OverTLS13ByDefault() throws {
        // Proves default contexts complete a verified TLS 1.3 handshake and agree on ALPN h2.
        let pair = try EnginePair(client: Contexts.client(), server: Contexts.server())
        pair.pump()
        #expect(pair.clientHandshake == .complete)
        #expect(pair.serverHandshake == .complete)
        #expect(pair.client.negotiatedProtocol == "h2")
        #expect(pair.server.negotiatedProtocol == "h2")
        #expect(pair.client.protocolVersion == "TLSv1.3")
        #expect(pair.server.protocolVersion == "TLSv1.3")
        #expect(pair.client.peerCertificateVerified)
        #expect(pair.client.peerCertificateSubject == "CN=localhost")
        #expect(pair.server.peerCertificateSubject == nil)
        #expect(pair.client.cipherSuite != nil)
        #expect(pair.clientReadEnd == nil && pair.serverReadEnd == nil)
    }

    @Test func tls12HandshakeWorksWhenTheClientCapsTheVersion() throws {
        // Proves TLS 1.2 is accepted by a default server (minimum 1.2) and still negotiates h2.
        var configuration = try Contexts.clientConfiguration()
        configuration.maximumVersion = .tls12
        let pair = try EnginePair(client: TLSContext.client(configuration), server: Contexts.server())
        pair.pump()
        #expect(pair.clientHandshake == .complete)
        #expect(pair.serverHandshake == .complete)
        #expect(pair.server.protocolVersion == "TLSv1.2")
        #expect(pair.server.negotiatedProtocol == "h2")
        #expect(pair.client.peerCertificateVerified)
    }

    @Test func serverWithMinimumTLS13RefusesTLS12Client() throws {
        // Proves minimumVersion is enforced: a 1.2-only client cannot connect to a 1.3-minimum server.
        var serverConfiguration = try Contexts.serverConfiguration()
        serverConfiguration.minimumVersion = .tls13
        var clientConfiguration = try Contexts.clientConfiguration()
        clientConfiguration.maximumVersion = .tls12
        let pair = try EnginePair(
            client: TLSContext.client(clientConfiguration), server: TLSContext.server(serverConfiguration))
        pair.pump()
        #expect(pair.serverFailure == .handshakeFailed)
        #expect(pair.clientFailure == .handshakeFailed)
    }

    @Test(arguments: [TLSConfiguration.Version.tls12, .tls13])
    func dataFlowsBothWaysIncludingOneMegabyteInChunks(version: TLSConfiguration.Version) throws {
        // Proves plaintext arrives intact both ways, small and 1 MiB written in uneven chunks.
        var configuration = try Contexts.clientConfiguration()
        configuration.maximumVersion = version
        let pair = try EnginePair(client: TLSContext.client(configuration), server: Contexts.server())
        pair.pump()
        try #require(pair.clientHandshake == .complete && pair.serverHandshake == .complete)

        let hello = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        #expect(hello.withUnsafeBytes { pair.client.writePlaintext($0) } == .wrote(hello.count))
        pair.pump()
        #expect(pair.serverReceived == hello)

        let big = pattern(1 << 20, seed: 7)
        var offset = 0
        var chunk = 1
        while offset < big.count {
            let end = min(big.count, offset + chunk)
            let result = big[offset..<end].withUnsafeBytes { pair.server.writePlaintext($0) }
            #expect(result == .wrote(end - offset))
            offset = end
            chunk = chunk * 3 + 1
            pair.pump()
        }
        #expect(pair.clientReceived == big)

        let reply = pattern(1 << 20, seed: 99)
        #expect(reply.withUnsafeBytes { pair.client.writePlaintext($0) } == .wrote(reply.count))
        pair.pump()
        #expect(pair.serverReceived == hello + reply)
    }

    @Test func dataFlowsThroughTheSmallestReceiveLimit() throws {
        // Proves a receive limit of one record still carries the handshake and 1 MiB (back-pressure works).
        let pair = try EnginePair(
            client: Contexts.client(), server: Contexts.server(), receiveLimit: TLSEngine.minBufferedCiphertextBytes)
        pair.pump()
        try #require(pair.clientHandshake == .complete && pair.serverHandshake == .complete)
        let data = pattern(1 << 20, seed: 3)
        #expect(data.withUnsafeBytes { pair.server.writePlaintext($0) } == .wrote(data.count))
        #expect(pair.server.pendingCiphertextBytes > data.count)
        pair.pump()
        #expect(pair.clientReceived == data)
    }

    @Test func readPlaintextStopsAtMaxBytesAndKeepsTheRest() throws {
        // Proves maxBytes bounds one read and the remainder is returned by the next reads, not lost.
        let pair = try EnginePair(client: Contexts.client(), server: Contexts.server())
        pair.pump()
        let data = pattern(50_000)
        #expect(data.withUnsafeBytes { pair.client.writePlaintext($0) } == .wrote(data.count))
        var ciphertext: [UInt8] = []
        pair.client.takeCiphertext(into: &ciphertext)
        #expect(!pair.client.hasPendingCiphertext)
        #expect(ciphertext.withUnsafeBytes { pair.server.receive(ciphertext: $0) } == ciphertext.count)
        var received: [UInt8] = []
        #expect(pair.server.readPlaintext(into: &received, maxBytes: 1000) == .bytes(1000))
        #expect(pair.server.readPlaintext(into: &received, maxBytes: 100_000) == .bytes(49_000))
        #expect(pair.server.readPlaintext(into: &received, maxBytes: 100_000) == .needMoreData)
        #expect(received == data)
    }

    @Test func receiveAcceptsAtMostTheCapacity() throws {
        // Proves received ciphertext is bounded by maxBufferedCiphertextBytes and the excess is left.
        let limit = TLSEngine.minBufferedCiphertextBytes
        let engine = try TLSEngine(context: Contexts.server(), maxBufferedCiphertextBytes: limit)
        let bytes = [UInt8](repeating: 0x16, count: limit + 50)
        #expect(engine.receiveCapacity == limit)
        #expect(bytes.withUnsafeBytes { engine.receive(ciphertext: $0) } == limit)
        #expect(engine.receiveCapacity == 0)
        #expect(bytes.withUnsafeBytes { engine.receive(ciphertext: $0) } == 0)
    }

    @Test(arguments: [["http/1.1"], [], ["spdy/3", "http/1.1"]])
    func serverRefusesClientsNotOfferingH2(offered: [String]) throws {
        // Proves a client offering other protocols, or no ALPN at all, fails the handshake on both sides.
        var configuration = try Contexts.clientConfiguration()
        configuration.applicationProtocols = offered
        let pair = try EnginePair(client: TLSContext.client(configuration), server: Contexts.server())
        pair.pump()
        #expect(pair.serverFailure == .alpnRefused)
        #expect(pair.clientFailure == .alpnRefused)
        #expect(pair.server.negotiatedProtocol == nil)
    }

    @Test func serverPrefersItsOwnProtocolOrder() throws {
        // Proves the server picks h2 even when the client lists http/1.1 first.
        var configuration = try Contexts.clientConfiguration()
        configuration.applicationProtocols = ["http/1.1", "h2"]
        let pair = try EnginePair(client: TLSContext.client(configuration), server: Contexts.server())
        pair.pump()
        #expect(pair.clientHandshake == .complete)
        #expect(pair.client.negotiatedProtocol == "h2")
    }

    @Test func clientTrustingAnotherCARefusesTheServer() throws {
        // Proves the client verifies the chain: the server's cert is not from the CA the client trusts.
        let certificates = try Contexts.certificates()
        let client = try TLSContext.client(
            .client(trustRootsPath: certificates.otherCACertificatePath, serverName: "localhost"))
        let pair = try EnginePair(client: client, server: Contexts.server())
        pair.pump()
        #expect(pair.clientFailure == .verificationFailed)
        #expect(pair.serverFailure == .verificationFailed)
        if case .failed(let error) = pair.clientHandshake {
            #expect(error.message.contains("local issuer"))
            #expect(!error.openSSLErrors.isEmpty)
        }
    }

    @Test func serverWithCertificateFromUnknownCAIsRefused() throws {
        // Proves a localhost certificate signed by an untrusted CA is refused even though the name matches.
        let certificates = try Contexts.certificates()
        let server = try TLSContext.server(
            .server(
                certificateChainPath: certificates.untrustedCertificatePath,
                privateKeyPath: certificates.untrustedKeyPath))
        let pair = try EnginePair(client: Contexts.client(), server: server)
        pair.pump()
        #expect(pair.clientFailure == .verificationFailed)
    }

    @Test(arguments: ["example.com", "127.0.0.2", "localhost.localdomain"])
    func wrongServerNameFailsVerification(name: String) throws {
        // Proves the host name or IP is checked against the certificate's SANs.
        let pair = try EnginePair(client: Contexts.client(), server: Contexts.server(), serverName: name)
        pair.pump()
        #expect(pair.clientFailure == .verificationFailed)
    }

    @Test func ipAddressServerNameVerifiesAgainstIPSAN() throws {
        // Proves an IP address given as server name is accepted when it is in the certificate's IP SANs.
        let pair = try EnginePair(client: Contexts.client(), server: Contexts.server(), serverName: "127.0.0.1")
        pair.pump()
        #expect(pair.clientHandshake == .complete)
        #expect(pair.client.peerCertificateVerified)
    }

    @Test func unverifiedClientConnectsToAnyServerButReportsIt() throws {
        // Proves verifyServer = false accepts an untrusted server and says the peer is not verified.
        var configuration = TLSConfiguration.client()
        configuration.verifyServer = false
        let certificates = try Contexts.certificates()
        let server = try TLSContext.server(
            .server(
                certificateChainPath: certificates.untrustedCertificatePath,
                privateKeyPath: certificates.untrustedKeyPath))
        let pair = try EnginePair(client: TLSContext.client(configuration), server: server, serverName: nil)
        pair.pump()
        #expect(pair.clientHandshake == .complete)
        #expect(!pair.client.peerCertificateVerified)
    }

    @Test func garbageIntoServerFailsCleanly() throws {
        // Proves non-TLS bytes make the handshake fail with an error, not a crash, and stay failed.
        let server = try TLSEngine(context: Contexts.server())
        let garbage = Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8) + pattern(5000)
        #expect(garbage.withUnsafeBytes { server.receive(ciphertext: $0) } == garbage.count)
        guard case .failed(let error) = server.handshake() else {
            Issue.record("garbage did not fail the handshake")
            return
        }
        #expect(error.code == .handshakeFailed)
        #expect(!error.openSSLErrors.isEmpty)
        #expect(server.handshake() == .failed(error))
        var plaintext: [UInt8] = []
        #expect(server.readPlaintext(into: &plaintext, maxBytes: 100) == .failed(error))
        #expect([1, 2, 3].withUnsafeBytes { server.writePlaintext($0) } == .failed(error))
        server.close()
        var ciphertext: [UInt8] = []
        server.takeCiphertext(into: &ciphertext)
    }

    @Test func garbageAfterHandshakeIsAProtocolError() throws {
        // Proves corrupt records after the handshake fail reads with .protocolError.
        let pair = try EnginePair(client: Contexts.client(), server: Contexts.server())
        pair.pump()
        let data = pattern(100)
        #expect(data.withUnsafeBytes { pair.client.writePlaintext($0) } == .wrote(100))
        var ciphertext: [UInt8] = []
        pair.client.takeCiphertext(into: &ciphertext)
        ciphertext[ciphertext.count - 5] ^= 0xff
        ciphertext.withUnsafeBytes { _ = pair.server.receive(ciphertext: $0) }
        var plaintext: [UInt8] = []
        guard case .failed(let error) = pair.server.readPlaintext(into: &plaintext, maxBytes: 1000) else {
            Issue.record("corrupt record was accepted")
            return
        }
        #expect(error.code == .protocolError)
        #expect(plaintext.isEmpty)
    }

    @Test func closeNotifyIsSeenAsClosed() throws {
        // Proves close() sends close_notify after pending data, the peer reads the data then .closed.
        let pair = try EnginePair(client: Contexts.client(), server: Contexts.server())
        pair.pump()
        let data = pattern(3000)
        #expect(data.withUnsafeBytes { pair.client.writePlaintext($0) } == .wrote(data.count))
        pair.client.close()
        #expect(pair.client.hasPendingCiphertext)
        pair.pump()
        #expect(pair.serverReceived == data)
        #expect(pair.serverReadEnd == .closed)
        var plaintext: [UInt8] = []
        #expect(pair.server.readPlaintext(into: &plaintext, maxBytes: 10) == .closed)
        guard case .failed(let error) = data.withUnsafeBytes({ pair.client.writePlaintext($0) }) else {
            Issue.record("write after close succeeded")
            return
        }
        #expect(error.code == .closed)
        pair.server.close()
        pair.pump()
        #expect(pair.clientReadEnd == .closed)
    }

    @Test func verifyingClientWithoutServerNameIsRefused() throws {
        // Proves a verifying client engine cannot be made without a name to check.
        let context = try TLSContext.client(.client(trustRootsPath: Contexts.certificates().caCertificatePath))
        #expect(throws: TLSError.self) { try TLSEngine(context: context) }
        #expect(throws: Never.self) { try TLSEngine(context: context, serverName: "localhost") }
    }
}
