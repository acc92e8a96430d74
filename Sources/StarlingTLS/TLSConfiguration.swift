/// Everything needed to build a `TLSContext`, for either side of a connection.
///
/// A plain value: built from the command's YAML configuration and passed down. File paths are read
/// once, when the context is created; changing the files later has no effect on that context.
public struct TLSConfiguration: Sendable, Hashable {
    /// Which certificates the server asks clients for.
    public enum ClientCertificateMode: String, Sendable, Hashable {
        /// Do not ask for a client certificate (bearer tokens authenticate clients).
        case none
        /// Ask; a client without one is accepted, a client with one that does not verify is refused.
        case optional
        /// Ask and refuse clients that send none or one that does not verify against `trustRootsPath`.
        case required
    }

    /// A TLS protocol version. Older versions than 1.2 are never offered or accepted.
    public enum Version: String, Sendable, Hashable, Comparable {
        case tls12
        case tls13

        public static func < (lhs: Self, rhs: Self) -> Bool {
            lhs == .tls12 && rhs == .tls13
        }
    }

    /// PEM file with our certificate first, then intermediates. Required for servers; for clients only
    /// when presenting a certificate (mTLS). Default: nil.
    public var certificateChainPath: String?
    /// PEM file with the private key of the first certificate in `certificateChainPath`. Default: nil.
    public var privateKeyPath: String?
    /// PEM file of CA certificates. Servers: verifies client certificates when `clientCertificateMode` is
    /// not `.none` (required then). Clients: verifies the server; nil means the system's default roots.
    public var trustRootsPath: String?
    /// Servers only: whether to ask for client certificates. Default: `.none`.
    public var clientCertificateMode: ClientCertificateMode
    /// ALPN protocol names in preference order; the server refuses clients that offer none of them.
    /// Default: `["h2"]`. Each name is 1 to 255 bytes.
    public var applicationProtocols: [String]
    /// The oldest version accepted. Default: `.tls12`.
    public var minimumVersion: Version
    /// The newest version offered; nil means the newest OpenSSL supports (1.3). Default: nil.
    /// Exists for tests and for pinning a peer to 1.2 while debugging with Wireshark.
    public var maximumVersion: Version?
    /// TLS 1.2 cipher suites, in OpenSSL's list syntax, in preference order (the server's order wins). Default
    /// ``modernTLS12Ciphers``: ECDHE with AES-GCM or ChaCha20-Poly1305 only. HTTP/2 forbids every other kind (RFC
    /// 9113 §9.2.2); a list that would allow one is refused when the context is made.
    public var tls12Ciphers: String
    /// TLS 1.3 cipher suites (OpenSSL's `-ciphersuites` syntax); nil keeps OpenSSL's (all three AEAD suites).
    public var tls13CipherSuites: String?
    /// Clients only: verify the server's certificate chain and name. Default: true. Turning it off
    /// makes the connection open to interception; only for loopback tests.
    public var verifyServer: Bool
    /// Clients only: the name (DNS name or IP address) the server's certificate must carry; also sent
    /// as SNI when it is a DNS name. `TLSEngine.init(context:serverName:)` can override it per
    /// connection. Default: nil (then each engine must be given a name when `verifyServer` is true).
    public var serverName: String?

    /// ECDHE key exchange (forward secrecy) with an AEAD cipher, ECDSA before RSA certificates, AES-128 first:
    /// Mozilla's "intermediate" TLS 1.2 list without the DHE suites.
    public static let modernTLS12Ciphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    public init(
        certificateChainPath: String? = nil,
        privateKeyPath: String? = nil,
        trustRootsPath: String? = nil,
        clientCertificateMode: ClientCertificateMode = .none,
        applicationProtocols: [String] = ["h2"],
        minimumVersion: Version = .tls12,
        maximumVersion: Version? = nil,
        verifyServer: Bool = true,
        serverName: String? = nil,
        tls12Ciphers: String = TLSConfiguration.modernTLS12Ciphers,
        tls13CipherSuites: String? = nil
    ) {
        self.tls12Ciphers = tls12Ciphers
        self.tls13CipherSuites = tls13CipherSuites
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.trustRootsPath = trustRootsPath
        self.clientCertificateMode = clientCertificateMode
        self.applicationProtocols = applicationProtocols
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.verifyServer = verifyServer
        self.serverName = serverName
    }

    /// A server configuration: our chain and key, optionally verifying client certificates.
    public static func server(
        certificateChainPath: String,
        privateKeyPath: String,
        trustRootsPath: String? = nil,
        clientCertificateMode: ClientCertificateMode = .none
    ) -> TLSConfiguration {
        TLSConfiguration(
            certificateChainPath: certificateChainPath,
            privateKeyPath: privateKeyPath,
            trustRootsPath: trustRootsPath,
            clientCertificateMode: clientCertificateMode
        )
    }

    /// A client configuration verifying the server against `trustRootsPath` (nil: system roots).
    public static func client(
        trustRootsPath: String? = nil,
        serverName: String? = nil,
        certificateChainPath: String? = nil,
        privateKeyPath: String? = nil
    ) -> TLSConfiguration {
        TLSConfiguration(
            certificateChainPath: certificateChainPath,
            privateKeyPath: privateKeyPath,
            trustRootsPath: trustRootsPath,
            serverName: serverName
        )
    }
}
