internal import COpenSSL

/// An OpenSSL `SSL_CTX` configured for one side (server or client): certificates, trust roots,
/// protocol versions, ALPN and options. Build one per listener or per upstream, then create one
/// `TLSEngine` per connection from it, on any thread.
///
/// Ownership: this object owns one reference to the `SSL_CTX` and frees it in `deinit`. Every `SSL`
/// made by `SSL_new` holds its own reference, and every `TLSEngine` keeps its context alive, so the
/// callbacks below (which reach this object through the engine) never see a freed context.
///
/// Sendable: the `SSL_CTX` is not modified after the factory method returns, and OpenSSL documents
/// `SSL_new` and the internal session cache (guarded by OpenSSL's own lock) as safe to use from several
/// threads on one `SSL_CTX`. That is why it is `@unchecked Sendable`.
public final class TLSContext: @unchecked Sendable {
    /// Which end of the connection engines made from this context play.
    enum Role {
        case server
        case client
    }

    /// Number of sessions the server keeps for resumption; OpenSSL's default too, made explicit.
    static let sessionCacheSize = 20_480
    /// Longest certificate chain accepted from a peer (leaf + intermediates + root).
    static let maxCertificateChainDepth: Int32 = 8
    /// Session ID context for the server's session cache; OpenSSL refuses to resume sessions of
    /// verified clients without one.
    static let sessionIDContext: [UInt8] = Array("starling".utf8)

    /// The `SSL_CTX`; owned, freed in `deinit`.
    let pointer: OpaquePointer
    /// The configuration this context was built from.
    public let configuration: TLSConfiguration
    /// Server or client.
    let role: Role
    /// ALPN names in preference order, as bytes; used by the server's selection callback.
    let applicationProtocols: [[UInt8]]

    private init(pointer: OpaquePointer, configuration: TLSConfiguration, role: Role, protocols: [[UInt8]]) {
        self.pointer = pointer
        self.configuration = configuration
        self.role = role
        self.applicationProtocols = protocols
    }

    deinit {
        SSL_CTX_free(pointer)
    }

    /// A server context: loads `certificateChainPath` and `privateKeyPath` (checking that they match),
    /// trusts `trustRootsPath` for client certificates when `clientCertificateMode` is not `.none`,
    /// and refuses clients that offer none of `applicationProtocols` (or no ALPN at all).
    public static func server(_ configuration: TLSConfiguration) throws(TLSError) -> TLSContext {
        guard let chainPath = configuration.certificateChainPath, let keyPath = configuration.privateKeyPath else {
            throw TLSError(
                code: .invalidConfiguration, message: "a TLS server needs a certificate chain and a private key")
        }
        if configuration.clientCertificateMode != .none, configuration.trustRootsPath == nil {
            throw TLSError(
                code: .invalidConfiguration,
                message: "client certificate mode \(configuration.clientCertificateMode) needs trust roots")
        }
        let protocols = try encodeProtocolNames(configuration.applicationProtocols)
        OpenSSLErrorQueue.clear()
        _ = starling_openssl_init_no_atexit()
        guard let pointer = SSL_CTX_new(TLS_server_method()) else {
            throw OpenSSLErrorQueue.error(.resourceExhausted, "SSL_CTX_new failed")
        }
        let context = TLSContext(pointer: pointer, configuration: configuration, role: .server, protocols: protocols)
        try context.applyCommonSettings()
        try context.loadIdentity(chainPath: chainPath, keyPath: keyPath)
        try context.configureClientVerification()
        context.configureServerSessions()
        context.installServerCallbacks()
        return context
    }

    /// Checks the configuration's versions and cipher lists without any file: what `hub --check` can tell before
    /// the certificates are there. Throws what ``server(_:)`` would throw for them.
    public static func checkPolicy(_ configuration: TLSConfiguration) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        _ = starling_openssl_init_no_atexit()
        guard let pointer = SSL_CTX_new(TLS_server_method()) else {
            throw OpenSSLErrorQueue.error(.resourceExhausted, "SSL_CTX_new failed")
        }
        // Owned by the throwaway context, freed in its deinit.
        let context = TLSContext(pointer: pointer, configuration: configuration, role: .server, protocols: [])
        try context.applyCommonSettings()
    }

    /// A client context: offers `applicationProtocols`, verifies the server against `trustRootsPath`
    /// (or the system roots) unless `verifyServer` is false, and presents a certificate when
    /// `certificateChainPath` and `privateKeyPath` are both given.
    public static func client(_ configuration: TLSConfiguration) throws(TLSError) -> TLSContext {
        if (configuration.certificateChainPath == nil) != (configuration.privateKeyPath == nil) {
            throw TLSError(
                code: .invalidConfiguration,
                message: "a client certificate needs both a certificate chain and a private key")
        }
        let protocols = try encodeProtocolNames(configuration.applicationProtocols)
        OpenSSLErrorQueue.clear()
        _ = starling_openssl_init_no_atexit()
        guard let pointer = SSL_CTX_new(TLS_client_method()) else {
            throw OpenSSLErrorQueue.error(.resourceExhausted, "SSL_CTX_new failed")
        }
        let context = TLSContext(pointer: pointer, configuration: configuration, role: .client, protocols: protocols)
        try context.applyCommonSettings()
        if let chainPath = configuration.certificateChainPath, let keyPath = configuration.privateKeyPath {
            try context.loadIdentity(chainPath: chainPath, keyPath: keyPath)
        }
        try context.configureServerVerification()
        try context.offerProtocols(protocols)
        return context
    }

    /// Checks ALPN names (1 to 255 bytes each) and returns them as bytes, in order.
    static func encodeProtocolNames(_ names: [String]) throws(TLSError) -> [[UInt8]] {
        var encoded: [[UInt8]] = []
        for name in names {
            let bytes = Array(name.utf8)
            guard (1...255).contains(bytes.count) else {
                throw TLSError(
                    code: .invalidConfiguration, message: "ALPN protocol name '\(name)' must be 1 to 255 bytes")
            }
            encoded.append(bytes)
        }
        return encoded
    }
}
