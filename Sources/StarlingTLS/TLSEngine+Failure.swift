internal import COpenSSL

/// Turning OpenSSL's return codes into results and its error queue into a `TLSError` with a useful code.
extension TLSEngine {
    /// What a failed `SSL_*` call means for the caller.
    enum Outcome {
        /// Needs more ciphertext from the peer (memory BIOs never make writes wait).
        case wouldBlock
        /// The peer sent close_notify.
        case closed
        /// Fatal: the connection is unusable.
        case failed(TLSError)
    }

    /// Classifies the return value `status` of an `SSL_*` call that did not succeed. Must run right
    /// after that call, on the same thread, before anything else touches the error queue.
    func outcome(of status: Int32, handshakeWasComplete: Bool) -> Outcome {
        let sslError = SSL_get_error(ssl, status)
        switch sslError {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wouldBlock
        case SSL_ERROR_ZERO_RETURN:
            return .closed
        default:
            let fallback: TLSError.Code = handshakeWasComplete ? .protocolError : .handshakeFailed
            return .failed(failureError(sslError: sslError, fallback: fallback))
        }
    }

    /// Drains the error queue into a `TLSError`, naming ALPN, certificate and verification problems.
    private func failureError(sslError: Int32, fallback: TLSError.Code) -> TLSError {
        let snapshot = OpenSSLErrorQueue.drain()
        func has(_ reason: Int32) -> Bool {
            snapshot.contains(library: ERR_LIB_SSL, reason: reason)
        }
        let (code, message): (TLSError.Code, String)
        if didRefuseApplicationProtocol {
            (code, message) = (.alpnRefused, "the client offered no supported application protocol (ALPN)")
        } else if has(SSL_R_TLSV1_ALERT_NO_APPLICATION_PROTOCOL) || has(SSL_R_NO_APPLICATION_PROTOCOL) {
            (code, message) = (.alpnRefused, "no common application protocol (ALPN)")
        } else if has(SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
            (code, message) = (.peerCertificateMissing, "the client sent no certificate")
        } else if has(SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED) {
            (code, message) = (.peerCertificateMissing, "the server requires a client certificate")
        } else if has(SSL_R_CERTIFICATE_VERIFY_FAILED) {
            (code, message) = (.verificationFailed, "peer certificate did not verify: \(verifyResultText)")
        } else if Self.certificateRejectionReasons.contains(where: has) {
            (code, message) = (.verificationFailed, "the peer rejected our certificate")
        } else if sslError == SSL_ERROR_SYSCALL && snapshot.messages.isEmpty {
            (code, message) = (fallback, "unexpected end of the TLS stream")
        } else {
            (code, message) = (fallback, fallback == .handshakeFailed ? "TLS handshake failed" : "TLS protocol error")
        }
        return TLSError(code: code, message: message, openSSLErrors: snapshot.messages)
    }

    /// Alerts by which a peer says it did not accept our certificate.
    private static let certificateRejectionReasons: [Int32] = [
        SSL_R_TLSV1_ALERT_UNKNOWN_CA, SSL_R_SSLV3_ALERT_BAD_CERTIFICATE, SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN,
        SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED, SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED,
        SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE,
    ]

    /// OpenSSL's description of the last verification result ("certificate has expired", ...).
    private var verifyResultText: String {
        let result = SSL_get_verify_result(ssl)
        guard let text = X509_verify_cert_error_string(result) else {
            return "verification error \(result)"
        }
        return "\(String(cString: text)) (\(result))"
    }
}
