import Foundation
import Glibc
import StarlingTestSupport
import Testing

/// The fault proxy forwards faithfully when healthy and really injects each fault it offers.
@Suite(.timeLimit(.minutes(3)))
struct FaultProxyTests {
    /// Bytes written through a healthy proxy come back from an echo server unchanged, both ways.
    @Test func forwardsBothWays() async throws {
        try await withEcho { proxy in
            let client = try TestSocket(port: proxy.port)
            let message = Array("hello through the proxy".utf8)
            client.send(message)
            #expect(client.receive(count: message.count) == message)
        }
    }

    /// With `truncateAfterBytes`, a connection closes after exactly that many forwarded bytes.
    @Test func truncatesMidStream() async throws {
        try await withEcho { proxy in
            proxy.faults.truncateAfterBytes = 10
            let client = try TestSocket(port: proxy.port)
            client.send(Array(repeating: 0x61, count: 100))
            let received = client.receive(count: 100)
            #expect(received.count <= 10)
            #expect(client.isClosed)
            try await waitUntil("the proxy counted the truncation") { proxy.counters.truncated == 1 }
        }
    }

    /// `cutAll` closes open connections; a new connection afterwards works.
    @Test func cutsOpenConnections() async throws {
        try await withEcho { proxy in
            let first = try TestSocket(port: proxy.port)
            first.send([1, 2, 3])
            #expect(first.receive(count: 3) == [1, 2, 3])
            proxy.cutAll()
            #expect(first.receive(count: 1).isEmpty && first.isClosed)
            let second = try TestSocket(port: proxy.port)
            second.send([4])
            #expect(second.receive(count: 1) == [4])
        }
    }

    /// While refusing, new connections are closed at once; after `heal` they work again.
    @Test func refusesThenHeals() async throws {
        try await withEcho { proxy in
            proxy.faults.isRefusing = true
            let refused = try TestSocket(port: proxy.port)
            refused.send([1])
            #expect(refused.receive(count: 1).isEmpty)
            #expect(proxy.counters.refused == 1)
            proxy.heal()
            let accepted = try TestSocket(port: proxy.port)
            accepted.send([2])
            #expect(accepted.receive(count: 1) == [2])
        }
    }

    /// A delay adds at least that much to a round trip (once per direction).
    @Test func delaysEveryChunk() async throws {
        try await withEcho { proxy in
            proxy.faults.delay = .milliseconds(150)
            let client = try TestSocket(port: proxy.port)
            let start = ContinuousClock.now
            client.send([7])
            #expect(client.receive(count: 1) == [7])
            #expect(ContinuousClock.now - start >= .milliseconds(300))
        }
    }

    /// A proxy in front of an echo server (a thread per connection), both stopped afterwards.
    private func withEcho(_ body: (FaultProxy) async throws -> Void) async throws {
        let echo = try EchoServer()
        let proxy = try FaultProxy(upstreamPort: echo.port)
        do {
            try await body(proxy)
        } catch {
            await proxy.stop()
            echo.stop()
            throw error
        }
        await proxy.stop()
        echo.stop()
    }
}

/// A blocking loopback client socket with a 5 s receive timeout; closed at deinit.
private final class TestSocket {
    let fd: Int32
    private(set) var isClosed = false

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else { throw E2EError("connect to \(port) failed: errno \(errno)") }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// Up to `count` bytes; fewer when the peer closes (then `isClosed`) or the timeout passes.
    func receive(count: Int) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: max(count, 1))
        while received.count < count {
            let n = read(fd, &buffer, count - received.count)
            if n <= 0 {
                if n == 0 || errno == ECONNRESET { isClosed = true }
                break
            }
            received += buffer[0..<n]
        }
        return received
    }
}

/// An echo server on 127.0.0.1:0: one thread accepting, one per connection echoing until EOF.
private final class EchoServer: @unchecked Sendable {  // `listener` is set once in init; shutdown ends accept.
    let port: Int
    private let listener: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        listener = fd
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard ok else { throw E2EError("echo server setup failed: errno \(errno)") }
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread {
            while true {
                let connection = accept(fd, nil, nil)
                if connection < 0 { return }
                Thread {
                    var buffer = [UInt8](repeating: 0, count: 4096)
                    while true {
                        let n = read(connection, &buffer, buffer.count)
                        if n <= 0 { break }
                        _ = buffer.withUnsafeBytes { Glibc.send(connection, $0.baseAddress, n, Int32(MSG_NOSIGNAL)) }
                    }
                    close(connection)
                }.start()
            }
        }.start()
    }

    /// Stops accepting (the accept thread returns on the shut-down listener).
    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}
