/// What `TLSEngine.handshake()` achieved. After any result, send what `takeCiphertext(into:)` yields:
/// even a failure usually leaves an alert for the peer.
public enum TLSHandshakeResult: Sendable, Equatable {
    /// The handshake is done; plaintext may flow. Read at once: application data may already be buffered.
    case complete
    /// Waiting for the peer: feed more ciphertext with `receive(ciphertext:)`, then call again.
    case needMoreData
    /// The handshake failed for good; send the pending alert, then close the socket.
    case failed(TLSError)
}

/// What `TLSEngine.readPlaintext(into:maxBytes:)` produced.
public enum TLSReadResult: Sendable, Equatable {
    /// This many plaintext bytes were appended to the buffer (always more than zero). Call again when
    /// the buffer was filled to `maxBytes`: more may be waiting inside OpenSSL.
    case bytes(Int)
    /// Nothing decrypted is left; wait for more ciphertext.
    case needMoreData
    /// The peer sent close_notify: no more data will come. Answer with `close()`.
    case closed
    /// The connection is broken (bad record, failed verification...); send pending alerts and close.
    case failed(TLSError)
}

/// What `TLSEngine.writePlaintext(_:)` did.
public enum TLSWriteResult: Sendable, Equatable {
    /// This many bytes were encrypted into the pending ciphertext. Fewer than given only while the
    /// handshake is still waiting for the peer: retry the rest later, unchanged.
    case wrote(Int)
    /// The connection cannot carry data any more.
    case failed(TLSError)
}
