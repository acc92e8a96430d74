import StarlingIO
public import StarlingTLS

/// Where and how an `HTTP2Client` connects.
public struct HTTP2ClientConfiguration: Sendable {
    /// `https://host:port` (TLS, ALPN h2) or `http://host:port` (h2c prior knowledge). No path.
    public var baseURL: String
    /// TLS settings for https: the CA file to verify the hub against, optional client certificate (mTLS).
    /// Default: verify against the system's defaults is not offered — a CA file is required for https.
    public var tls: TLSConfiguration?
    /// Connecting plus the TLS handshake. Default 10 s.
    public var connectTimeout: Duration = .seconds(10)
    /// Per request unless the request sets its own. Default 30 s.
    public var requestTimeout: Duration = .seconds(30)
    /// Largest response body accepted (after gzip decoding). Default 256 MiB.
    public var maxResponseBodyBytes: Int = 256 << 20
    /// Request bodies at least this large are sent gzip-encoded; nil never. Default 1 KiB.
    public var gzipRequestsFromBytes: Int? = 1024
    /// Whether requests say `accept-encoding: gzip` (the server may then compress large responses). Default true.
    public var acceptsGzip = true
    /// Headers sent with every request (e.g. authorization).
    public var defaultHeaders = HTTPHeaders()

    public init(baseURL: String, tls: TLSConfiguration? = nil) {
        self.baseURL = baseURL
        self.tls = tls
    }
}

extension HTTP2ClientConfiguration {
    /// Whether `baseURL`'s host, as the client reads it, is `localhost` or a loopback address (127.0.0.0/8, ::1);
    /// false for a URL the client refuses.
    public var isLoopback: Bool {
        guard let url = try? ParsedURL(baseURL) else { return false }
        if url.host.lowercased() == "localhost" { return true }
        return (try? SocketAddress(host: url.host, port: url.port))?.isLoopback ?? false
    }
}

/// A request sent by `HTTP2Client`.
public struct HTTPClientRequest: Sendable {
    public var method: String
    /// Path and query: `/v1/changes?after=10`.
    public var path: String
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Overrides the client's request timeout.
    public var timeout: Duration?

    public init(method: String, path: String, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = [],
                timeout: Duration? = nil) {
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// scheme://host:port parsed from a base URL.
struct ParsedURL: Sendable {
    var isTLS: Bool
    var host: String
    var port: UInt16

    init(_ text: String) throws(HTTP2Error) {
        let rest: Substring
        if text.hasPrefix("https://") {
            isTLS = true
            rest = text.dropFirst(8)
        } else if text.hasPrefix("http://") {
            isTLS = false
            rest = text.dropFirst(7)
        } else {
            throw HTTP2Error(.invalidURL, "'\(text)' must start with https:// or http://")
        }
        var authority = rest
        while authority.hasSuffix("/") { authority = authority.dropLast() }
        guard !authority.contains("/") else { throw HTTP2Error(.invalidURL, "'\(text)' must not have a path") }
        let hostPart: Substring
        let portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw HTTP2Error(.invalidURL, "'\(text)': unclosed [") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            portPart = after.hasPrefix(":") ? after.dropFirst() : nil
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        } else {
            hostPart = authority
            portPart = nil
        }
        guard !hostPart.isEmpty else { throw HTTP2Error(.invalidURL, "'\(text)' has no host") }
        host = String(hostPart)
        if let portPart {
            guard let port = UInt16(portPart), port > 0 else { throw HTTP2Error(.invalidURL, "'\(text)': bad port") }
            self.port = port
        } else {
            port = isTLS ? 443 : 80
        }
    }

    var authority: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
