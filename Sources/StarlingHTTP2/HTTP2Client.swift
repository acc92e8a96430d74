public import StarlingIO
import StarlingTLS
import Synchronization

/// Our HTTP/2 client: one connection (TLS with ALPN h2, or h2c) multiplexing concurrent requests, with
/// per-request timeouts, gzip, and a new connection after a failure. Thread-safe; `send` may be called from any
/// task. Requests that were in flight when a connection broke fail (the caller decides to retry: Starling's
/// pushes are idempotent); requests the server refused unprocessed are sent again once.
public final class HTTP2Client: Sendable {
    public let configuration: HTTP2ClientConfiguration
    private let group: EventLoopGroup?
    private let state: LoopBound<ClientLoopState>
    private let nextID = Atomic<UInt64>(1)

    /// Creates the client and its event loop thread (or uses `loop`, owned by the caller). Connects lazily.
    public init(configuration: HTTP2ClientConfiguration, loop: EventLoop? = nil) throws(HTTP2Error) {
        self.configuration = configuration
        let url = try ParsedURL(configuration.baseURL)
        var tlsContext: TLSContext?
        if url.isTLS {
            var tls = configuration.tls ?? TLSConfiguration.client(trustRootsPath: nil)
            tls.applicationProtocols = ["h2"]
            do { tlsContext = try TLSContext.client(tls) } catch {
                throw HTTP2Error(.tlsFailed, "TLS client setup failed: \(error)")
            }
        }
        let chosen: EventLoop
        if let loop {
            group = nil
            chosen = loop
        } else {
            do { group = try EventLoopGroup(name: "h2-client", count: 1) } catch {
                throw HTTP2Error(.connectFailed, "cannot start the client loop: \(error)")
            }
            chosen = group.unsafelyUnwrapped.loops[0]
        }
        let context = UnsafeTransfer(tlsContext)
        let box = Mutex<LoopBound<ClientLoopState>?>(nil)
        let ready = DispatchSemaphoreBox()
        chosen.execute {
            let state = ClientLoopState(loop: chosen, configuration: configuration, url: url, tlsContext: context.value)
            box.withLock { $0 = LoopBound(state, loop: chosen) }
            ready.signal()
        }
        ready.wait()
        guard let state = box.withLock({ $0 }) else {
            throw HTTP2Error(.connectFailed, "client loop did not start")
        }
        self.state = state
    }

    /// Sends a request and returns the complete response (any status), or throws for transport failures.
    public func send(_ request: HTTPClientRequest) async throws(HTTP2Error) -> HTTPResponse {
        var request = request
        for field in configuration.defaultHeaders where request.headers[field.name] == nil {
            request.headers.add(field.name, field.value)
        }
        // Compression and decompression happen here, in the caller's task: never on the client's loop.
        if let threshold = configuration.gzipRequestsFromBytes, request.body.count >= threshold,
           request.headers["content-encoding"] == nil {
            request.body = try Gzip.compress(request.body)
            request.headers.set("content-encoding", "gzip")
        }
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        let prepared = request
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<HTTPResponse, HTTP2Error>, Never>) in
            state.execute { state in
                state.enqueue(id: id, prepared) { continuation.resume(returning: $0) }
            }
        }
        var response = try result.get()
        if response.headers["content-encoding"]?.lowercased() == "gzip" {
            response.body = try Gzip.decompress(response.body, maxBytes: configuration.maxResponseBodyBytes)
            response.headers.remove("content-encoding")
        }
        return response
    }

    /// A client dropped without `shutdown()` still fails its pending requests and closes its connection; its
    /// own loop thread is told to stop (not joined: the last reference may go away on that very thread).
    deinit {
        state.execute { $0.shutdown() }
        group?.loops.forEach { $0.stop() }
    }

    /// Fails pending requests, closes the connection and stops the client's own loop.
    /// Must not be called from the client's loop.
    public func shutdown() {
        let done = DispatchSemaphoreBox()
        state.execute { state in
            state.shutdown()
            done.signal()
        }
        done.wait()
        group?.shutdown()
    }
}

import Dispatch

/// A semaphore that can be captured by `@Sendable` closures.
final class DispatchSemaphoreBox: Sendable {
    private let semaphore = DispatchSemaphore(value: 0)
    func signal() { semaphore.signal() }
    func wait() { semaphore.wait() }
}
