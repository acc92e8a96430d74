/// `GET /v1/changes`, one pull: entries in seq order, the `after` for the next pull, and the hub's head seq.
///
/// `{"entries":[…],"head":N,"next":N,"term":{"id":"…","first":N}}`: `term` is the log term holding `next`
/// (``LogTerms``; absent from hubs before terms). The hub writes it with ``write(entriesJSON:head:next:to:)`` from entry
/// JSON it already holds (``LogEntry/write(to:)`` output); ``json`` is the same bytes from values, and the agent
/// decodes it with ``init(json:)``.
public struct PullPage: Sendable, Hashable {
    public var entries: [LogEntry]
    public var next: Int64
    public var head: Int64
    public var term: LogTerm?

    public init(entries: [LogEntry], next: Int64, head: Int64, term: LogTerm? = nil) {
        self.entries = entries
        self.next = next
        self.head = head
        self.term = term
    }

    /// The wire form (canonical member order, as ``write(entriesJSON:head:next:to:)`` writes it).
    public var json: JSONValue {
        var object: JSONObject = ["entries": .array(entries.map(\.json)), "head": .integer(head), "next": .integer(next)]
        if let term { object["term"] = term.json }
        return .object(object)
    }

    public init(json: JSONValue) throws(CoreError) {
        guard let list = json["entries"]?.arrayValue, let next = json["next"]?.int64Value,
            let head = json["head"]?.int64Value
        else {
            throw CoreError(code: .invalidValue, message: "pull response lacks entries, next or head")
        }
        var entries: [LogEntry] = []
        entries.reserveCapacity(list.count)
        for (index, value) in list.enumerated() {
            do {
                entries.append(try LogEntry(json: value))
            } catch {
                throw error.prefixed(with: "entries[\(index)]")
            }
        }
        self.init(entries: entries, next: next, head: head, term: try json["term"].map { v throws(CoreError) in try LogTerm(json: v) })
    }

    /// Decodes a page from its bytes as ``init(json:)`` does, straight into the entries' fields (no tree of the
    /// page, no dictionary per entry), keeping each entry's row image as the JSON text it came as
    /// (``LogEntry/rowJSON``): a receiver copies images into its apply statement. The same checks as the parser
    /// and ``LogEntry/init(json:)``; errors name the entry (`entries[3].op`).
    public init(bytes: [UInt8]) throws(CoreError) {
        let limits = JSONParser.Limits()
        guard bytes.count <= limits.maxBytes else {
            throw CoreError(
                code: .limitExceeded,
                message: "JSON text of \(bytes.count) bytes exceeds the limit of \(limits.maxBytes) bytes",
                offset: limits.maxBytes)
        }
        let result: Result<PullPage, CoreError> = bytes.withUnsafeBufferPointer { buffer in
            do throws(CoreError) {
                return .success(try Self.read(buffer, maxDepth: limits.maxDepth))
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }

    private static func read(_ buffer: UnsafeBufferPointer<UInt8>, maxDepth: Int) throws(CoreError) -> PullPage {
        var reader = JSONReader(bytes: buffer, maxDepth: maxDepth)
        reader.skipWhitespace()
        var entries: [LogEntry] = []
        var next: Int64?
        var head: Int64?
        var term: LogTerm?
        var seen: Set<String> = []
        try reader.readMembers(depth: 1) { name, offset, reader throws(CoreError) in
            guard seen.insert(name).inserted else { throw reader.duplicate(name, at: offset) }
            switch name {
            case "entries":
                try reader.readElements(depth: 2) { index, reader throws(CoreError) in
                    do throws(CoreError) {
                        entries.append(try LogEntry.read(&reader, depth: 3))
                    } catch {
                        throw error.prefixed(with: "entries[\(index)]")
                    }
                }
            case "next": next = try reader.readValue(depth: 1).int64Value
            case "head": head = try reader.readValue(depth: 1).int64Value
            case "term": term = try LogTerm(json: try reader.readValue(depth: 1))
            default: try reader.skipValue(depth: 1)
            }
        }
        reader.skipWhitespace()
        guard reader.index == buffer.count else { throw reader.error("expected end of input after the value") }
        guard let next, let head else {
            throw CoreError(code: .invalidValue, message: "pull response lacks entries, next or head")
        }
        return PullPage(entries: entries, next: next, head: head, term: term)
    }

    /// Appends the page's JSON with `entriesJSON` the entries' objects already written, comma-separated,
    /// without brackets: exactly `json.serialized()` for those entries.
    public static func write(
        entriesJSON: [UInt8], head: Int64, next: Int64, term: LogTerm? = nil, to output: inout [UInt8]
    ) {
        output.append(contentsOf: #"{"entries":["#.utf8)
        output.append(contentsOf: entriesJSON)
        output.append(contentsOf: #"],"head":"#.utf8)
        JSONSerializer.writeInt64(head, to: &output)
        output.append(contentsOf: #","next":"#.utf8)
        JSONSerializer.writeInt64(next, to: &output)
        if let term {
            output.append(contentsOf: #","term":"#.utf8)
            term.write(to: &output)
        }
        output.append(UInt8(ascii: "}"))
    }
}
