import Foundation
import Logging
import StarlingHTTP2
import StarlingIO
import StarlingTLS

/// A server on 127.0.0.1:0 with the routes the transport tests use.
struct TestServer {
    let server: HTTP2Server
    let port: UInt16

    static func router() -> Router {
        var router = Router()
        router.add("GET", "/hello", .immediate { _ in .text(200, "hello") })
        router.add("GET", "/items/{id}", .immediate { request in
            .text(200, "item \(request.pathParameters["id"] ?? "?") q=\(request.query["q"] ?? "")")
        })
        router.add("POST", "/echo", .async { request in
            HTTPResponse(status: 200, headers: ["content-type": "application/octet-stream"], body: request.body)
        })
        router.add("POST", "/measure", .async { request in .text(200, measure(request.body)) })
        router.add("GET", "/big/{bytes}", .async { request in
            let count = Int(request.pathParameters["bytes"] ?? "") ?? 0
            return HTTPResponse(status: 200, headers: ["content-type": "application/octet-stream"],
                                body: (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        })
        router.add("GET", "/slow/{millis}", .async { request in
            let millis = Int(request.pathParameters["millis"] ?? "") ?? 0
            try await Task.sleep(for: .milliseconds(millis))  // the handler's own work, not synchronisation
            return .text(200, "slept \(millis)")
        })
        router.add("GET", "/fail", .async { _ in throw HTTPError(409, code: "conflict", "it conflicts") })
        return router
    }

    /// What `/measure` answers for a request body as its handler received it: length and FNV-1a hash.
    static func measure(_ body: [UInt8]) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in body { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return "\(body.count) \(String(hash, radix: 16))"
    }

    static func start(tls: TLSConfiguration? = nil, limits: HTTP2Limits = HTTP2Limits(), loops: Int = 2,
                      router: Router = TestServer.router()) throws -> TestServer {
        var configuration = HTTP2ServerConfiguration(address: try SocketAddress(parsing: "127.0.0.1:0"), tls: tls)
        configuration.loopCount = loops
        configuration.limits = limits
        configuration.accessLog = false
        var logger = Logger(label: "test.h2")
        // STARLING_TEST_LOG_LEVEL=debug shows connection-level reasons (closes, refusals) when a test fails.
        logger.logLevel = ProcessInfo.processInfo.environment["STARLING_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) } ?? .warning
        let server = HTTP2Server(configuration: configuration, router: router, logger: logger)
        try server.start()
        guard let port = server.localAddress?.port else { throw HTTP2Error(.bindFailed, "no port") }
        return TestServer(server: server, port: port)
    }

    var h2cURL: String { "http://127.0.0.1:\(port)" }
    var tlsURL: String { "https://127.0.0.1:\(port)" }

    func stop() async { await server.shutdown(gracePeriod: .seconds(5)) }
}
