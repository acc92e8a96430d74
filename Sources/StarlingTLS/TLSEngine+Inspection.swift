internal import COpenSSL

/// What the handshake negotiated, for the HTTP/2 layer (ALPN) and for logs.
extension TLSEngine {
    /// Whether the handshake has finished (on a TLS 1.3 client: finished on our side; the server may
    /// still refuse our certificate, which then shows as a failed read).
    public var isHandshakeComplete: Bool {
        SSL_is_init_finished(ssl) == 1
    }

    /// The ALPN protocol agreed on ("h2"), nil when none was negotiated. A client should refuse to
    /// speak HTTP/2 to a server that selected nothing.
    public var negotiatedProtocol: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else {
            return nil
        }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// The protocol version as OpenSSL names it ("TLSv1.3", "TLSv1.2"; before the handshake the
    /// version being attempted).
    public var protocolVersion: String {
        String(cString: SSL_get_version(ssl))
    }

    /// The cipher suite in use ("TLS_AES_128_GCM_SHA256"), nil before the handshake.
    public var cipherSuite: String? {
        guard let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) else {
            return nil
        }
        return String(cString: name)
    }

    /// The subject of the peer's certificate in RFC 2253 form ("CN=client,O=Starling"), nil when the
    /// peer sent none. For logs; authorisation must also check `peerCertificateVerified`.
    public var peerCertificateSubject: String? {
        guard let certificate = SSL_get1_peer_certificate(ssl) else {
            return nil
        }
        defer { X509_free(certificate) }
        guard let name = X509_get_subject_name(certificate), let bio = BIO_new(BIO_s_mem()) else {
            return nil
        }
        defer { BIO_free(bio) }
        guard X509_NAME_print_ex(bio, name, 0, starling_openssl_xn_flag_rfc2253()) >= 0 else {
            return nil
        }
        let length = Int(starling_openssl_bio_pending(bio))
        var bytes = [UInt8](repeating: 0, count: length)
        var count = 0
        guard length > 0, BIO_read_ex(bio, &bytes, length, &count) == 1 else {
            return ""
        }
        return String(decoding: bytes.prefix(count), as: UTF8.self)
    }

    /// Whether the peer presented a certificate and it verified against our trust roots
    /// (and, on a client, matched the server name).
    public var peerCertificateVerified: Bool {
        SSL_get0_peer_certificate(ssl) != nil && SSL_get_verify_result(ssl) == Int(X509_V_OK)
    }
}
