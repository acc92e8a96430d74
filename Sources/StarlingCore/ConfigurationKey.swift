/// A coding key for any name: configuration decoders (`hub.yaml`, `agent.yaml`) read their members through it so
/// they can see, and refuse, keys they do not know. A key-enum container drops unknown keys silently, so a typo
/// (`tokn:`) would leave a setting at its default without a word.
///
/// A value: `Sendable`; no state.
public struct ConfigurationKey: CodingKey, Sendable {
    public var stringValue: String
    public var intValue: Int? { nil }
    public init(_ string: String) { stringValue = string }
    public init?(stringValue: String) { self.stringValue = stringValue }
    public init?(intValue: Int) { nil }

    /// `regions[2].token` for a decoder's coding path (array positions in brackets, members after dots);
    /// `(top level)` for an empty path.
    public static func path(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : "." + key.stringValue
            }
        }
        return text.isEmpty ? "(top level)" : text
    }
}

extension KeyedDecodingContainer where K == ConfigurationKey {
    /// Fails on the first key not in `known`, naming it (its coding path) and the keys allowed there.
    public func rejectUnknownKeys(_ known: Set<String>) throws {
        for key in allKeys where !known.contains(key.stringValue) {
            let expected = known.sorted().joined(separator: ", ")
            throw DecodingError.dataCorrupted(
                .init(codingPath: codingPath + [key], debugDescription: "unknown key (expected one of: \(expected))"))
        }
    }

    /// The member `name`, or `fallback` when it is absent.
    public func value<T: Decodable>(_ name: String, default fallback: T) throws -> T {
        try decodeIfPresent(T.self, forKey: ConfigurationKey(name)) ?? fallback
    }

    /// The member `name`, or nil when it is absent.
    public func optional<T: Decodable>(_ name: String) throws -> T? {
        try decodeIfPresent(T.self, forKey: ConfigurationKey(name))
    }

    /// The member `name`; absent is an error naming it.
    public func required<T: Decodable>(_ name: String) throws -> T {
        try decode(T.self, forKey: ConfigurationKey(name))
    }
}
