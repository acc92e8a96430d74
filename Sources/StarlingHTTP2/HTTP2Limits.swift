/// Limits and timeouts of HTTP/2 connections: every resource a peer can make us spend has a bound here.
public struct HTTP2Limits: Sendable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS advertised to clients. Default 128.
    public var maxConcurrentStreams: UInt32 = 128
    /// Largest decoded header list of one request (names + values + 32 per field); beyond it: 431. Default 16 KiB.
    public var maxHeaderListBytes: Int = 16 * 1024
    /// Largest request body after gzip decoding; beyond it: 413. Default 64 MiB.
    public var maxRequestBodyBytes: Int = 64 << 20
    /// Output queued per connection before the server stops reading from it. Default 4 MiB.
    public var maxOutboundBytes: Int = 4 << 20
    /// Per-stream flow-control window advertised to peers. Default 1 MiB.
    public var initialWindowBytes: UInt32 = 1 << 20
    /// Connection flow-control window. Default 16 MiB.
    public var connectionWindowBytes: Int32 = 16 << 20
    /// TLS handshake plus client preface must complete within this. Default 10 s.
    public var handshakeTimeout: Duration = .seconds(10)
    /// A connection with no open stream for this long gets GOAWAY and is closed. Default 120 s.
    public var idleTimeout: Duration = .seconds(120)
    /// A request must arrive completely (headers and body) within this; else 408. Default 60 s.
    public var requestTimeout: Duration = .seconds(60)
    /// Client RST_STREAMs tolerated per second (rapid reset, CVE-2023-44487) before GOAWAY. Default 200.
    public var maxClientResetsPerSecond: Int = 200
    /// SETTINGS + PING frames tolerated per second before GOAWAY. Default 200.
    public var maxControlFramesPerSecond: Int = 200
    /// Streams we refuse (oversized headers, bad requests) per connection before GOAWAY. Default 100.
    public var maxRefusedStreams: Int = 100
    /// Open connections per server; further ones are closed at accept. Default 10 000.
    public var maxConnections: Int = 10_000
    /// Responses at least this large are gzip-encoded when the client accepts gzip. Default 1 KiB.
    public var gzipMinimumBytes: Int = 1024

    public init() {}
}
