/// An operating error of the HTTP/2 layer (server start-up, client requests, gzip).
public struct HTTP2Error: Error, Sendable, CustomStringConvertible {
    /// Extensible failure kind; compare with the static constants.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let invalidConfiguration = Code("invalid_configuration")
        public static let bindFailed = Code("bind_failed")
        public static let connectFailed = Code("connect_failed")
        public static let tlsFailed = Code("tls_failed")
        public static let protocolError = Code("protocol_error")
        public static let connectionClosed = Code("connection_closed")
        public static let streamReset = Code("stream_reset")
        public static let timedOut = Code("timed_out")
        public static let bodyTooLarge = Code("body_too_large")
        public static let compression = Code("compression")
        public static let shutDown = Code("shut_down")
        public static let invalidURL = Code("invalid_url")
    }

    public var code: Code
    public var message: String
    /// nghttp2's error code (negative library error or HTTP/2 error code), when there is one.
    public var nghttp2Code: Int32?

    public init(_ code: Code, _ message: String, nghttp2Code: Int32? = nil) {
        self.code = code
        self.message = message
        self.nghttp2Code = nghttp2Code
    }

    public var description: String {
        if let nghttp2Code { return "\(code): \(message) (nghttp2 \(nghttp2Code))" }
        return "\(code): \(message)"
    }
}
