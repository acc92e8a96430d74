/// The one error type of StarlingHub: configuration problems, refused requests, storage failures.
///
/// `code` is extensible (static constants); `message` is a sentence for operators; `key` names the
/// configuration key (`regions[2].token`) when the error concerns one.
public struct HubError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// `hub.yaml` is malformed or breaks a rule.
        public static let invalidConfiguration = Code(rawValue: "invalid_configuration")
        /// The hub could not start (migrations, listener, advisory lock).
        public static let startFailed = Code(rawValue: "start_failed")
        /// The sequencer's queue is full; the client should retry.
        public static let overloaded = Code(rawValue: "overloaded")
        /// The hub is shutting down.
        public static let shuttingDown = Code(rawValue: "shutting_down")
        /// Postgres failed while storing or reading.
        public static let storageFailed = Code(rawValue: "storage_failed")
        /// A conflict id that does not exist.
        public static let notFound = Code(rawValue: "not_found")
        /// A conflict that is already resolved.
        public static let alreadyResolved = Code(rawValue: "already_resolved")
        /// A request the hub refuses (bad resolution row, …).
        public static let invalidRequest = Code(rawValue: "invalid_request")
    }

    public var code: Code
    public var message: String
    /// The configuration key the error concerns, e.g. `regions[2].token`.
    public var key: String?

    public init(code: Code, message: String, key: String? = nil) {
        self.code = code
        self.message = message
        self.key = key
    }

    public var description: String {
        if let key { return "\(key): \(message)" }
        return message
    }
}
