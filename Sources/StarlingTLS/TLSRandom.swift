internal import COpenSSL

/// Cryptographically secure random bytes (OpenSSL's `RAND_bytes`), for tokens and nonces.
public enum TLSRandom {
    /// Largest single request; tokens are tens of bytes, this only guards against nonsense.
    public static let maxBytes = 1 << 20

    /// `count` random bytes. Throws `.randomFailure` if the generator cannot be seeded; never returns
    /// weak randomness.
    public static func bytes(count: Int) throws(TLSError) -> [UInt8] {
        precondition((0...maxBytes).contains(count), "TLSRandom.bytes count out of range")
        var bytes = [UInt8](repeating: 0, count: count)
        guard count > 0 else {
            return bytes
        }
        OpenSSLErrorQueue.clear()
        let status = bytes.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) }
        guard status == 1 else {
            throw OpenSSLErrorQueue.error(.randomFailure, "RAND_bytes failed")
        }
        return bytes
    }
}
