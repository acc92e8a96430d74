/// The one error type of StarlingTLS: what failed (`code`), a sentence for humans (`message`), the file
/// involved when loading keys or certificates (`path`), and the OpenSSL error queue drained at the failure.
///
/// Codes are an open set of static constants so that new ones can be added without breaking `switch`es
/// in other modules; compare with `==`.
public struct TLSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is; extensible, compare with `==`.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// A stable, log-friendly name such as `handshake_failed`.
        public let rawValue: String

        init(_ rawValue: String) {
            self.rawValue = rawValue
        }

        public var description: String { rawValue }

        /// The configuration is incomplete or contradictory (for example a server without a key).
        public static let invalidConfiguration = Code("invalid_configuration")
        /// A certificate chain or trust roots file could not be read or parsed.
        public static let certificateLoad = Code("certificate_load")
        /// A private key file could not be read or parsed.
        public static let privateKeyLoad = Code("private_key_load")
        /// The private key does not belong to the certificate.
        public static let keyMismatch = Code("key_mismatch")
        /// OpenSSL could not create a context, connection or buffer (allocation failure).
        public static let resourceExhausted = Code("resource_exhausted")
        /// The handshake failed for a reason not covered by a more specific code.
        public static let handshakeFailed = Code("handshake_failed")
        /// No common application protocol (ALPN): we refused the peer or the peer refused us.
        public static let alpnRefused = Code("alpn_refused")
        /// A certificate did not verify: ours was rejected by the peer or the peer's was rejected by us.
        public static let verificationFailed = Code("verification_failed")
        /// The server requires a client certificate and the client sent none.
        public static let peerCertificateMissing = Code("peer_certificate_missing")
        /// The peer violated the TLS protocol after the handshake (bad record, bad MAC, garbage).
        public static let protocolError = Code("protocol_error")
        /// The connection was already closed by close_notify when data was written.
        public static let closed = Code("closed")
        /// The random number generator failed.
        public static let randomFailure = Code("random_failure")
    }

    /// What kind of failure this is.
    public var code: Code
    /// One sentence saying what failed, naming files or names involved.
    public var message: String
    /// The file involved (certificate, key or trust roots), if any.
    public var path: String?
    /// The OpenSSL error queue at the time of failure, oldest first, as `ERR_error_string_n` text.
    public var openSSLErrors: [String]

    public init(code: Code, message: String, path: String? = nil, openSSLErrors: [String] = []) {
        self.code = code
        self.message = message
        self.path = path
        self.openSSLErrors = openSSLErrors
    }

    public var description: String {
        var text = "TLSError(\(code)): \(message)"
        if let path {
            text += " [path: \(path)]"
        }
        if !openSSLErrors.isEmpty {
            text += " [openssl: \(openSSLErrors.joined(separator: "; "))]"
        }
        return text
    }
}
