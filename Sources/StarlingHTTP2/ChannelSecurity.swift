/// One step of a TLS handshake.
enum HandshakeStep {
    case complete
    case needMoreData
    case failed(String)
}

/// What reading decrypted bytes gave.
enum PlaintextRead {
    case bytes
    case needMoreData
    case closed
    case failed(String)
}

/// The security layer of a socket channel: TLS over memory buffers (ciphertext in, plaintext out and back).
/// Confined to the channel's loop.
protocol ChannelSecurity: AnyObject {
    func receive(ciphertext: UnsafeRawBufferPointer)
    func handshake() -> HandshakeStep
    /// Appends every plaintext byte available now (up to `maxBytes`) to `buffer`.
    func readPlaintext(into buffer: inout [UInt8], maxBytes: Int) -> PlaintextRead
    /// Encrypts all of `bytes`; false when TLS failed.
    func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> Bool
    /// Appends ciphertext that must go to the socket.
    func takeCiphertext(into buffer: inout [UInt8])
    /// Queues close_notify.
    func close()
    var negotiatedProtocol: String? { get }
    /// The verified peer certificate's subject (mTLS), for logs.
    var peerSubject: String? { get }
}
