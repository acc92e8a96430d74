import CShims
import Glibc

/// Non-blocking TCP socket operations on raw descriptors. The caller owns each descriptor it gets and closes
/// it with `Syscall.close` (connections do so in their `close()`).
public enum Socket {
    /// What a read returned.
    public enum ReadResult: Sendable, Equatable {
        case bytes(Int)
        case wouldBlock
        case endOfFile
    }

    /// A listening socket bound to `address`; with `reusePort` several loops may each bind the same port.
    public static func listen(on address: SocketAddress, reusePort: Bool, backlog: Int32 = 1024) throws(IOError) -> Int32 {
        let fd = try makeSocket(family: address.family)
        do {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            if reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            _ = try address.withSockAddr { sa, len throws(IOError) in try Syscall.call("bind") { bind(fd, sa, len) } }
            _ = try Syscall.call("listen") { Glibc.listen(fd, backlog) }
            return fd
        } catch {
            Syscall.close(fd)
            throw error
        }
    }

    /// Accepts one pending connection (non-blocking, close-on-exec); nil when none is pending.
    public static func accept(_ listener: Int32) throws(IOError) -> (fd: Int32, peer: SocketAddress?)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let fd = try withUnsafeMutablePointer(to: &storage) { pointer throws(IOError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(IOError) in
                try Syscall.call("accept4") {
                    starling_accept4(listener, sa, &length, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
                }
            }
        }
        guard let fd else { return nil }
        return (fd, SocketAddress(storage: storage))
    }

    /// Starts a non-blocking connect; returns the descriptor and whether it is already connected.
    /// When not, wait for writability and call `connectResult`.
    public static func connect(to address: SocketAddress) throws(IOError) -> (fd: Int32, isConnected: Bool) {
        let fd = try makeSocket(family: address.family)
        do {
            let result = try address.withSockAddr { sa, len throws(IOError) in
                try Syscall.call("connect") { Glibc.connect(fd, sa, len) }
            }
            return (fd, result != nil)
        } catch {
            Syscall.close(fd)
            throw error
        }
    }

    /// The outcome of a non-blocking connect once the socket became writable.
    public static func connectResult(_ fd: Int32) throws(IOError) {
        var err: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        _ = try Syscall.call("getsockopt") { getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &length) }
        if err != 0 { throw IOError(.syscallFailed, "connect failed", syscall: "connect", errno: err) }
    }

    /// Reads into `buffer`.
    @inline(__always)
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(IOError) -> ReadResult {
        guard let count = try Syscall.call("read", { Glibc.read(fd, buffer.baseAddress, buffer.count) }) else {
            return .wouldBlock
        }
        return count == 0 ? .endOfFile : .bytes(count)
    }

    /// Writes from `buffer`; returns the count written, nil when it would block.
    @inline(__always)
    public static func write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) throws(IOError) -> Int? {
        try Syscall.call("send") { send(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL)) }
    }

    /// The address a socket is bound to (for port 0 listeners).
    public static func localAddress(_ fd: Int32) throws(IOError) -> SocketAddress {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = try withUnsafeMutablePointer(to: &storage) { pointer throws(IOError) in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(IOError) in
                try Syscall.call("getsockname") { getsockname(fd, sa, &length) }
            }
        }
        guard let address = SocketAddress(storage: storage) else {
            throw IOError(.invalidAddress, "socket \(fd) has no IP address")
        }
        return address
    }

    /// Disables Nagle's algorithm: responses go out when written.
    public static func setNoDelay(_ fd: Int32) throws(IOError) {
        try setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
    }

    /// Closes only the write side (FIN), keeping the read side to drain.
    public static func shutdownWrite(_ fd: Int32) {
        _ = Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    private static func makeSocket(family: Int32) throws(IOError) -> Int32 {
        let type = Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue)
        guard let fd = try Syscall.call("socket", { socket(family, type, 0) }) else {
            throw IOError(.syscallFailed, "socket would block")
        }
        return fd
    }

    private static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(IOError) {
        var value = value
        _ = try Syscall.call("setsockopt") {
            setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size))
        }
    }
}
