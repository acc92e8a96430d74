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

    /// Decodes a page from its bytes as ``init(json:)`` does, keeping each entry's row image as the JSON text it
    /// came as (``LogEntry/rowJSON``): a receiver copies images into its apply statement, so building every row
    /// as a tree only to serialize it again was most of an agent's work per entry.
    public init(bytes: [UInt8]) throws(CoreError) {
        let (value, raw) = try JSONParser().parse(bytes, keepingRaw: "row", atDepth: 3)
        var page = try PullPage(json: value)
        guard let list = value["entries"]?.arrayValue, list.count == page.entries.count else {
            throw CoreError(code: .invalidValue, message: "pull response lacks entries")
        }
        var ranges = raw[...]
        for (index, item) in list.enumerated() where item["row"] != nil {
            guard let range = ranges.popFirst() else {
                throw CoreError(code: .invalidValue, message: "entries[\(index)].row could not be read")
            }
            let text = Array(bytes[range])
            if text != Array("null".utf8) && text.first != UInt8(ascii: "{") {
                throw CoreError(
                    code: .invalidValue, message: "\"row\" must be an object or null", field: "entries[\(index)].row")
            }
            page.entries[index].setRowJSON(text)
        }
        self = page
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
