internal import COpenSSL

/// SHA-256 and constant-time comparison, for hashing and checking bearer tokens. Lives here because
/// only StarlingTLS may import OpenSSL.
public enum TLSDigest {
    /// Length of a SHA-256 digest.
    public static let sha256Bytes = 32

    /// The SHA-256 digest of `bytes` (32 bytes).
    public static func sha256(_ bytes: some Collection<UInt8>) -> [UInt8] {
        if let digest = bytes.withContiguousStorageIfAvailable({ sha256(contiguous: UnsafeRawBufferPointer($0)) }) {
            return digest
        }
        return Array(bytes).withUnsafeBytes { sha256(contiguous: $0) }
    }

    /// The SHA-256 digest of the UTF-8 bytes of `string`, as 64 lowercase hex digits.
    public static func sha256Hex(_ string: String) -> String {
        hex(sha256(Array(string.utf8)))
    }

    /// Whether `a` and `b` are equal, in time that depends only on their lengths (`CRYPTO_memcmp`),
    /// never on where they differ. Different lengths are unequal at once: lengths are not secret here
    /// (both sides are digests of fixed size).
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else {
            return false
        }
        guard !a.isEmpty else {
            return true
        }
        return a.withUnsafeBytes { left in
            b.withUnsafeBytes { right in
                CRYPTO_memcmp(left.baseAddress, right.baseAddress, left.count) == 0
            }
        }
    }

    /// Lowercase hex of `bytes`.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    private static func sha256(contiguous bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var digest = [UInt8](repeating: 0, count: sha256Bytes)
        // SHA256 on an empty input needs a non-null pointer; any valid address will do.
        let status = digest.withUnsafeMutableBufferPointer { output in
            withUnsafeBytes(of: 0 as UInt8) { empty in
                let input = bytes.baseAddress ?? empty.baseAddress!
                return SHA256(input.assumingMemoryBound(to: UInt8.self), bytes.count, output.baseAddress)
            }
        }
        // SHA256 fails only when it cannot allocate its context; there is no input-dependent failure.
        precondition(status != nil, "SHA256 failed (out of memory)")
        return digest
    }
}
