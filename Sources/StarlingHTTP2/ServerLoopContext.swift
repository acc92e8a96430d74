import Logging
import StarlingIO
import StarlingTLS

/// The server's state on one event loop: its listening socket, its connections and the once-a-second sweep.
/// Confined to `loop`.
final class ServerLoopContext: EventLoopHandler {
    let loop: EventLoop
    let router: Router
    let limits: HTTP2Limits
    let logger: Logger
    let counters: HTTP2ServerCounters
    let sessionOptions: NGHTTP2Session.Options
    let accessLog: Bool
    let errorResponder: @Sendable (any Error, HTTPRequest) -> HTTPResponse
    private let tlsContext: TLSContext?
    private let listenerFD: Int32
    private var listenerRegistration: Registration?
    private var connections: [UInt64: HTTP2ServerConnection] = [:]
    private var nextConnectionID: UInt64
    private var sweepTimer: TimerID?
    /// Handler tasks of this loop's connections, by handler id, from start until their answer is back on the
    /// loop. This context owns them: a connection cancels its own when a stream or the connection goes, and
    /// the server's shutdown cancels and awaits what is left before it stops the loop.
    private var handlerTasks: [UInt64: Task<Void, Never>] = [:]
    private var nextHandlerID: UInt64 = 0
    private var shutdownDone: (@Sendable () -> Void)?

    init(loop: EventLoop, listenerFD: Int32, router: Router, limits: HTTP2Limits, logger: Logger,
         counters: HTTP2ServerCounters, tlsContext: TLSContext?, accessLog: Bool, loopIndex: Int) {
        self.loop = loop
        self.listenerFD = listenerFD
        self.router = router
        self.limits = limits
        self.logger = logger
        self.counters = counters
        self.tlsContext = tlsContext
        self.accessLog = accessLog
        self.nextConnectionID = UInt64(loopIndex) << 48
        var options = NGHTTP2Session.Options()
        options.maxConcurrentStreams = limits.maxConcurrentStreams
        options.initialWindowBytes = limits.initialWindowBytes
        options.connectionWindowBytes = limits.connectionWindowBytes
        options.maxHeaderListBytes = UInt32(clamping: limits.maxHeaderListBytes)
        options.streamResetRatePerSecond = UInt64(limits.maxClientResetsPerSecond)
        options.streamResetBurst = UInt64(limits.maxClientResetsPerSecond) * 2
        self.sessionOptions = options
        let logger = logger
        self.errorResponder = { error, request in
            HTTPServerErrorMapping.response(for: error, path: request.path, logger: logger)
        }
    }

    func start() throws(IOError) {
        listenerRegistration = try loop.register(fd: listenerFD, interest: .readable, handler: self)
        scheduleSweep()
    }

    func errorResponse(_ error: any Error, _ request: HTTPRequest) -> HTTPResponse {
        errorResponder(error, request)
    }

    /// The listener is readable: accept what is pending (bounded per event for fairness).
    func handleEvents(_ events: IOEvents) {
        for _ in 0..<128 {
            let accepted: (fd: Int32, peer: SocketAddress?)?
            do {
                accepted = try Socket.accept(listenerFD)
            } catch {
                logger.warning("accept failed", metadata: ["error": "\(error)"])
                return
            }
            guard let (fd, peer) = accepted else { return }
            admit(fd: fd, peer: peer?.description ?? "?")
        }
    }

    private func admit(fd: Int32, peer: String) {
        counters.connectionsAccepted.add(1)
        if counters.connectionsOpen.load(ordering: .relaxed) >= limits.maxConnections {
            counters.connectionsRejected.add(1)
            Syscall.close(fd)
            return
        }
        try? Socket.setNoDelay(fd)
        var security: (any ChannelSecurity)?
        if let tlsContext {
            do {
                security = TLSChannelSecurity(engine: try TLSEngine(context: tlsContext))
            } catch {
                logger.warning("TLS engine creation failed", metadata: ["error": "\(error)"])
                Syscall.close(fd)
                return
            }
        }
        let channel = SocketChannel(fd: fd, loop: loop, security: security, peer: peer, isConnecting: false,
                                    maxOutboundBytes: limits.maxOutboundBytes)
        let id = nextConnectionID
        nextConnectionID += 1
        let connection = HTTP2ServerConnection(id: id, channel: channel, context: self)
        channel.delegate = connection
        connections[id] = connection
        counters.connectionsOpen.add(1)
        do {
            try channel.start()
        } catch {
            channel.close(error: HTTP2Error(.connectionClosed, "register failed: \(error)"))
        }
        if shutdownDone != nil { connection.beginGracefulShutdown() }
    }

    func connectionClosed(_ connection: HTTP2ServerConnection) {
        guard connections.removeValue(forKey: connection.id) != nil else { return }
        counters.connectionsOpen.add(-1)
        finishShutdownIfDrained()
    }

    /// A handler's response was submitted (or dropped): a draining connection may be able to close now.
    func afterHandler(_ connection: HTTP2ServerConnection) {
        if shutdownDone != nil && connection.isIdle { connection.channel.closeAfterFlush() }
    }

    /// Starts a handler task with `start(id)` and keeps it until ``handlerFinished(_:)``; returns its id.
    func handlerStarted(_ start: (UInt64) -> Task<Void, Never>) -> UInt64 {
        let id = nextHandlerID
        nextHandlerID += 1
        handlerTasks[id] = start(id)
        return id
    }

    /// The handler's answer is back on the loop: the task is done with.
    func handlerFinished(_ id: UInt64) {
        handlerTasks[id] = nil
    }

    /// Cancels a running handler whose answer is no longer wanted (it still reports through the loop).
    func cancelHandler(_ id: UInt64) {
        handlerTasks[id]?.cancel()
    }

    /// Cancels every handler still running and hands their tasks over, for the server's shutdown to await.
    func cancelHandlers() -> [Task<Void, Never>] {
        let tasks = Array(handlerTasks.values)
        for task in tasks { task.cancel() }
        return tasks
    }

    func recordAccess(stream: ServerStream, status: Int, bytes: Int, peer: String) {
        counters.requests.add(1)
        counters.countResponse(status: status)
        guard accessLog, logger.logLevel <= .info else { return }
        let micros = (Syscall.monotonicNanos() &- stream.startedAt) / 1000
        logger.info("request", metadata: [
            "http.method": "\(stream.requestMethod)", "http.path": "\(stream.requestPath)",
            "http.status": "\(status)", "http.bytes": "\(bytes)", "http.micros": "\(micros)", "peer": "\(peer)",
        ])
    }

    /// Stops accepting, sends GOAWAY everywhere, and calls `done` once every connection has closed.
    func beginShutdown(done: @escaping @Sendable () -> Void) {
        shutdownDone = done
        if let listenerRegistration { loop.deregister(listenerRegistration) }
        listenerRegistration = nil
        Syscall.close(listenerFD)
        for connection in Array(connections.values) { connection.beginGracefulShutdown() }
        finishShutdownIfDrained()
    }

    /// Closes every connection now (the grace period is over).
    func forceClose() {
        for connection in Array(connections.values) {
            connection.channel.close(error: HTTP2Error(.shutDown, "server shut down"))
        }
    }

    private func finishShutdownIfDrained() {
        guard connections.isEmpty, let done = shutdownDone else { return }
        shutdownDone = nil
        if let sweepTimer { loop.cancelTimer(sweepTimer) }
        sweepTimer = nil
        done()
    }

    private func scheduleSweep() {
        // Strong capture: the timer is cancelled when the context finishes shutting down.
        sweepTimer = loop.scheduleTimer(after: .seconds(1)) {
            let now = Syscall.monotonicNanos()
            for connection in Array(self.connections.values) { connection.sweep(now: now) }
            self.scheduleSweep()
        }
    }
}
