public import StarlingIO
public import StarlingTLS
public import Logging

/// Everything an HTTP/2 server needs to start.
public struct HTTP2ServerConfiguration: Sendable {
    /// Where to listen. Default 127.0.0.1:8443.
    public var address: SocketAddress
    /// TLS (ALPN h2). nil: cleartext h2c with prior knowledge, refused on a non-loopback address unless
    /// `allowInsecure` is set.
    public var tls: TLSConfiguration?
    /// Permits h2c on a non-loopback address. Default false.
    public var allowInsecure: Bool = false
    /// Event loops (threads). Default: one per CPU.
    public var loopCount: Int = EventLoopGroup.defaultLoopCount
    public var limits = HTTP2Limits()
    /// Log one info line per request. Default true.
    public var accessLog: Bool = true

    public init(address: SocketAddress, tls: TLSConfiguration? = nil) {
        self.address = address
        self.tls = tls
    }
}
