/// A strict RFC 8259 JSON parser over a whole buffer of bytes, with limits.
///
/// Strict means: exactly one value surrounded by optional whitespace (no trailing garbage, no byte order
/// mark), no leading zeros, no bare control characters in strings, every `\u` surrogate paired, the input
/// valid UTF-8 (RFC 3629: no overlong forms, no encoded surrogates, nothing above U+10FFFF), and no
/// duplicate member names in an object (RFC 8259 leaves them undefined; an ambiguous object is refused).
/// Numbers keep their exact text (see ``JSONValue``).
///
/// The parser is recursive; ``Limits/maxDepth`` bounds both nesting and stack use. Errors are
/// ``CoreError`` with code `.malformedJSON` or `.limitExceeded`, the byte offset, and what was expected.
public struct JSONParser: Sendable {
    /// Bounds on what the parser accepts.
    public struct Limits: Sendable, Hashable {
        /// Deepest nesting of arrays and objects; the top-level container is depth 1. Default 64.
        public var maxDepth: Int
        /// Largest input accepted. Default 16 MiB.
        public var maxBytes: Int

        public init(maxDepth: Int = 64, maxBytes: Int = 16 << 20) {
            self.maxDepth = maxDepth
            self.maxBytes = maxBytes
        }
    }

    public var limits: Limits

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Parses `bytes` as exactly one JSON value.
    public func parse(_ bytes: [UInt8]) throws(CoreError) -> JSONValue {
        let result: Result<JSONValue, CoreError> = bytes.withUnsafeBytes { buffer in
            do throws(CoreError) {
                return .success(try parse(buffer))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    /// Parses `text`'s UTF-8 as exactly one JSON value.
    public func parse(_ text: String) throws(CoreError) -> JSONValue {
        try parse(Array(text.utf8))
    }

    /// Parses the bytes in `buffer` as exactly one JSON value. The buffer is only read during the call.
    public func parse(_ buffer: UnsafeRawBufferPointer) throws(CoreError) -> JSONValue {
        guard buffer.count <= limits.maxBytes else {
            throw CoreError(
                code: .limitExceeded,
                message: "JSON text of \(buffer.count) bytes exceeds the limit of \(limits.maxBytes) bytes",
                offset: limits.maxBytes)
        }
        let bytes = buffer.bindMemory(to: UInt8.self)
        var reader = JSONReader(bytes: bytes, maxDepth: limits.maxDepth)
        reader.skipWhitespace()
        let value = try reader.readValue(depth: 0)
        reader.skipWhitespace()
        guard reader.index == bytes.count else {
            throw reader.error("expected end of input after the value")
        }
        return value
    }

    /// Parses `bytes` as one JSON value, leaving the values of members named `member` in objects at nesting
    /// `depth` (the top-level container is depth 1) unbuilt: each is `.null` in the result, and its byte range
    /// in `bytes` is returned, in document order. The skipped values get the same checks, except for duplicate
    /// member names inside them. For a large document whose bulk a caller only copies (a pull page's row images).
    public func parse(_ bytes: [UInt8], keepingRaw member: String, atDepth depth: Int) throws(CoreError)
        -> (value: JSONValue, raw: [Range<Int>])
    {
        guard bytes.count <= limits.maxBytes else {
            throw CoreError(
                code: .limitExceeded,
                message: "JSON text of \(bytes.count) bytes exceeds the limit of \(limits.maxBytes) bytes",
                offset: limits.maxBytes)
        }
        let maxDepth = limits.maxDepth
        let result: Result<(JSONValue, [Range<Int>]), CoreError> = bytes.withUnsafeBufferPointer { buffer in
            var reader = JSONReader(bytes: buffer, maxDepth: maxDepth)
            reader.rawMember = (member, depth)
            do throws(CoreError) {
                reader.skipWhitespace()
                let value = try reader.readValue(depth: 0)
                reader.skipWhitespace()
                guard reader.index == buffer.count else {
                    throw reader.error("expected end of input after the value")
                }
                return .success((value, reader.rawRanges))
            } catch {
                return .failure(error)
            }
        }
        let (value, raw) = try result.get()
        return (value, raw)
    }
}

extension JSONValue {
    /// Parses `bytes` with the default ``JSONParser/Limits``.
    public init(parsing bytes: [UInt8]) throws(CoreError) {
        self = try JSONParser().parse(bytes)
    }

    /// Parses `text` with the default ``JSONParser/Limits``.
    public init(parsing text: String) throws(CoreError) {
        self = try JSONParser().parse(text)
    }
}
