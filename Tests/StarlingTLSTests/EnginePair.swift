import StarlingTLS
import StarlingTestSupport
import Testing

/// A client and a server engine joined in memory: `pump()` advances both handshakes, moves ciphertext
/// both ways (respecting each engine's receive capacity) and drains plaintext, until nothing moves.
final class EnginePair {
    let client: TLSEngine
    let server: TLSEngine
    private(set) var clientHandshake: TLSHandshakeResult = .needMoreData
    private(set) var serverHandshake: TLSHandshakeResult = .needMoreData
    /// Plaintext each side has read so far.
    var clientReceived: [UInt8] = []
    var serverReceived: [UInt8] = []
    /// The last non-data read result of each side once it ended (`.closed` or `.failed`).
    private(set) var clientReadEnd: TLSReadResult?
    private(set) var serverReadEnd: TLSReadResult?
    private var toServer: [UInt8] = []
    private var toClient: [UInt8] = []

    init(
        client: TLSContext, server: TLSContext, serverName: String? = "localhost",
        receiveLimit: Int = TLSEngine.defaultMaxBufferedCiphertextBytes
    ) throws {
        self.client = try TLSEngine(context: client, serverName: serverName, maxBufferedCiphertextBytes: receiveLimit)
        self.server = try TLSEngine(context: server, maxBufferedCiphertextBytes: receiveLimit)
    }

    /// Runs rounds until no byte moves; records an issue if it never goes quiet.
    func pump(maxRounds: Int = 10_000) {
        for _ in 0..<maxRounds {
            clientHandshake = step(client, handshake: clientHandshake, into: &clientReceived, end: &clientReadEnd)
            serverHandshake = step(server, handshake: serverHandshake, into: &serverReceived, end: &serverReadEnd)
            let moved = move(from: client, to: server, inFlight: &toServer)
                + move(from: server, to: client, inFlight: &toClient)
            if moved == 0 {
                return
            }
        }
        Issue.record("engines did not go quiet")
    }

    /// Failure code of either side, from its handshake or its reads.
    var clientFailure: TLSError.Code? { Self.failureCode(clientHandshake, clientReadEnd) }
    var serverFailure: TLSError.Code? { Self.failureCode(serverHandshake, serverReadEnd) }

    private func step(
        _ engine: TLSEngine, handshake: TLSHandshakeResult, into received: inout [UInt8], end: inout TLSReadResult?
    ) -> TLSHandshakeResult {
        var result = handshake
        if result == .needMoreData {
            result = engine.handshake()
        }
        guard result == .complete, end == nil else {
            return result
        }
        while true {
            let read = engine.readPlaintext(into: &received, maxBytes: 64 * 1024)
            switch read {
            case .bytes:
                continue
            case .needMoreData:
                return result
            case .closed, .failed:
                end = read
                return result
            }
        }
    }

    private func move(from sender: TLSEngine, to receiver: TLSEngine, inFlight: inout [UInt8]) -> Int {
        let before = inFlight.count
        sender.takeCiphertext(into: &inFlight)
        let taken = inFlight.count - before
        let accepted = inFlight.withUnsafeBytes { receiver.receive(ciphertext: $0) }
        inFlight.removeFirst(accepted)
        return taken + accepted
    }

    private static func failureCode(_ handshake: TLSHandshakeResult, _ end: TLSReadResult?) -> TLSError.Code? {
        if case .failed(let error) = handshake {
            return error.code
        }
        if case .failed(let error)? = end {
            return error.code
        }
        return nil
    }
}

/// Contexts built from the shared test certificates.
enum Contexts {
    static func certificates() throws -> TestCertificates {
        try TestCertificates.shared()
    }

    static func serverConfiguration(
        mode: TLSConfiguration.ClientCertificateMode = .none
    ) throws -> TLSConfiguration {
        let certificates = try certificates()
        return .server(
            certificateChainPath: certificates.serverCertificatePath,
            privateKeyPath: certificates.serverKeyPath,
            trustRootsPath: mode == .none ? nil : certificates.caCertificatePath,
            clientCertificateMode: mode)
    }

    static func clientConfiguration() throws -> TLSConfiguration {
        .client(trustRootsPath: try certificates().caCertificatePath, serverName: "localhost")
    }

    static func server(mode: TLSConfiguration.ClientCertificateMode = .none) throws -> TLSContext {
        try TLSContext.server(serverConfiguration(mode: mode))
    }

    static func client() throws -> TLSContext {
        try TLSContext.client(clientConfiguration())
    }
}

/// A deterministic byte pattern of `count` bytes.
func pattern(_ count: Int, seed: UInt8 = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) &+ seed }
}
