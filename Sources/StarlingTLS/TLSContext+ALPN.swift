internal import COpenSSL

/// ALPN on the server: a client must offer ALPN, and one of our protocols, or the handshake fails
/// with the `no_application_protocol` alert (RFC 7301 §3.2).
extension TLSContext {
    /// The first of `preferences` (our order) that the client offered, as the byte range of that name
    /// inside `offered` (the wire format: each name prefixed with its one-byte length).
    /// Returns nil when nothing matches or when `offered` is malformed.
    static func selectProtocol(preferences: [[UInt8]], offered: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        var names: [Range<Int>] = []
        var index = 0
        while index < offered.count {
            let length = Int(offered[index])
            let start = index + 1
            guard length > 0, start + length <= offered.count else {
                return nil
            }
            names.append(start..<(start + length))
            index = start + length
        }
        for preference in preferences {
            if let match = names.first(where: { offered[$0].elementsEqual(preference) }) {
                return match
            }
        }
        return nil
    }
}

/// Client hello callback: refuses a ClientHello without the ALPN extension, which OpenSSL would
/// otherwise accept without ever calling the ALPN selection callback.
func requireALPNExtension(
    _ ssl: OpaquePointer?, _ alert: UnsafeMutablePointer<Int32>?, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let ssl else {
        return SSL_CLIENT_HELLO_ERROR
    }
    var data: UnsafePointer<UInt8>?
    var length = 0
    let type = UInt32(TLSEXT_TYPE_application_layer_protocol_negotiation)
    if SSL_client_hello_get0_ext(ssl, type, &data, &length) == 1 {
        return SSL_CLIENT_HELLO_SUCCESS
    }
    TLSEngine.owner(of: ssl)?.applicationProtocolRefused()
    alert?.pointee = SSL_AD_NO_APPLICATION_PROTOCOL
    return SSL_CLIENT_HELLO_ERROR
}

/// ALPN selection callback: picks our most preferred protocol among the client's, or refuses fatally.
/// `out` points into `offered`, which OpenSSL keeps alive for the rest of the handshake.
func selectApplicationProtocol(
    _ ssl: OpaquePointer?,
    _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<UInt8>?,
    _ offered: UnsafePointer<UInt8>?,
    _ offeredLength: UInt32,
    _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let ssl, let out, let outLength, let offered, let engine = TLSEngine.owner(of: ssl) else {
        return SSL_TLSEXT_ERR_ALERT_FATAL
    }
    let offer = UnsafeBufferPointer(start: offered, count: Int(offeredLength))
    guard let match = TLSContext.selectProtocol(preferences: engine.context.applicationProtocols, offered: offer)
    else {
        engine.applicationProtocolRefused()
        return SSL_TLSEXT_ERR_ALERT_FATAL
    }
    out.pointee = offered + match.lowerBound
    outLength.pointee = UInt8(match.count)
    return SSL_TLSEXT_ERR_OK
}
