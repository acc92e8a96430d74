import StarlingHTTP2
import Testing

/// Threads the transport starts for one-off work (host-name resolution, server shutdown) are detached, so none
/// stays behind unjoined. These tests only fail under ThreadSanitizer (`ops/test --sanitize` runs this suite with
/// it), which reports a finished thread nobody joined or detached as a "thread leak" and exits non-zero.
@Suite(.timeLimit(.minutes(3)))
struct ThreadHygieneTests {
    /// A client connecting by host name (getaddrinfo on a thread of its own), reconnecting a few times, and
    /// a server shut down afterwards, leave no thread unjoined.
    @Test func resolverAndShutdownThreadsAreDetached() async throws {
        let server = try TestServer.start()
        for _ in 0..<3 {
            let client = try HTTP2Client(configuration: HTTP2ClientConfiguration(baseURL: "http://localhost:\(server.port)"))
            let response = try await client.send(HTTPClientRequest(method: "GET", path: "/hello"))
            #expect(response.status == 200)
            client.shutdown()
        }
        await server.stop()
    }
}
