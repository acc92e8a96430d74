import CShims
import Glibc

/// An IPv4 or IPv6 socket address (host and port), parsed from `host:port` or `[v6]:port`.
public struct SocketAddress: Sendable, Hashable, CustomStringConvertible {
    public enum Storage: Sendable, Hashable {
        case v4(address: UInt32, port: UInt16)   // both in host byte order
        case v6(address: [UInt8], port: UInt16)  // 16 bytes
    }

    public let storage: Storage

    public init(_ storage: Storage) { self.storage = storage }

    /// Parses a numeric address: `127.0.0.1:8443`, `[::1]:8443`. Host names are not resolved here.
    public init(parsing text: String) throws(IOError) {
        let host: String
        let portText: String
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw IOError(.invalidAddress, "'\(text)' is not [ipv6]:port")
            }
            host = String(text[text.index(after: text.startIndex)..<close])
            portText = String(text[text.index(close, offsetBy: 2)...])
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw IOError(.invalidAddress, "'\(text)' has no port (expected host:port)")
            }
            host = String(text[..<colon])
            portText = String(text[text.index(after: colon)...])
        }
        guard let port = UInt16(portText) else {
            throw IOError(.invalidAddress, "'\(portText)' in '\(text)' is not a port number (0-65535)")
        }
        try self.init(host: host, port: port)
    }

    /// A numeric IPv4 or IPv6 host and a port.
    public init(host: String, port: UInt16) throws(IOError) {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            storage = .v4(address: UInt32(bigEndian: v4.s_addr), port: port)
            return
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 {
            let bytes = withUnsafeBytes(of: &v6) { Array($0) }
            storage = .v6(address: bytes, port: port)
            return
        }
        throw IOError(.invalidAddress, "'\(host)' is not a numeric IPv4 or IPv6 address")
    }

    public var port: UInt16 {
        switch storage {
        case .v4(_, let port), .v6(_, let port): return port
        }
    }

    /// The same host with another port.
    public func withPort(_ port: UInt16) -> SocketAddress {
        switch storage {
        case .v4(let address, _): return SocketAddress(.v4(address: address, port: port))
        case .v6(let address, _): return SocketAddress(.v6(address: address, port: port))
        }
    }

    /// True for 127.0.0.0/8 and ::1.
    public var isLoopback: Bool {
        switch storage {
        case .v4(let address, _): return address >> 24 == 127
        case .v6(let address, _): return address == Array(repeating: 0, count: 15) + [1]
        }
    }

    public var family: Int32 {
        switch storage {
        case .v4: return AF_INET
        case .v6: return AF_INET6
        }
    }

    /// The host part as text (`127.0.0.1`, `::1`).
    public var host: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch storage {
        case .v4(let address, _):
            var raw = in_addr(s_addr: address.bigEndian)
            inet_ntop(AF_INET, &raw, &buffer, socklen_t(buffer.count))
        case .v6(let address, _):
            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { $0.copyBytes(from: address) }
            inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
        }
        return String(cString: buffer)
    }

    public var description: String {
        switch storage {
        case .v4: return "\(host):\(port)"
        case .v6: return "[\(host)]:\(port)"
        }
    }

    /// Calls `body` with a C `sockaddr` for this address.
    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws(IOError) -> R) throws(IOError) -> R {
        switch storage {
        case .v4(let address, let port):
            var raw = sockaddr_in()
            raw.sin_family = sa_family_t(AF_INET)
            raw.sin_port = port.bigEndian
            raw.sin_addr = in_addr(s_addr: address.bigEndian)
            return try withUnsafePointer(to: &raw) { pointer throws(IOError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(IOError) in
                    try body(sa, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        case .v6(let address, let port):
            var raw = sockaddr_in6()
            raw.sin6_family = sa_family_t(AF_INET6)
            raw.sin6_port = port.bigEndian
            withUnsafeMutableBytes(of: &raw.sin6_addr) { $0.copyBytes(from: address) }
            return try withUnsafePointer(to: &raw) { pointer throws(IOError) in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa throws(IOError) in
                    try body(sa, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
    }

    /// Decodes a C `sockaddr_storage` (from accept/getsockname).
    init?(storage raw: sockaddr_storage) {
        var copy = raw
        switch Int32(raw.ss_family) {
        case AF_INET:
            let sin = withUnsafeBytes(of: &copy) { $0.load(as: sockaddr_in.self) }
            storage = .v4(address: UInt32(bigEndian: sin.sin_addr.s_addr), port: UInt16(bigEndian: sin.sin_port))
        case AF_INET6:
            let sin6 = withUnsafeBytes(of: &copy) { $0.load(as: sockaddr_in6.self) }
            var addr = sin6.sin6_addr
            let bytes = withUnsafeBytes(of: &addr) { Array($0) }
            storage = .v6(address: bytes, port: UInt16(bigEndian: sin6.sin6_port))
        default:
            return nil
        }
    }
}
