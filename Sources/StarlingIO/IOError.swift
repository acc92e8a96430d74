/// An operating error from the IO layer: a failed system call or an unusable address.
///
/// Would-block, short writes and end-of-file are return values, never `IOError`s.
public struct IOError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is; extensible, compare with the static constants.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        public static let syscallFailed = Code("syscall_failed")
        public static let invalidAddress = Code("invalid_address")
        public static let resolutionFailed = Code("resolution_failed")
        public static let loopStopped = Code("loop_stopped")
        public static let threadStartFailed = Code("thread_start_failed")
    }

    public var code: Code
    public var message: String
    /// The failing system call, when there is one.
    public var syscall: String?
    /// `errno` of the failing system call, 0 when not applicable.
    public var errno: Int32

    public init(_ code: Code, _ message: String, syscall: String? = nil, errno: Int32 = 0) {
        self.code = code
        self.message = message
        self.syscall = syscall
        self.errno = errno
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let syscall { text += " (\(syscall): \(Syscall.describe(errno: errno)))" }
        return text
    }
}
