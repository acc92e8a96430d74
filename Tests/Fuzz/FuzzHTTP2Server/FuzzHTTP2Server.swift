import Foundation
import FuzzReplay
import Logging
import StarlingHTTP2
import StarlingIO

/// libFuzzer target for the server's connection input path: each input is written as the whole byte stream of
/// one client connection to an in-process h2c ``HTTP2Server`` (one loop, 127.0.0.1:0, started once), then the
/// client half-closes and reads until the server closes. Everything the server does with hostile bytes (the
/// preface check, nghttp2 framing, HPACK, our header/body callbacks, the router, flow control, GOAWAY) runs in
/// this process, so libFuzzer sees its coverage and a crash on the loop thread is a crash of the target.
///
/// Input format: when the first byte is odd, the client preface and an empty SETTINGS frame are sent before the
/// rest (so mutations go straight to frames); when even, the rest is sent raw (so the preface check is fuzzed).
enum HTTP2ServerFuzz {
    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]

    /// The server's port, 0 until the server is started on first use; the server lives as long as the process.
    /// Only libFuzzer's thread touches it (inputs run one at a time), hence `nonisolated(unsafe)`.
    nonisolated(unsafe) static var port: UInt16 = 0
    /// Kept so the server is never released while inputs run.
    nonisolated(unsafe) static var server: HTTP2Server?

    static func startServer() -> UInt16 {
        if port != 0 { return port }
        signal(SIGPIPE, SIG_IGN)
        var router = Router()
        router.add("GET", "/hello", .immediate { _ in .text(200, "hello") })
        router.add("GET", "/items/{id}", .immediate { request in
            .text(200, "item \(request.pathParameters["id"] ?? "?") q=\(request.query["q"] ?? "")")
        })
        router.add("POST", "/echo", .async { request in
            HTTPResponse(status: 200, headers: ["content-type": "application/octet-stream"], body: request.body)
        })
        router.add("GET", "/fail", .async { _ in throw HTTPError(409, code: "conflict", "it conflicts") })
        do {
            var configuration = HTTP2ServerConfiguration(address: try SocketAddress(parsing: "127.0.0.1:0"))
            configuration.loopCount = 1
            configuration.accessLog = false
            configuration.limits.maxRequestBodyBytes = 1 << 16
            var logger = Logger(label: "fuzz.h2")
            logger.logLevel = .critical
            let server = HTTP2Server(configuration: configuration, router: router, logger: logger)
            try server.start()
            Self.server = server
            port = server.localAddress?.port ?? 0
        } catch {
            fatalError("the fuzz server did not start: \(error)")  // setup, not input: the target cannot run
        }
        return port
    }

    /// Inputs run so far; every 256th is followed by a health check.
    nonisolated(unsafe) static var runs = 0

    /// A well-formed `GET /hello` connection (preface, SETTINGS, one HEADERS frame with end of stream).
    static let hello: [UInt8] = {
        // HPACK: :method GET (0x82), :scheme http (0x86), :path literal "/hello", :authority literal "x".
        let block: [UInt8] = [0x82, 0x86, 0x04, 0x06] + Array("/hello".utf8) + [0x01, 0x01, UInt8(ascii: "x")]
        let header: [UInt8] = [0, 0, UInt8(block.count), 0x01, 0x05, 0, 0, 0, 1]
        return [1] + header + block
    }()

    /// A PING frame sent after every input: nghttp2 answers it after the frames before it, so its ACK marks
    /// "the server has processed the input and written what it answers at once".
    static let ping: [UInt8] = [0, 0, 8, 0x06, 0, 0, 0, 0, 0] + Array("fuzzping".utf8)
    static let pingAck: [UInt8] = [0, 0, 8, 0x06, 0x01, 0, 0, 0, 0] + Array("fuzzping".utf8)

    /// Runs one input; every 256 inputs also proves the server still answers a good client (a loop wedged by an
    /// earlier input fails here, so re-run the last inputs of the crash log to find it).
    static func run(_ bytes: [UInt8]) {
        _ = exchange(bytes)
        runs += 1
        if runs % 256 == 0 {
            let answer = exchange(hello, until: Array("hello".utf8))
            precondition(answer.contains("hello".utf8), "the server stopped answering a good client after \(runs) inputs")
        }
    }

    /// Sends one connection's bytes and a PING, then reads until the PING's ACK (or `until`) arrives, the
    /// server closes, or 20 ms pass without a byte (loopback answers take microseconds); then closes. No half-close: the server closes on EOF at
    /// once, dropping answers it has not written yet (see the issue note), which would hide the output path.
    static func exchange(_ bytes: [UInt8], until marker: [UInt8]? = nil) -> [UInt8] {
        let port = startServer()
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 0, tv_usec: 20_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return [] }
        var stream = bytes.first.map { $0 & 1 == 1 ? preface : [] } ?? []
        stream.append(contentsOf: bytes.dropFirst())
        stream.append(contentsOf: ping)
        var offset = 0
        while offset < stream.count {
            let sent = stream[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent <= 0 { break }
            offset += sent
        }
        let wanted = marker ?? pingAck
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while answer.count < 1 << 20 {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            answer.append(contentsOf: buffer[0..<count])
            if answer.contains(wanted) { break }
        }
        return answer
    }
}

extension Array where Element == UInt8 {
    /// Whether `needle` occurs in the bytes.
    func contains(_ needle: some Collection<UInt8>) -> Bool {
        let needle = Array(needle)
        guard !needle.isEmpty, needle.count <= count else { return needle.isEmpty }
        for start in 0...(count - needle.count) where self[start..<start + needle.count].elementsEqual(needle) {
            return true
        }
        return false
    }
}

#if FUZZING
/// libFuzzer's driver (LLVM 11+). SwiftPM binds `main` to this module's entry point (`--defsym`) while
/// `-sanitize=fuzzer` links libFuzzer's own `main` too; `ops/fuzz` links with `--allow-multiple-definition`, and
/// whichever `main` wins ends in the driver calling ``fuzzOne(_:_:)``.
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
) -> CInt

/// Runs one fuzz input (the driver's callback, and libFuzzer's entry point should its own `main` be linked).
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    HTTP2ServerFuzz.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

/// Entry point when built with `-sanitize=fuzzer -D FUZZING` (see `ops/fuzz`): libFuzzer's command line.
@main
struct FuzzMain {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, { data, size in fuzzOne(data, size) }))
    }
}
#else
/// Without libFuzzer: replays the inputs named on the command line (``FuzzReplay``).
@main
struct ReplayHTTP2Server {
    static func main() throws { try FuzzReplay.main(HTTP2ServerFuzz.run) }
}
#endif
