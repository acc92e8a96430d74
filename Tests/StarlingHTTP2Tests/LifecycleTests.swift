import Glibc
import Logging
import StarlingHTTP2
import StarlingIO
import StarlingTestSupport
import Testing

@Suite("server lifecycle: timeouts, start-up refusals, signals", .timeLimit(.minutes(2)))
struct LifecycleTests {
    @Test("cleartext h2c on a non-loopback address is refused unless the insecure flag is set")
    func insecureRefused() throws {
        let configuration = HTTP2ServerConfiguration(address: try SocketAddress(parsing: "0.0.0.0:0"))
        let server = HTTP2Server(configuration: configuration, router: Router(), logger: Logger(label: "t"))
        #expect { try server.start() } throws: { ($0 as? HTTP2Error)?.code == .invalidConfiguration }
    }

    @Test("a connection that never sends the preface is closed after the handshake timeout")
    func handshakeTimeout() async throws {
        var limits = HTTP2Limits()
        limits.handshakeTimeout = .milliseconds(500)
        let server = try TestServer.start(limits: limits)
        let (fd, _) = try Socket.connect(to: try SocketAddress(parsing: "127.0.0.1:\(server.port)"))
        defer { Syscall.close(fd) }
        try await waitUntil("the handshake timeout fired") { server.server.counters.snapshot().timeouts >= 1 }
        // The server closed its end: a read now sees EOF (after any SETTINGS bytes the server sent).
        var sawEOF = false
        for _ in 0..<500 where !sawEOF {
            var buffer = [UInt8](repeating: 0, count: 256)
            let result = try buffer.withUnsafeMutableBytes { try Socket.read(fd, into: $0) }
            if result == .endOfFile { sawEOF = true } else if result == .wouldBlock { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(sawEOF)
        await server.stop()
    }

    @Test("a request whose body never arrives is answered 408 at the request timeout; the connection stays")
    func requestTimeout() async throws {
        var limits = HTTP2Limits()
        limits.requestTimeout = .milliseconds(200)
        let server = try TestServer.start(limits: limits, loops: 1)
        let (fd, _) = try Socket.connect(to: try SocketAddress(parsing: "127.0.0.1:\(server.port)"))
        defer { Syscall.close(fd) }
        // Preface, empty SETTINGS, then HEADERS for `POST /echo` with END_HEADERS but not END_STREAM: the body
        // never comes. HPACK: :method POST (0x83), :scheme http (0x86), :path "/echo", :authority "x".
        let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]
        let block: [UInt8] = [0x83, 0x86, 0x04, 0x05] + Array("/echo".utf8) + [0x01, 0x01, UInt8(ascii: "x")]
        let bytes = preface + [0, 0, UInt8(block.count), 0x01, 0x04, 0, 0, 0, 1] + block
        try await waitUntil("the request is written") {
            try bytes.withUnsafeBytes { try Socket.write(fd, $0) } == bytes.count
        }
        // The sweep counts the timeout before it answers 408 on the loop thread: wait for both (reading the
        // counters right after the timeout alone raced the answer under ThreadSanitizer in CI).
        try await waitUntil("the request timed out and was answered") {
            let counters = server.server.counters.snapshot()
            return counters.timeouts >= 1 && counters.responsesByClass[4] >= 1
        }
        let counters = server.server.counters.snapshot()
        #expect(counters.responsesByClass[4] == 1 && counters.requests == 1)
        #expect(counters.connectionsOpen == 1)
        await server.stop()
    }

    @Test("an idle connection gets GOAWAY after the idle timeout; the client transparently reconnects")
    func idleTimeout() async throws {
        var limits = HTTP2Limits()
        limits.idleTimeout = .milliseconds(300)
        let server = try TestServer.start(limits: limits)
        let client = try HTTP2Client(configuration: HTTP2ClientConfiguration(baseURL: server.h2cURL))
        #expect(try await client.send(HTTPClientRequest(method: "GET", path: "/hello")).status == 200)
        try await waitUntil("the idle connection is closed") { server.server.counters.snapshot().connectionsOpen == 0 }
        #expect(try await client.send(HTTPClientRequest(method: "GET", path: "/hello")).status == 200)
        #expect(server.server.counters.snapshot().connectionsAccepted == 2)
        client.shutdown()
        await server.stop()
    }

    @Test("SIGTERM stops the real binary gracefully: it exits 0 after serving")
    func sigterm() async throws {
        let binary = try StarlingBinary.path()
        let process = try ChildProcess.launch(binary, ["bench-server", "--listen", "127.0.0.1:0", "--loops", "1"])
        let line = try await process.waitForOutputLine(containing: "listening")
        let port = try #require(line.split(separator: ":").last.map(String.init))
        let result = try await ProcessRunner.run("curl", ["-sS", "--http2-prior-knowledge", "http://127.0.0.1:\(port)/small.txt"])
        #expect(result.stdout.count == 100, "\(result.transcript)")
        process.signal(SIGTERM)
        let status = try await process.waitForExit(timeout: .seconds(10))
        #expect(status == 0, "\(process.output)")
    }
}
