/// The one error type of StarlingCore: malformed JSON, limits, and wire values that break the model's rules.
///
/// `code` is extensible (static constants on ``Code``); `message` is a sentence for operators; `field` is the
/// dotted path of the offending value inside the decoded object (`"before.qty"`, `"key"`), so callers can
/// prefix it with their own position (`"changes[3]"`) via ``prefixed(with:)``; `offset` is the byte offset
/// into the JSON text for parse errors.
public struct CoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is. New codes may be added; switch with a `default`.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }

        /// The bytes are not JSON per RFC 8259 (syntax, escapes, UTF-8, trailing garbage).
        public static let malformedJSON = Code(rawValue: "malformed_json")
        /// The input is larger or deeper than the configured limit.
        public static let limitExceeded = Code(rawValue: "limit_exceeded")
        /// A captured change breaks the model's rules (op vs images, key, id, base, hlc).
        public static let invalidChange = Code(rawValue: "invalid_change")
        /// A change claims a region other than the one that pushed it.
        public static let forbiddenRegion = Code(rawValue: "forbidden_region")
        /// A wire value other than a change (log entry, verdict, conflict record) is missing a field or has
        /// the wrong type.
        public static let invalidValue = Code(rawValue: "invalid_value")
        /// A conflict policy name in configuration is not one of the known policies.
        public static let invalidPolicy = Code(rawValue: "invalid_policy")
        /// A manual resolution cannot be applied (e.g. the picked row does not match the conflict's key).
        public static let invalidResolution = Code(rawValue: "invalid_resolution")
    }

    public var code: Code
    public var message: String
    /// Dotted path of the offending field, if the error concerns one.
    public var field: String?
    /// Byte offset into the JSON text, for parse errors.
    public var offset: Int?

    public init(code: Code, message: String, field: String? = nil, offset: Int? = nil) {
        self.code = code
        self.message = message
        self.field = field
        self.offset = offset
    }

    /// The same error with `prefix` prepended to its field path (`"changes[3]"` + `"key.id"`).
    public func prefixed(with prefix: String) -> CoreError {
        var copy = self
        if let field, !field.isEmpty {
            copy.field = field.hasPrefix("[") ? prefix + field : prefix + "." + field
        } else {
            copy.field = prefix
        }
        return copy
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let field { text += " (field \(field))" }
        return text
    }
}
