internal import COpenSSL

/// The TLS state of one connection, over memory buffers: no file descriptor, no IO of its own.
///
/// The event loop drives it:
/// ```
///   socket ──read──▶ receive(ciphertext:) ──▶ [read BIO] ──▶ SSL ──▶ readPlaintext(into:maxBytes:) ──▶ HTTP/2
///   socket ◀─write── takeCiphertext(into:) ◀── [write BIO] ◀── SSL ◀── writePlaintext(_:) ◀────────── HTTP/2
/// ```
/// Call `handshake()` until `.complete`, then `readPlaintext` until `.needMoreData` (decrypted data
/// may already wait inside OpenSSL: epoll will not report it). After *every* call, send whatever
/// `takeCiphertext(into:)` yields; reads can produce ciphertext too (alerts, TLS 1.3 key updates).
///
/// Ownership: owns the `SSL` and frees it in `deinit`; `SSL_free` also frees the two memory BIOs,
/// which `SSL_set_bio` handed to the `SSL`. Keeps its `TLSContext` alive, so the context's callbacks
/// always find it. The `SSL`'s app data slot points back at this object, unretained.
///
/// Thread: not Sendable. One engine belongs to one connection on one event-loop thread; every call
/// must come from that thread (OpenSSL's error queue is per thread, and so is our state).
public final class TLSEngine {
    /// Default limit on received ciphertext not yet decrypted; see `receiveCapacity`.
    public static let defaultMaxBufferedCiphertextBytes = 256 * 1024
    /// The largest TLS record on the wire (2^14 plaintext + 2048 expansion + 5 header, RFC 5246 §6.2.3):
    /// the receive limit must hold one whole record, or the connection could never make progress.
    public static let minBufferedCiphertextBytes = 16_384 + 2_048 + 5
    /// Plaintext is read in steps of one maximum TLS record (2^14 bytes).
    static let readChunkBytes = 16 * 1024

    /// The context this engine came from; kept alive for the `SSL_CTX` callbacks.
    let context: TLSContext
    /// The connection; owned, `SSL_free` in `deinit`.
    let ssl: OpaquePointer
    /// Ciphertext from the peer, waiting for OpenSSL. Owned by `ssl`.
    private let readBIO: OpaquePointer
    /// Ciphertext produced by OpenSSL, waiting for the socket. Owned by `ssl`.
    private let writeBIO: OpaquePointer
    /// Most received ciphertext held before `receive(ciphertext:)` accepts no more.
    public let maxBufferedCiphertextBytes: Int
    /// Scratch space for one TLS record, owned by this engine (deallocated in `deinit`).
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: TLSEngine.readChunkBytes, alignment: 16)
    /// The first fatal error; once set, every call reports it.
    private var failure: TLSError?
    /// The peer sent close_notify.
    private var isClosedByPeer = false
    /// `close()` was called.
    private var isCloseRequested = false
    /// A server callback refused the client's ALPN offer during this handshake.
    private(set) var didRefuseApplicationProtocol = false

    /// A new connection in the role of `context` (server: accept; client: connect).
    /// `maxBufferedCiphertextBytes` bounds received ciphertext not yet decrypted (at least
    /// `minBufferedCiphertextBytes`). `serverName` (clients) overrides the configuration's `serverName`:
    /// the DNS name or IP address the server certificate must carry, also sent as SNI for DNS names.
    /// Throws `.invalidConfiguration` when a verifying client has no name to verify.
    public init(
        context: TLSContext,
        serverName: String? = nil,
        maxBufferedCiphertextBytes: Int = TLSEngine.defaultMaxBufferedCiphertextBytes
    ) throws(TLSError) {
        precondition(
            maxBufferedCiphertextBytes >= Self.minBufferedCiphertextBytes,
            "maxBufferedCiphertextBytes must hold one whole TLS record")
        let connection = try Self.makeConnection(context)
        self.context = context
        self.ssl = connection.ssl
        self.readBIO = connection.readBIO
        self.writeBIO = connection.writeBIO
        self.maxBufferedCiphertextBytes = maxBufferedCiphertextBytes
        SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(self).toOpaque())
        switch context.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            try configurePeerName(serverName ?? context.configuration.serverName)
        }
    }

    deinit {
        SSL_free(ssl)
        scratch.deallocate()
    }

    /// Hands `ciphertext` from the socket to OpenSSL. Accepts at most `receiveCapacity` bytes and
    /// returns how many it took; the caller keeps the rest (and should not read the socket for more
    /// until `readPlaintext` has made room).
    @discardableResult
    public func receive(ciphertext: UnsafeRawBufferPointer) -> Int {
        let accepted = min(ciphertext.count, receiveCapacity)
        guard accepted > 0, let base = ciphertext.baseAddress else {
            return 0
        }
        var written = 0
        let status = BIO_write_ex(readBIO, base, accepted, &written)
        // A memory BIO only fails to grow when malloc fails.
        precondition(status == 1 && written == accepted, "memory BIO write failed")
        return written
    }

    /// How many more ciphertext bytes `receive(ciphertext:)` accepts now.
    public var receiveCapacity: Int {
        max(0, maxBufferedCiphertextBytes - Int(starling_openssl_bio_pending(readBIO)))
    }

    /// Advances the handshake with the ciphertext received so far.
    public func handshake() -> TLSHandshakeResult {
        if let failure {
            return .failed(failure)
        }
        if isHandshakeComplete {
            return .complete
        }
        OpenSSLErrorQueue.clear()
        let status = SSL_do_handshake(ssl)
        if status == 1 {
            return .complete
        }
        switch outcome(of: status, handshakeWasComplete: false) {
        case .wouldBlock:
            return .needMoreData
        case .closed:
            let error = TLSError(code: .handshakeFailed, message: "peer closed the connection during the handshake")
            failure = error
            return .failed(error)
        case .failed(let error):
            failure = error
            return .failed(error)
        }
    }

    /// Decrypts into `buffer` (appending) until OpenSSL has nothing more or `maxBytes` were appended.
    /// Drives the handshake as well if it is not complete yet.
    public func readPlaintext(into buffer: inout [UInt8], maxBytes: Int) -> TLSReadResult {
        precondition(maxBytes > 0, "maxBytes must be positive")
        if let failure {
            return .failed(failure)
        }
        if isClosedByPeer {
            return .closed
        }
        let wasComplete = isHandshakeComplete
        var total = 0
        reading: while total < maxBytes {
            let chunk = min(maxBytes - total, Self.readChunkBytes)
            var count = 0
            OpenSSLErrorQueue.clear()
            // Decrypt into the engine's scratch space, then append with one memcpy (appending zeros first and
            // overwriting them costs a per-element loop in debug builds).
            let status = SSL_read_ex(ssl, scratch.baseAddress, chunk, &count)
            if status == 1 {
                buffer.append(contentsOf: UnsafeRawBufferPointer(start: scratch.baseAddress, count: count))
                total += count
                continue
            }
            switch outcome(of: status, handshakeWasComplete: wasComplete) {
            case .wouldBlock:
                break reading
            case .closed:
                isClosedByPeer = true
                break reading
            case .failed(let error):
                failure = error
                break reading
            }
        }
        // Data decrypted before a close or failure is delivered first; the next call reports the end.
        if total > 0 {
            return .bytes(total)
        }
        if let failure {
            return .failed(failure)
        }
        return isClosedByPeer ? .closed : .needMoreData
    }

    /// Encrypts `bytes` into the pending ciphertext. Writes everything once the handshake is complete
    /// (memory BIOs never block); the pending ciphertext grows, so the caller bounds what it writes by
    /// `pendingCiphertextBytes`.
    public func writePlaintext(_ bytes: UnsafeRawBufferPointer) -> TLSWriteResult {
        if let failure {
            return .failed(failure)
        }
        if isCloseRequested {
            return .failed(TLSError(code: .closed, message: "write after close()"))
        }
        guard let base = bytes.baseAddress, !bytes.isEmpty else {
            return .wrote(0)
        }
        let wasComplete = isHandshakeComplete
        var written = 0
        while written < bytes.count {
            var count = 0
            OpenSSLErrorQueue.clear()
            let status = SSL_write_ex(ssl, base + written, bytes.count - written, &count)
            if status == 1 {
                written += count
                continue
            }
            switch outcome(of: status, handshakeWasComplete: wasComplete) {
            case .wouldBlock:
                return .wrote(written)
            case .closed:
                return .failed(TLSError(code: .closed, message: "the connection is closed"))
            case .failed(let error):
                failure = error
                return .failed(error)
            }
        }
        return .wrote(written)
    }

    /// Appends all pending ciphertext to `buffer`: bytes the caller must send on the socket, in order.
    public func takeCiphertext(into buffer: inout [UInt8]) {
        let pending = pendingCiphertextBytes
        guard pending > 0 else {
            return
        }
        var remaining = pending
        while remaining > 0 {
            var count = 0
            let status = BIO_read_ex(writeBIO, scratch.baseAddress, min(remaining, scratch.count), &count)
            precondition(status == 1 && count > 0, "memory BIO returned less than it reported pending")
            buffer.append(contentsOf: UnsafeRawBufferPointer(start: scratch.baseAddress, count: count))
            remaining -= count
        }
    }

    /// Bytes waiting in `takeCiphertext(into:)`.
    public var pendingCiphertextBytes: Int {
        Int(starling_openssl_bio_pending(writeBIO))
    }

    /// Whether `takeCiphertext(into:)` has anything to give.
    public var hasPendingCiphertext: Bool {
        pendingCiphertextBytes > 0
    }

    /// Queues close_notify (take it with `takeCiphertext(into:)`). Does nothing after a failure or before
    /// the handshake completed (then the socket is simply closed); later writes fail with `.closed`.
    public func close() {
        guard !isCloseRequested else {
            return
        }
        isCloseRequested = true
        guard failure == nil, isHandshakeComplete else {
            return
        }
        OpenSSLErrorQueue.clear()
        // 0 means "sent, the peer's close_notify not seen yet": all we need, we do not wait for it.
        _ = SSL_shutdown(ssl)
        OpenSSLErrorQueue.clear()
    }

    /// Creates the `SSL` and attaches two fresh memory BIOs to it.
    private static func makeConnection(
        _ context: TLSContext
    ) throws(TLSError) -> (ssl: OpaquePointer, readBIO: OpaquePointer, writeBIO: OpaquePointer) {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.pointer) else {
            throw OpenSSLErrorQueue.error(.resourceExhausted, "SSL_new failed")
        }
        guard let readBIO = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw OpenSSLErrorQueue.error(.resourceExhausted, "BIO_new failed")
        }
        guard let writeBIO = BIO_new(BIO_s_mem()) else {
            BIO_free(readBIO)
            SSL_free(ssl)
            throw OpenSSLErrorQueue.error(.resourceExhausted, "BIO_new failed")
        }
        // From here on SSL_free frees both BIOs.
        SSL_set_bio(ssl, readBIO, writeBIO)
        return (ssl, readBIO, writeBIO)
    }

    /// Client: the name to verify and to send as SNI. IP addresses are verified against the
    /// certificate's IP SANs and never sent as SNI (RFC 6066 §3).
    private func configurePeerName(_ name: String?) throws(TLSError) {
        let verify = context.configuration.verifyServer
        guard let name, !name.isEmpty else {
            if verify {
                throw TLSError(
                    code: .invalidConfiguration, message: "verifying a server needs its name (serverName)")
            }
            return
        }
        OpenSSLErrorQueue.clear()
        let isIPAddress = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1
        OpenSSLErrorQueue.clear()
        guard !isIPAddress else {
            return
        }
        if verify {
            guard SSL_set1_host(ssl, name) == 1 else {
                throw OpenSSLErrorQueue.error(.invalidConfiguration, "cannot verify server name '\(name)'")
            }
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
        }
        guard starling_openssl_set_host_name(ssl, name) == 1 else {
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "invalid server name '\(name)' for SNI")
        }
    }

    /// The engine whose `SSL` this is, for C callbacks.
    static func owner(of ssl: OpaquePointer) -> TLSEngine? {
        guard let raw = SSL_get_ex_data(ssl, 0) else {
            return nil
        }
        return Unmanaged<TLSEngine>.fromOpaque(raw).takeUnretainedValue()
    }

    /// Called by the server's ALPN callbacks when they refuse the client, to name the failure.
    func applicationProtocolRefused() {
        didRefuseApplicationProtocol = true
    }
}

/// Confined to one thread: see the type's documentation.
@available(*, unavailable)
extension TLSEngine: Sendable {}
