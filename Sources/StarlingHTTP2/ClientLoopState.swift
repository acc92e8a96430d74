import StarlingIO
import StarlingTLS

/// The client's state on its event loop: the current connection, requests waiting for one, and the
/// completion of every request exactly once (response, error or timeout). Confined to `loop`.
final class ClientLoopState {
    /// A request that has not completed yet.
    struct Pending {
        let request: HTTPClientRequest
        let complete: @Sendable (Result<HTTPResponse, HTTP2Error>) -> Void
        var timer: TimerID?
        var streamID: Int32?
        weak var connection: HTTP2ClientConnection?
        var attempts = 0
    }

    let loop: EventLoop
    let configuration: HTTP2ClientConfiguration
    let url: ParsedURL
    private let tlsContext: TLSContext?
    private var connection: HTTP2ClientConnection?
    private var isConnecting = false
    private var isShutDown = false
    private var pending: [UInt64: Pending] = [:]
    /// Requests waiting for a connection, in arrival order.
    private var waiting: [UInt64] = []
    private var connectTimer: TimerID?

    init(loop: EventLoop, configuration: HTTP2ClientConfiguration, url: ParsedURL, tlsContext: TLSContext?) {
        self.loop = loop
        self.configuration = configuration
        self.url = url
        self.tlsContext = tlsContext
    }

    func enqueue(id: UInt64, _ request: HTTPClientRequest,
                 complete: @escaping @Sendable (Result<HTTPResponse, HTTP2Error>) -> Void) {
        guard !isShutDown else {
            complete(.failure(HTTP2Error(.shutDown, "the client is shut down")))
            return
        }
        let timeout = request.timeout ?? configuration.requestTimeout
        let timer = loop.scheduleTimer(after: timeout) { [weak self] in
            self?.timedOut(id, after: timeout)
        }
        pending[id] = Pending(request: request, complete: complete, timer: timer)
        waiting.append(id)
        pump()
    }

    /// Sends waiting requests on the current connection, connecting first when there is none.
    private func pump() {
        guard !waiting.isEmpty else { return }
        guard let connection, connection.canTakeRequests else {
            if connection?.isActive == true { self.connection = nil }  // draining after GOAWAY: use a new one
            connect()
            return
        }
        let ids = waiting
        waiting.removeAll()
        for id in ids {
            guard var entry = pending[id] else { continue }
            entry.attempts += 1
            let streamID = connection.submit(requestID: id, entry.request, authority: url.authority,
                                             scheme: url.isTLS ? "https" : "http",
                                             maxResponseBytes: configuration.maxResponseBodyBytes,
                                             acceptsGzip: configuration.acceptsGzip)
            guard let streamID else {
                finish(id, .failure(HTTP2Error(.protocolError, "the connection refused a new request")), retryable: false)
                continue
            }
            entry.streamID = streamID
            entry.connection = connection
            pending[id] = entry
        }
        connection.produceOutput()
        connection.channel.flush()
    }

    private func connect() {
        guard !isConnecting, connection == nil, !isShutDown else { return }
        isConnecting = true
        let host = url.host
        let port = url.port
        if let address = try? SocketAddress(host: host, port: port) {
            open(address)
            return
        }
        // Host names resolve off the loop (getaddrinfo blocks).
        let bound = LoopBound(self, loop: loop)
        HostResolver.resolve(host: host, port: port) { result in
            bound.execute { state in
                switch result {
                case .success(let address): state.open(address)
                case .failure(let error): state.connectFailed(HTTP2Error(.connectFailed, "\(error)"))
                }
            }
        }
    }

    private func open(_ address: SocketAddress) {
        let fd: Int32
        let isConnected: Bool
        do {
            (fd, isConnected) = try Socket.connect(to: address)
        } catch {
            connectFailed(HTTP2Error(.connectFailed, "connect to \(address) failed: \(error)"))
            return
        }
        var security: (any ChannelSecurity)?
        if let tlsContext {
            do {
                security = TLSChannelSecurity(engine: try TLSEngine(context: tlsContext, serverName: url.host))
            } catch {
                Syscall.close(fd)
                connectFailed(HTTP2Error(.tlsFailed, "TLS setup failed: \(error)"))
                return
            }
        }
        let channel = SocketChannel(fd: fd, loop: loop, security: security, peer: address.description,
                                    isConnecting: !isConnected, maxOutboundBytes: 8 << 20)
        let connection = HTTP2ClientConnection(channel: channel, owner: self)
        channel.delegate = connection
        self.connection = connection
        connectTimer = loop.scheduleTimer(after: configuration.connectTimeout) { [weak connection] in
            guard let connection, !connection.isActive else { return }
            connection.channel.close(error: HTTP2Error(.timedOut, "connecting to \(address) timed out"))
        }
        do {
            try channel.start()
        } catch {
            channel.close(error: HTTP2Error(.connectFailed, "register failed: \(error)"))
        }
    }

    private func connectFailed(_ error: HTTP2Error) {
        isConnecting = false
        let ids = waiting
        waiting.removeAll()
        for id in ids { finish(id, .failure(error), retryable: false) }
    }

    func connectionActive(_ connection: HTTP2ClientConnection) {
        isConnecting = false
        if let connectTimer { loop.cancelTimer(connectTimer) }
        connectTimer = nil
        pump()
    }

    func connectionClosed(_ connection: HTTP2ClientConnection, error: HTTP2Error) {
        if self.connection === connection {
            self.connection = nil
            if isConnecting { connectFailed(error) }
        }
        pump()
    }

    /// Completes request `id` once. A refused stream (never processed by the server) is sent again once.
    func finish(_ id: UInt64, _ result: Result<HTTPResponse, HTTP2Error>, retryable: Bool) {
        guard var entry = pending[id] else { return }
        if retryable && entry.attempts < 2 && !isShutDown {
            entry.streamID = nil
            entry.connection = nil
            pending[id] = entry
            waiting.append(id)
            loop.scheduleTimer(after: .zero) { [weak self] in self?.pump() }
            return
        }
        pending[id] = nil
        if let timer = entry.timer { loop.cancelTimer(timer) }
        entry.complete(result)
    }

    private func timedOut(_ id: UInt64, after timeout: Duration) {
        guard let entry = pending[id] else { return }
        if let streamID = entry.streamID, let connection = entry.connection { connection.cancel(streamID: streamID) }
        waiting.removeAll { $0 == id }
        finish(id, .failure(HTTP2Error(.timedOut, "no response within \(timeout)")), retryable: false)
    }

    func shutdown() {
        guard !isShutDown else { return }
        isShutDown = true
        for id in Array(pending.keys) {
            finish(id, .failure(HTTP2Error(.shutDown, "the client is shut down")), retryable: false)
        }
        connection?.channel.closeAfterFlush()
    }
}
