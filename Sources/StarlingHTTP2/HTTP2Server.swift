public import Logging
public import StarlingIO
import StarlingTLS
import Synchronization
import Dispatch

/// Our HTTP/2 server: one listening socket per event loop (SO_REUSEPORT), TLS with ALPN h2 or loopback h2c,
/// requests routed by a `Router`.
///
/// Lifecycle: `start()` binds and starts the loops; `shutdown(gracePeriod:)` stops accepting, sends GOAWAY,
/// lets in-flight streams finish within the grace period, then closes what is left and stops the loops.
/// Thread-safe.
public final class HTTP2Server: Sendable {
    public let configuration: HTTP2ServerConfiguration
    public let router: Router
    /// The server's counters (given by the owner when it reports them before the server exists, as `/metrics`).
    public let counters: HTTP2ServerCounters
    private let logger: Logger
    private let state = Mutex<State>(State())

    private struct State {
        var group: EventLoopGroup?
        var contexts: [LoopBound<ServerLoopContext>] = []
        var localAddress: SocketAddress?
        var isStopped = false
        /// Set by a successful ``start()``: a server never started has nothing to stop or wait for.
        var hasStarted = false
        var stopWaiters: [CheckedContinuation<Void, Never>] = []
    }

    public init(configuration: HTTP2ServerConfiguration, router: Router, logger: Logger,
                counters: HTTP2ServerCounters = HTTP2ServerCounters()) {
        self.configuration = configuration
        self.counters = counters
        self.router = router
        self.logger = logger
    }

    /// The bound address (the real port when configured with port 0); nil before `start()`.
    public var localAddress: SocketAddress? { state.withLock { $0.localAddress } }

    /// Binds the listeners and starts serving. Refuses h2c on a non-loopback address without `allowInsecure`.
    public func start() throws(HTTP2Error) {
        let config = configuration
        if config.tls == nil && !config.address.isLoopback && !config.allowInsecure {
            throw HTTP2Error(.invalidConfiguration,
                             "cleartext HTTP/2 on \(config.address) is refused: configure TLS, listen on loopback, or set the insecure flag")
        }
        var tlsContext: TLSContext?
        if let tls = config.tls {
            do { tlsContext = try TLSContext.server(tls) } catch {
                throw HTTP2Error(.tlsFailed, "TLS setup failed: \(error)")
            }
        }
        let loopCount = max(1, config.loopCount)
        let listeners = try bindListeners(config.address, count: loopCount)
        let group: EventLoopGroup
        do {
            group = try EventLoopGroup(name: "h2-server", count: loopCount)
        } catch {
            for fd in listeners.fds { Syscall.close(fd) }
            throw HTTP2Error(.bindFailed, "could not start event loops: \(error)")
        }
        let started = StartBarrier(count: loopCount)
        for (index, loop) in group.loops.enumerated() {
            let fd = listeners.fds[index]
            let router = self.router
            let logger = self.logger
            let counters = self.counters
            let tls = tlsContext.map { UnsafeTransfer($0) }
            loop.execute {
                let context = ServerLoopContext(loop: loop, listenerFD: fd, router: router, limits: config.limits,
                                                logger: logger, counters: counters, tlsContext: tls?.value,
                                                accessLog: config.accessLog, loopIndex: index)
                do {
                    try context.start()
                    started.arrive(index: index, context: LoopBound(context, loop: loop), error: nil)
                } catch {
                    started.arrive(index: index, context: nil, error: "\(error)")
                }
            }
        }
        let (contexts, failure) = started.wait()
        if let failure {
            group.shutdown()
            throw HTTP2Error(.bindFailed, "listener registration failed: \(failure)")
        }
        let boxes = contexts
        state.withLock { state in
            state.group = group
            state.hasStarted = true
            state.contexts = boxes
            state.localAddress = listeners.address
        }
        logger.info("listening", metadata: [
            "address": "\(listeners.address)", "tls": "\(config.tls != nil)", "loops": "\(loopCount)"])
    }

    /// Graceful shutdown: GOAWAY, in-flight streams finish within `gracePeriod`, then the rest is closed.
    public func shutdown(gracePeriod: Duration = .seconds(10)) async {
        let (group, contexts) = state.withLock { state in
            let taken = (state.group, state.contexts)
            state.group = nil
            state.contexts = []
            return taken
        }
        guard let group else {
            // Never started (its owner's start failed before): stopped at once, or this would wait forever.
            let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>]? in
                guard !state.hasStarted else { return nil }
                state.isStopped = true
                defer { state.stopWaiters = [] }
                return state.stopWaiters
            }
            if let waiters {
                for waiter in waiters { waiter.resume() }
                return
            }
            await waitUntilStopped()
            return
        }
        let drained = Mutex<Int>(contexts.count)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumed = Mutex<CheckedContinuation<Void, Never>?>(continuation)
            let finish: @Sendable () -> Void = { resumed.withLock { $0?.resume(); $0 = nil } }
            if contexts.isEmpty { finish() }
            for context in contexts {
                context.execute { context in
                    context.beginShutdown {
                        if drained.withLock({ $0 -= 1; return $0 }) == 0 { finish() }
                    }
                }
                context.loop.execute {
                    context.loop.scheduleTimer(after: gracePeriod) {
                        context.value.forceClose()
                        finish()
                    }
                }
            }
        }
        // The server owns its handler tasks: those still running have nobody to answer, so they are cancelled and
        // awaited here, while the loops still run (their answers land on the loop and are dropped). Nothing the
        // server started outlives `shutdown`.
        for task in await Self.cancelHandlers(contexts) { await task.value }
        // Let force-closed connections finish their callbacks, then stop the threads (off the cooperative pool).
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            do {
                try ThreadSpawner.spawn(name: "h2-stop") {
                    group.shutdown()
                    continuation.resume()
                }.detach()
            } catch {
                group.shutdown()
                continuation.resume()
            }
        }
        let waiters = state.withLock { state in
            state.isStopped = true
            let waiters = state.stopWaiters
            state.stopWaiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume() }
        logger.info("stopped")
    }

    /// Cancels every loop's running handlers and returns their tasks.
    private static func cancelHandlers(_ contexts: [LoopBound<ServerLoopContext>]) async -> [Task<Void, Never>] {
        guard !contexts.isEmpty else { return [] }
        return await withCheckedContinuation { (continuation: CheckedContinuation<[Task<Void, Never>], Never>) in
            let gathered = Mutex<(remaining: Int, tasks: [Task<Void, Never>])>((contexts.count, []))
            for context in contexts {
                context.execute { context in
                    let tasks = context.cancelHandlers()
                    let all = gathered.withLock { gathered -> [Task<Void, Never>]? in
                        gathered.tasks += tasks
                        gathered.remaining -= 1
                        return gathered.remaining == 0 ? gathered.tasks : nil
                    }
                    if let all { continuation.resume(returning: all) }
                }
            }
        }
    }

    /// Returns once the server has shut down.
    public func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state in
                if state.isStopped { return true }
                state.stopWaiters.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    private func bindListeners(_ address: SocketAddress, count: Int) throws(HTTP2Error) -> (fds: [Int32], address: SocketAddress) {
        var fds: [Int32] = []
        do {
            let first = try Socket.listen(on: address, reusePort: true)
            fds.append(first)
            let bound = try Socket.localAddress(first)
            for _ in 1..<max(count, 1) {
                fds.append(try Socket.listen(on: bound, reusePort: true))
            }
            return (fds, bound)
        } catch {
            for fd in fds { Syscall.close(fd) }
            throw HTTP2Error(.bindFailed, "cannot listen on \(address): \(error)")
        }
    }
}

/// Waits (blocking the caller, which is not a loop thread) until `count` loops have started, collecting
/// their contexts.
final class StartBarrier: Sendable {
    private let count: Int
    private let results = Mutex<(contexts: [Int: LoopBound<ServerLoopContext>], error: String?)>(([:], nil))
    private let semaphore = DispatchSemaphore(value: 0)

    init(count: Int) { self.count = count }

    func arrive(index: Int, context: LoopBound<ServerLoopContext>?, error: String?) {
        results.withLock { results in
            if let context { results.contexts[index] = context }
            if let error, results.error == nil { results.error = error }
        }
        semaphore.signal()
    }

    /// The contexts in loop order and the first error, if any.
    func wait() -> ([LoopBound<ServerLoopContext>], String?) {
        for _ in 0..<count { semaphore.wait() }
        return results.withLock { results in
            (results.contexts.sorted { $0.key < $1.key }.map(\.value), results.error)
        }
    }
}
