import ArgumentParser
import Logging
import StarlingHTTP2
import StarlingIO
import StarlingTLS

/// `starling bench-server`: the transport alone, for ops/bench/http2. Serves what nghttpd serves in the peer
/// benchmark: a 100-byte body for GET /small.txt, and the same body after reading a POSTed body.
struct BenchServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-server", abstract: "Serve a 100-byte file over HTTP/2 (benchmark target).",
        shouldDisplay: false)

    @Option(help: "Address to listen on.") var listen = "127.0.0.1:0"
    @Option(help: "Certificate chain (PEM); with --key enables TLS.") var cert: String?
    @Option(help: "Private key (PEM).") var key: String?
    @Option(help: "Event loops.") var loops = EventLoopGroup.defaultLoopCount
    @Flag(help: "Run POST handlers as async tasks instead of on the loop.") var asyncHandlers = false

    func run() async throws {
        let small = [UInt8](repeating: UInt8(ascii: "a"), count: 100)
        var router = Router()
        router.add("GET", "/small.txt", .immediate { _ in HTTPResponse(status: 200, body: small) })
        if asyncHandlers {
            router.add("POST", "/small.txt", .async { _ in HTTPResponse(status: 200, body: small) })
        } else {
            router.add("POST", "/small.txt", .immediate { _ in HTTPResponse(status: 200, body: small) })
        }
        var configuration = HTTP2ServerConfiguration(address: try SocketAddress(parsing: listen))
        if let cert, let key {
            configuration.tls = .server(certificateChainPath: cert, privateKeyPath: key)
        }
        configuration.loopCount = loops
        configuration.accessLog = false
        var logger = Logger(label: "starling.bench")
        logger.logLevel = .warning
        let server = HTTP2Server(configuration: configuration, router: router, logger: logger)
        let stopper = try ShutdownOnSignal.install { await server.shutdown(gracePeriod: .seconds(2)) }
        try server.start()
        Console.out("listening \(server.localAddress?.description ?? "?")\n")
        await server.waitUntilStopped()
        stopper.close()
    }
}
