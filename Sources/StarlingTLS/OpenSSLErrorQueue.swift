internal import COpenSSL

/// Reads OpenSSL's per-thread error queue.
///
/// The queue is thread-local and sticky: every engine call clears it first (`clear()`), so that what
/// `drain()` returns afterwards belongs to the call that just failed.
enum OpenSSLErrorQueue {
    /// At most this many entries are kept in a `TLSError`; the rest are discarded (a hostile peer
    /// cannot make one error arbitrarily large, and the first entries name the cause).
    static let maxEntries = 8
    /// `ERR_error_string_n` needs at least 120 bytes; 256 holds the longest messages whole.
    static let messageBufferBytes = 256

    /// One drained queue: readable messages and the (library, reason) pairs used to classify failures.
    struct Snapshot {
        var messages: [String] = []
        var reasons: [Reason] = []

        /// Whether the queue held `reason` raised by library `library` (`ERR_LIB_SSL`, `ERR_LIB_X509`).
        func contains(library: Int32, reason: Int32) -> Bool {
            reasons.contains(Reason(library: library, reason: reason))
        }
    }

    /// The library and reason parts of one packed OpenSSL error code.
    struct Reason: Hashable {
        var library: Int32
        var reason: Int32
    }

    /// Forgets everything queued on this thread.
    static func clear() {
        ERR_clear_error()
    }

    /// Empties the queue of this thread and returns its first `maxEntries` entries, oldest first.
    static func drain() -> Snapshot {
        var snapshot = Snapshot()
        var buffer = [CChar](repeating: 0, count: messageBufferBytes)
        while true {
            let code = ERR_get_error()
            if code == 0 {
                break
            }
            guard snapshot.messages.count < maxEntries else {
                continue
            }
            ERR_error_string_n(code, &buffer, buffer.count)
            let message = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            snapshot.messages.append(message)
            snapshot.reasons.append(
                Reason(library: starling_openssl_err_lib(code), reason: starling_openssl_err_reason(code)))
        }
        return snapshot
    }

    /// A `TLSError` carrying the drained queue.
    static func error(_ code: TLSError.Code, _ message: String, path: String? = nil) -> TLSError {
        TLSError(code: code, message: message, path: path, openSSLErrors: drain().messages)
    }
}
