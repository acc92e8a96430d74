import StarlingHTTP2
import StarlingTestSupport
import Synchronization
import Testing

/// Handler tasks have an owner: the server cancels a handler whose stream or connection is gone, and its
/// shutdown cancels and awaits every handler still running, so none outlives the server.
@Suite("handler tasks are owned by the server", .timeLimit(.minutes(1)))
struct HandlerTaskTests {
    /// What the hanging handler went through.
    final class Probe: Sendable {
        struct Counts { var started = 0, cancelled = 0, returned = 0 }
        private let counts = Mutex(Counts())
        var snapshot: Counts { counts.withLock { $0 } }

        /// A route whose handler waits until it is cancelled (as a long-poll with nothing new does).
        func router() -> Router {
            var router = Router()
            router.add("GET", "/hang", .async { [self] _ in
                counts.withLock { $0.started += 1 }
                try? await Task.sleep(for: .seconds(600))  // the handler's own wait, ended by cancellation only
                let cancelled = Task.isCancelled
                counts.withLock {
                    if cancelled { $0.cancelled += 1 }
                    $0.returned += 1
                }
                return .text(200, "done")
            })
            return router
        }
    }

    @Test func shutdownCancelsAndAwaitsRunningHandlers() async throws {
        // Proves a handler still running when the grace period ends is cancelled and has returned by the time
        // `shutdown` returns.
        let probe = Probe()
        let server = try TestServer.start(loops: 1, router: probe.router())
        let client = try HTTP2Client(configuration: HTTP2ClientConfiguration(baseURL: server.h2cURL))
        let request = Task { try? await client.send(HTTPClientRequest(method: "GET", path: "/hang")) }
        try await waitUntil("the handler runs") { probe.snapshot.started == 1 }
        await server.server.shutdown(gracePeriod: .milliseconds(100))
        let counts = probe.snapshot
        #expect(counts.cancelled == 1 && counts.returned == 1)
        _ = await request.value
        client.shutdown()
    }

    @Test func aStreamTheClientResetsCancelsItsHandler() async throws {
        // Proves a request the client gives up on (its timeout resets the stream) cancels the handler working for
        // it, and the connection goes on serving.
        let probe = Probe()
        var router = probe.router()
        router.add("GET", "/hello", .immediate { _ in .text(200, "hello") })
        let server = try TestServer.start(loops: 1, router: router)
        let client = try HTTP2Client(configuration: HTTP2ClientConfiguration(baseURL: server.h2cURL))
        let request = HTTPClientRequest(method: "GET", path: "/hang", timeout: .milliseconds(300))
        await #expect(throws: HTTP2Error.self) { try await client.send(request) }
        try await waitUntil("the handler is cancelled", timeout: .seconds(20)) { probe.snapshot.cancelled == 1 }
        #expect(try await client.send(HTTPClientRequest(method: "GET", path: "/hello")).status == 200)
        #expect(server.server.counters.snapshot().connectionsAccepted == 1)
        client.shutdown()
        await server.stop()
    }
}
