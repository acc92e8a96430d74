import Logging
@testable import StarlingAgent
import StarlingHTTP2
import StarlingIO
import Testing
import Synchronization

/// The agent's list of hub URLs (for hub failover): validation and moving on to the next hub.
@Suite(.timeLimit(.minutes(3)))
struct HubEndpointsTests {
    static let good = AgentConfiguration(
        region: "us-east", hub: "https://hub-a:8443", token: "t", ca: "ca.crt", database: "postgresql://x/y")

    @Test func hubListValidationNamesTheEntry() throws {
        // Proves a list of hub URLs is valid, and an empty list, a bad or repeated entry, more than 16 URLs or
        // an https entry without `ca` is refused with the key naming the entry.
        var list = Self.good
        list.hubs = ["https://hub-a:8443", "https://hub-b:8443"]
        try list.validate()
        #expect(list.hub == "https://hub-a:8443")
        let cases: [([String], String?, String)] = [
            ([], "ca.crt", "hub"),
            (["https://hub-a:8443", "ftp://hub-b"], "ca.crt", "hub[1]"),
            (["https://hub-a:8443", "https://hub-a:8443"], "ca.crt", "hub[1]"),
            ((0..<17).map { "http://127.0.0.1:\(8000 + $0)" }, nil, "hub"),
            (["http://127.0.0.1:1", "https://hub-b:8443"], nil, "ca"),
        ]
        for (hubs, ca, key) in cases {
            var bad = Self.good
            bad.hubs = hubs
            bad.ca = ca
            do {
                try bad.validate()
                Issue.record("\(hubs) was accepted")
            } catch {
                #expect(error.key == key, "\(hubs)")
            }
        }
    }

    @Test func onlyStandbyAndShuttingDown503sMoveOn() {
        // Proves the agent moves on for a 503 `standby` or `shutting_down` only: other 503s, other errors and
        // non-JSON bodies are the hub's answer.
        func response(_ status: Int, _ body: String) -> HTTPResponse {
            HTTPResponse(status: status, body: Array(body.utf8))
        }
        #expect(HubEndpoints.failoverCode(response(503, #"{"error":{"code":"standby","message":"m"}}"#)) == "standby")
        #expect(
            HubEndpoints.failoverCode(response(503, #"{"error":{"code":"shutting_down","message":"m"}}"#))
                == "shutting_down")
        #expect(HubEndpoints.failoverCode(response(503, #"{"error":{"code":"overloaded","message":"m"}}"#)) == nil)
        #expect(HubEndpoints.failoverCode(response(400, #"{"error":{"code":"standby","message":"m"}}"#)) == nil)
        #expect(HubEndpoints.failoverCode(response(503, "standby")) == nil)
    }

    /// An h2c server on 127.0.0.1:0 answering every `GET /probe` with `status` and `body`.
    private func server(_ status: Int, _ body: String) throws -> HTTP2Server {
        var router = Router()
        router.add("GET", "/probe", .immediate { _ in .json(status, Array(body.utf8)) })
        return try server(router)
    }

    /// An h2c server on 127.0.0.1:0 with `router`, started.
    private func server(_ router: Router) throws -> HTTP2Server {
        var configuration = HTTP2ServerConfiguration(address: try SocketAddress(host: "127.0.0.1", port: 0))
        configuration.loopCount = 1
        configuration.accessLog = false
        let server = HTTP2Server(
            configuration: configuration, router: router,
            logger: Logger(label: "test.endpoints", factory: { _ in SwiftLogNoOpLogHandler() }))
        try server.start()
        return server
    }

    @Test func requestsSkipAStandbyAndADeadHubAndStayOnTheActiveOne() async throws {
        // Proves a request moves past a hub answering 503 standby and a URL nobody listens on to the hub that
        // answers, stays there for the next requests, and fails retryably only when no hub answers.
        let standby = try server(503, #"{"error":{"code":"standby","message":"standby"}}"#)
        let active = try server(200, #"{"ok":true}"#)
        do {
            try await probeEndpoints(standby: standby, active: active)
        } catch {
            Issue.record(error)
        }
        await standby.shutdown(gracePeriod: .zero)
        await active.shutdown(gracePeriod: .zero)
    }

    private func probeEndpoints(standby: HTTP2Server, active: HTTP2Server) async throws {
        let standbyURL = "http://127.0.0.1:\(standby.localAddress?.port ?? 0)"
        let activeURL = "http://127.0.0.1:\(active.localAddress?.port ?? 0)"
        let endpoints = try HubEndpoints(
            urls: ["http://127.0.0.1:1", standbyURL, activeURL], ca: nil, headers: HTTPHeaders(),
            requestTimeout: .seconds(5))
        defer { endpoints.shutdown() }
        let probe = HTTPClientRequest(method: "GET", path: "/probe")
        #expect(try await endpoints.send(probe).status == 200)
        #expect(endpoints.currentURL == activeURL)
        #expect(try await endpoints.send(probe).status == 200)
        #expect(endpoints.currentURL == activeURL)

        let nobody = try HubEndpoints(
            urls: ["http://127.0.0.1:1", standbyURL], ca: nil, headers: HTTPHeaders(), requestTimeout: .seconds(5))
        defer { nobody.shutdown() }
        do {
            _ = try await nobody.send(probe)
            Issue.record("a request without an active hub succeeded")
        } catch {
            #expect(error.code == .hubUnavailable && error.isRetryable)
        }
    }

    @Test func compressionAutoLeavesOnlyLoopbackUncompressed() {
        // Proves `compression: auto` compresses to every host but a loopback one (the host as the HTTP/2 client reads
        // it: a URL it cannot use, an unclosed bracket or user info before the host, is no loopback), and gzip / none
        // are what they say.
        let loopback = [
            "http://127.0.0.1:8443", "https://127.3.2.1:1/", "http://localhost:80", "https://LOCALHOST",
            "http://[::1]:8443",
        ]
        let remote = [
            "https://hub-a:8443", "https://10.0.0.1:8443", "http://[2001:db8::1]:80", "https://127.0.0.1.example:1",
            "https://1127.0.0.1:1", "http://[::1", "https://127.0.0:1", "https://user@127.0.0.1:9",
        ]
        for url in loopback {
            #expect(!HubCompression.auto.compresses(url: url), "\(url)")
            #expect(HubCompression.gzip.compresses(url: url), "\(url)")
        }
        for url in remote {
            #expect(HubCompression.auto.compresses(url: url), "\(url)")
            #expect(!HubCompression.none.compresses(url: url), "\(url)")
        }
    }

    @Test(arguments: [(HubCompression.none, false), (.gzip, true), (.auto, false)])
    func compressionSettingDecidesWhatTheHubIsAskedFor(_ compression: HubCompression, _ gzip: Bool) async throws {
        // Proves the setting reaches the wire: the server sees `accept-encoding: gzip` only when the agent
        // compresses, a large answer then arrives compressed (and is inflated), and a push body of 4 KiB is
        // gzip-encoded only then (the client's own setting, which the server's inflation hides from handlers).
        let seen = Mutex<[String?]>([])
        var router = Router()
        router.add("POST", "/echo", .immediate { request in
            seen.withLock { $0.append(request.headers["accept-encoding"]) }
            return .json(200, Array(repeating: UInt8(ascii: "a"), count: 8192))
        })
        let server = try server(router)
        let url = "http://127.0.0.1:\(server.localAddress?.port ?? 0)"
        let endpoints = try HubEndpoints(
            urls: [url], ca: nil, headers: HTTPHeaders(), requestTimeout: .seconds(5), compression: compression)
        let response = try await endpoints.send(
            HTTPClientRequest(method: "POST", path: "/echo", body: Array(repeating: 1, count: 4096)))
        #expect(response.status == 200 && response.body.count == 8192)
        #expect(seen.withLock { $0 } == [gzip ? "gzip" : nil])
        let client = try #require(endpoints.endpoints.first?.client)
        #expect((client.configuration.gzipRequestsFromBytes != nil) == gzip)
        #expect(client.configuration.acceptsGzip == gzip)
        endpoints.shutdown()
        await server.shutdown(gracePeriod: .zero)
    }
}
