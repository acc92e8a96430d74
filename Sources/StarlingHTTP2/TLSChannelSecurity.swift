import StarlingTLS

/// Adapts a `TLSEngine` to the channel's security seam. Owns the engine; confined to the channel's loop.
final class TLSChannelSecurity: ChannelSecurity {
    let engine: TLSEngine
    /// Ciphertext the engine could not take yet (its buffer was full); fed first on the next call.
    private var backlog: [UInt8] = []

    init(engine: TLSEngine) {
        self.engine = engine
    }

    func receive(ciphertext: UnsafeRawBufferPointer) {
        if !backlog.isEmpty {
            backlog.append(contentsOf: ciphertext)
            feedBacklog()
            return
        }
        let taken = engine.receive(ciphertext: ciphertext)
        if taken < ciphertext.count { backlog.append(contentsOf: ciphertext[taken...]) }
    }

    private func feedBacklog() {
        let taken = backlog.withUnsafeBytes { engine.receive(ciphertext: $0) }
        backlog.removeFirst(taken)
    }

    func handshake() -> HandshakeStep {
        switch engine.handshake() {
        case .complete: return .complete
        case .needMoreData: return .needMoreData
        case .failed(let error): return .failed(error.description)
        }
    }

    func readPlaintext(into buffer: inout [UInt8], maxBytes: Int) -> PlaintextRead {
        while true {
            switch engine.readPlaintext(into: &buffer, maxBytes: maxBytes) {
            case .bytes: return .bytes
            case .needMoreData:
                guard !backlog.isEmpty else { return .needMoreData }
                let before = backlog.count
                feedBacklog()
                if backlog.count == before { return .needMoreData }
            case .closed: return .closed
            case .failed(let error): return .failed(error.description)
            }
        }
    }

    func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            switch engine.writePlaintext(UnsafeRawBufferPointer(rebasing: bytes[offset...])) {
            case .wrote(let count) where count > 0: offset += count
            case .wrote: return false  // only during a handshake; the channel never writes before it is done
            case .failed: return false
            }
        }
        return true
    }

    func takeCiphertext(into buffer: inout [UInt8]) {
        engine.takeCiphertext(into: &buffer)
    }

    func close() {
        engine.close()
    }

    var negotiatedProtocol: String? { engine.negotiatedProtocol }
    var peerSubject: String? { engine.peerCertificateSubject }
}
