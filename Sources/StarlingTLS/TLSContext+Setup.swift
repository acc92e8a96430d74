internal import COpenSSL

/// The steps of building an `SSL_CTX`, each failing with a `TLSError` naming the file involved.
/// Called only from the factory methods, before the context is shared.
extension TLSContext {
    /// Versions, options and modes shared by both roles.
    func applyCommonSettings() throws(TLSError) {
        OpenSSLErrorQueue.clear()
        let minimum = Self.openSSLVersion(configuration.minimumVersion)
        guard starling_openssl_ctx_set_min_proto(pointer, minimum) == 1 else {
            throw OpenSSLErrorQueue.error(.invalidConfiguration, "cannot set minimum TLS version")
        }
        if let maximumVersion = configuration.maximumVersion {
            guard maximumVersion >= configuration.minimumVersion else {
                throw TLSError(code: .invalidConfiguration, message: "maximum TLS version is below the minimum")
            }
            guard starling_openssl_ctx_set_max_proto(pointer, Self.openSSLVersion(maximumVersion)) == 1 else {
                throw OpenSSLErrorQueue.error(.invalidConfiguration, "cannot set maximum TLS version")
            }
        }
        try applyCipherPolicy()
        // Renegotiation is a DoS and attack surface HTTP/2 forbids anyway (RFC 9113 §9.2.1);
        // compression leaks secrets (CRIME).
        _ = starling_openssl_ctx_set_options(
            pointer, starling_openssl_op_no_renegotiation() | starling_openssl_op_no_compression())
        // Memory BIOs never block, but a write may still be retried after WANT_READ during a handshake:
        // allow the retry from a different buffer address and report records as they are written.
        _ = starling_openssl_ctx_set_mode(pointer, starling_openssl_mode_partial_write())
        // Encrypted key files must fail to load, never prompt on the terminal of a server.
        SSL_CTX_set_default_passwd_cb(pointer, refusePassphrase)
    }

    /// Loads our certificate chain and private key and checks they belong together.
    func loadIdentity(chainPath: String, keyPath: String) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard SSL_CTX_use_certificate_chain_file(pointer, chainPath) == 1 else {
            throw OpenSSLErrorQueue.error(
                .certificateLoad, "cannot load certificate chain from \(chainPath)", path: chainPath)
        }
        let mismatch = TLSError.Code.keyMismatch
        let mismatchMessage = "private key \(keyPath) does not match the certificate in \(chainPath)"
        guard SSL_CTX_use_PrivateKey_file(pointer, keyPath, SSL_FILETYPE_PEM) == 1 else {
            let snapshot = OpenSSLErrorQueue.drain()
            let isMismatch =
                snapshot.contains(library: ERR_LIB_X509, reason: X509_R_KEY_VALUES_MISMATCH)
                || snapshot.contains(library: ERR_LIB_X509, reason: X509_R_KEY_TYPE_MISMATCH)
            throw TLSError(
                code: isMismatch ? mismatch : .privateKeyLoad,
                message: isMismatch ? mismatchMessage : "cannot load private key from \(keyPath)",
                path: keyPath, openSSLErrors: snapshot.messages)
        }
        guard SSL_CTX_check_private_key(pointer) == 1 else {
            throw OpenSSLErrorQueue.error(mismatch, mismatchMessage, path: keyPath)
        }
    }

    /// Server: asks for client certificates and trusts `trustRootsPath` for them, per the mode.
    func configureClientVerification() throws(TLSError) {
        guard configuration.clientCertificateMode != .none, let rootsPath = configuration.trustRootsPath else {
            SSL_CTX_set_verify(pointer, SSL_VERIFY_NONE, nil)
            return
        }
        try loadTrustRoots(rootsPath)
        // Tell clients which CAs we accept, so that one holding several certificates picks the right one.
        // SSL_CTX_set_client_CA_list takes ownership of the list.
        if let names = SSL_load_client_CA_file(rootsPath) {
            SSL_CTX_set_client_CA_list(pointer, names)
        }
        var mode = SSL_VERIFY_PEER
        if configuration.clientCertificateMode == .required {
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT
        }
        SSL_CTX_set_verify(pointer, mode, nil)
        SSL_CTX_set_verify_depth(pointer, Self.maxCertificateChainDepth)
    }

    /// Client: verifies the server's chain against `trustRootsPath` or the system roots.
    /// Name checks are per connection (`TLSEngine`), since one context may serve several names.
    func configureServerVerification() throws(TLSError) {
        guard configuration.verifyServer else {
            SSL_CTX_set_verify(pointer, SSL_VERIFY_NONE, nil)
            return
        }
        if let rootsPath = configuration.trustRootsPath {
            try loadTrustRoots(rootsPath)
        } else {
            OpenSSLErrorQueue.clear()
            guard SSL_CTX_set_default_verify_paths(pointer) == 1 else {
                throw OpenSSLErrorQueue.error(.certificateLoad, "cannot load the system's trust roots")
            }
        }
        SSL_CTX_set_verify(pointer, SSL_VERIFY_PEER, nil)
        SSL_CTX_set_verify_depth(pointer, Self.maxCertificateChainDepth)
    }

    /// The configured suites; a TLS 1.2 list allowing a suite HTTP/2 forbids is refused, naming the suite.
    private func applyCipherPolicy() throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard SSL_CTX_set_cipher_list(pointer, configuration.tls12Ciphers) == 1 else {
            throw OpenSSLErrorQueue.error(
                .invalidConfiguration, "no usable TLS 1.2 cipher in \"\(configuration.tls12Ciphers)\"")
        }
        var first: UnsafePointer<CChar>?
        let forbidden = starling_openssl_ctx_forbidden_h2_ciphers(pointer, &first)
        guard forbidden == 0 else {
            let name = first.map { String(cString: $0) } ?? "?"
            throw TLSError(
                code: .invalidConfiguration,
                message: "the TLS 1.2 cipher list allows \(forbidden) suite(s) HTTP/2 forbids, first \(name) "
                    + "(RFC 9113 §9.2.2: ECDHE or DHE key exchange with an AEAD cipher only)")
        }
        if let suites = configuration.tls13CipherSuites {
            guard SSL_CTX_set_ciphersuites(pointer, suites) == 1 else {
                throw OpenSSLErrorQueue.error(.invalidConfiguration, "no usable TLS 1.3 cipher suite in \"\(suites)\"")
            }
        }
        _ = starling_openssl_ctx_set_options(pointer, starling_openssl_op_cipher_server_preference())
    }

    /// Server: an explicit session cache size and the session ID context resumption needs.
    func configureServerSessions() {
        _ = starling_openssl_ctx_set_session_cache_server(pointer, Self.sessionCacheSize)
        Self.sessionIDContext.withUnsafeBufferPointer { bytes in
            _ = SSL_CTX_set_session_id_context(pointer, bytes.baseAddress, UInt32(bytes.count))
        }
    }

    /// Server: refuse clients without ALPN (client hello callback) and pick our protocol (ALPN callback).
    /// Both are plain functions without captures; they reach the engine through the `SSL`'s app data.
    func installServerCallbacks() {
        guard !applicationProtocols.isEmpty else {
            return
        }
        SSL_CTX_set_client_hello_cb(pointer, requireALPNExtension, nil)
        SSL_CTX_set_alpn_select_cb(pointer, selectApplicationProtocol, nil)
    }

    /// Client: the ALPN list in wire format (length-prefixed names).
    func offerProtocols(_ protocols: [[UInt8]]) throws(TLSError) {
        guard !protocols.isEmpty else {
            return
        }
        let wire = protocols.flatMap { [UInt8($0.count)] + $0 }
        OpenSSLErrorQueue.clear()
        // Unusually, 0 means success here.
        let status = wire.withUnsafeBufferPointer { SSL_CTX_set_alpn_protos(pointer, $0.baseAddress, UInt32($0.count)) }
        guard status == 0 else {
            throw OpenSSLErrorQueue.error(.resourceExhausted, "cannot set the ALPN protocol list")
        }
    }

    /// Loads a PEM file of CA certificates as trust roots.
    private func loadTrustRoots(_ path: String) throws(TLSError) {
        OpenSSLErrorQueue.clear()
        guard SSL_CTX_load_verify_locations(pointer, path, nil) == 1 else {
            throw OpenSSLErrorQueue.error(.certificateLoad, "cannot load trust roots from \(path)", path: path)
        }
    }

    /// OpenSSL's constant for a version.
    static func openSSLVersion(_ version: TLSConfiguration.Version) -> Int32 {
        switch version {
        case .tls12: TLS1_2_VERSION
        case .tls13: TLS1_3_VERSION
        }
    }
}

/// Passphrase callback: always "no passphrase", so an encrypted key fails to load instead of prompting.
private func refusePassphrase(
    _ buffer: UnsafeMutablePointer<CChar>?, _ size: Int32, _ rwflag: Int32, _ userData: UnsafeMutableRawPointer?
) -> Int32 {
    0
}
