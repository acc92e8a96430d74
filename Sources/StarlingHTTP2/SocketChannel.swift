import StarlingIO

/// What a socket channel reports to the protocol connection that owns it, on the loop thread.
protocol SocketChannelDelegate: AnyObject {
    /// Connected, and the TLS handshake (if any) is complete.
    func channelActive(_ channel: SocketChannel)
    /// Plaintext bytes arrived.
    func channelRead(_ channel: SocketChannel, _ bytes: UnsafeRawBufferPointer)
    /// The peer closed its sending side (end of file); it may still read. The delegate decides when to close.
    func channelInputClosed(_ channel: SocketChannel)
    /// Reads were processed or output drained: the delegate may produce more output now.
    func channelReadyForOutput(_ channel: SocketChannel)
    /// The channel closed; called exactly once. `error` is nil for an orderly close.
    func channelClosed(_ channel: SocketChannel, error: HTTP2Error?)
}

/// A connected non-blocking TCP socket with optional TLS, owned by one protocol connection, confined to one
/// event loop.
///
/// ```
///  connecting ──writable──▶ handshaking ──TLS done──▶ active ──closeAfterFlush──▶ closing ──drained──▶ closed
///        └──────────── (no TLS) ───────────────────────▲            any error/EOF ─────────────────────▲
/// ```
///
/// Owns the descriptor (closed in `close`) and the TLS engine. The loop retains the channel while it is
/// registered; the channel retains its delegate until closed, which breaks the cycle.
final class SocketChannel: EventLoopHandler {
    enum State { case connecting, handshaking, active, closing, closed }

    let fd: Int32
    let loop: EventLoop
    let security: (any ChannelSecurity)?
    let peer: String
    private(set) var state: State
    var delegate: (any SocketChannelDelegate)?

    /// Output above this stops reading until it drains to half.
    let maxOutboundBytes: Int
    private var registration: Registration?
    private var interest: IOEvents = []
    private var outbound: [UInt8] = []
    private var outboundStart = 0
    private var readBuffer: [UInt8]
    private var plaintext: [UInt8] = []
    private var isReadPaused = false
    /// The peer half-closed: nothing more to read, but queued output (answers to what it sent) still goes out.
    private(set) var isInputClosed = false
    /// Monotonic nanoseconds of the last byte read or written.
    private(set) var lastActivity: UInt64

    init(fd: Int32, loop: EventLoop, security: (any ChannelSecurity)?, peer: String, isConnecting: Bool,
         maxOutboundBytes: Int, readBufferBytes: Int = 64 * 1024) {
        self.fd = fd
        self.loop = loop
        self.security = security
        self.peer = peer
        self.maxOutboundBytes = maxOutboundBytes
        self.readBuffer = [UInt8](repeating: 0, count: readBufferBytes)
        self.state = isConnecting ? .connecting : (security == nil ? .active : .handshaking)
        self.lastActivity = Syscall.monotonicNanos()
    }

    var pendingOutboundBytes: Int { outbound.count - outboundStart }
    var isOutputSaturated: Bool { pendingOutboundBytes >= maxOutboundBytes }

    /// Registers with the loop. A client TLS channel sends its ClientHello once connected.
    func start() throws(IOError) {
        loop.assertInEventLoop()
        let wanted: IOEvents = state == .connecting ? [.writable] : [.readable]
        registration = try loop.register(fd: fd, interest: wanted, handler: self)
        interest = wanted
        if state == .active {
            delegate?.channelActive(self)
            flush()
        } else if state == .handshaking {
            driveHandshake()
            flush()
        }
    }

    func handleEvents(_ events: IOEvents) {
        if state == .connecting {
            guard events.contains(.writable) || events.contains(.error) || events.contains(.hangup) else { return }
            connectCompleted()
            return
        }
        if (isReadPaused || isInputClosed) && (events.contains(.hangup) || events.contains(.error)) {
            close(error: HTTP2Error(.connectionClosed, "\(peer) hung up with output pending"))
            return
        }
        if events.contains(.readable) || events.contains(.hangup) || events.contains(.error) {
            readAvailable()
        }
        if state != .closed && events.contains(.writable) {
            flush()
            if state == .active && pendingOutboundBytes == 0 {
                delegate?.channelReadyForOutput(self)
                flush()
            }
        }
    }

    /// Queues plaintext for the peer; call `flush()` after a batch of writes.
    func write(_ bytes: UnsafeRawBufferPointer) {
        guard state == .active || state == .handshaking || state == .closing else { return }
        if let security {
            guard security.writePlaintext(bytes) else {
                close(error: HTTP2Error(.tlsFailed, "TLS write failed"))
                return
            }
            security.takeCiphertext(into: &outbound)
        } else {
            outbound.append(contentsOf: bytes)
        }
    }

    /// Writes queued bytes to the socket until it would block; keeps epoll interest in step.
    func flush() {
        guard state != .closed && state != .connecting else { return }
        while pendingOutboundBytes > 0 {
            let written: Int?
            do {
                written = try outbound.withUnsafeBytes { buffer throws(IOError) in
                    try Socket.write(fd, UnsafeRawBufferPointer(rebasing: buffer[outboundStart...]))
                }
            } catch {
                close(error: HTTP2Error(.connectionClosed, "write to \(peer) failed: \(error)"))
                return
            }
            guard let written else { break }
            outboundStart += written
            lastActivity = Syscall.monotonicNanos()
        }
        if outboundStart > 0 && (outboundStart == outbound.count || outboundStart > 1 << 20) {
            outbound.removeSubrange(0..<outboundStart)
            outboundStart = 0
        }
        if state == .closing && pendingOutboundBytes == 0 {
            close(error: nil)
            return
        }
        if isReadPaused && pendingOutboundBytes <= maxOutboundBytes / 2 {
            isReadPaused = false
        } else if !isReadPaused && pendingOutboundBytes >= maxOutboundBytes {
            isReadPaused = true
        }
        updateInterest()
    }

    /// Sends what is queued (and TLS close_notify), then closes.
    func closeAfterFlush() {
        guard state == .active || state == .handshaking else { return }
        if let security {
            security.close()
            security.takeCiphertext(into: &outbound)
        }
        state = .closing
        flush()
    }

    /// Closes now: deregisters, closes the descriptor, tells the delegate once.
    func close(error: HTTP2Error?) {
        guard state != .closed else { return }
        state = .closed
        if let registration { loop.deregister(registration) }
        registration = nil
        Syscall.close(fd)
        let delegate = self.delegate
        self.delegate = nil
        delegate?.channelClosed(self, error: error)
    }

    // MARK: - Private

    private func connectCompleted() {
        do {
            try Socket.connectResult(fd)
            try Socket.setNoDelay(fd)
        } catch {
            close(error: HTTP2Error(.connectFailed, "connect to \(peer) failed: \(error)"))
            return
        }
        if security != nil {
            state = .handshaking
            driveHandshake()
        } else {
            state = .active
            delegate?.channelActive(self)
        }
        flush()
    }

    private func readAvailable() {
        var budget = 1 << 20  // fairness: at most 1 MiB per readiness event
        while budget > 0 && state != .closed && !isReadPaused && !isInputClosed {
            let result: Socket.ReadResult
            do {
                result = try readBuffer.withUnsafeMutableBytes { buffer throws(IOError) in try Socket.read(fd, into: buffer) }
            } catch {
                close(error: HTTP2Error(.connectionClosed, "read from \(peer) failed: \(error)"))
                return
            }
            switch result {
            case .wouldBlock:
                budget = 0
            case .endOfFile:
                // A half-close: stop reading (level-triggered epoll would report it forever), let the delegate
                // finish what the peer asked for; it closes when it is done.
                isInputClosed = true
                updateInterest()
                delegate?.channelInputClosed(self)
                if state != .closed { flush() }
                return
            case .bytes(let count):
                budget -= count
                lastActivity = Syscall.monotonicNanos()
                readBuffer.withUnsafeBytes { deliver(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            }
        }
        guard state != .closed else { return }
        if state == .active { delegate?.channelReadyForOutput(self) }
        flush()
    }

    private func deliver(_ bytes: UnsafeRawBufferPointer) {
        guard let security else {
            delegate?.channelRead(self, bytes)
            return
        }
        security.receive(ciphertext: bytes)
        if state == .handshaking {
            driveHandshake()
            guard state == .active else { return }
        }
        drainPlaintext(security)
    }

    private func driveHandshake() {
        guard let security else { return }
        switch security.handshake() {
        case .needMoreData:
            security.takeCiphertext(into: &outbound)
        case .failed(let reason):
            security.takeCiphertext(into: &outbound)  // the alert, best effort
            flushBeforeFailure()
            close(error: HTTP2Error(.tlsFailed, "TLS handshake with \(peer) failed: \(reason)"))
        case .complete:
            security.takeCiphertext(into: &outbound)
            guard security.negotiatedProtocol == "h2" else {
                flushBeforeFailure()
                close(error: HTTP2Error(.tlsFailed, "\(peer) did not negotiate ALPN h2"))
                return
            }
            state = .active
            delegate?.channelActive(self)
            drainPlaintext(security)  // the peer's first bytes may already sit decrypted in OpenSSL
        }
    }

    private func drainPlaintext(_ security: any ChannelSecurity) {
        while state == .active || state == .closing {
            plaintext.removeAll(keepingCapacity: true)
            switch security.readPlaintext(into: &plaintext, maxBytes: 256 * 1024) {
            case .bytes:
                plaintext.withUnsafeBytes { delegate?.channelRead(self, $0) }
            case .needMoreData:
                security.takeCiphertext(into: &outbound)  // e.g. TLS 1.3 key updates
                return
            case .closed:
                close(error: nil)
                return
            case .failed(let reason):
                close(error: HTTP2Error(.tlsFailed, "TLS read from \(peer) failed: \(reason)"))
                return
            }
        }
    }

    /// One best-effort write of what is queued (a TLS alert) before closing on failure.
    private func flushBeforeFailure() {
        guard pendingOutboundBytes > 0 else { return }
        _ = try? outbound.withUnsafeBytes { buffer throws(IOError) in
            try Socket.write(fd, UnsafeRawBufferPointer(rebasing: buffer[outboundStart...]))
        }
    }

    private func updateInterest() {
        guard let registration, state != .closed else { return }
        var wanted: IOEvents = []
        if !isReadPaused && !isInputClosed { wanted.insert(.readable) }
        if pendingOutboundBytes > 0 { wanted.insert(.writable) }
        guard wanted != interest else { return }
        do {
            try loop.modify(registration, interest: wanted)
            interest = wanted
        } catch {
            close(error: HTTP2Error(.connectionClosed, "epoll update failed: \(error)"))
        }
    }
}
