/// One entry of the hub's ordered log, as agents pull it (DESIGN.md "Data model on the wire").
///
/// `row` is the full authoritative image after the entry, `nil` for a delete. `rewritten` is true when the
/// hub changed the image the origin wrote (merge, resolution, …), so the origin must apply the entry too.
public struct LogEntry: Sendable, Hashable {
    /// Origin of entries the hub itself writes (resolutions, corrections, repairs). Region names must
    /// differ from it; the hub's configuration refuses a region called `"hub"`.
    public static let hubOrigin = "hub"

    public var seq: Int64 {
        get { storage.seq }
        set { unique().seq = newValue }
    }
    public var origin: String {
        get { storage.origin }
        set { unique().origin = newValue }
    }
    public var id: String {
        get { storage.id }
        set { unique().id = newValue }
    }
    public var tx: String {
        get { storage.tx }
        set { unique().tx = newValue }
    }
    public var table: String {
        get { storage.table }
        set { unique().table = newValue }
    }
    public var op: ChangeOperation {
        get { storage.op }
        set { unique().op = newValue }
    }
    public var key: JSONObject {
        get { storage.key }
        set { unique().key = newValue }
    }
    /// The image: parsed, or the JSON text a pull page carried (``PullPage/init(bytes:)``), kept as it came so
    /// that the apply copies it into its statement without building and serializing a tree.
    private var image: Image {
        get { storage.image }
        set { unique().image = newValue }
    }
    public var hlc: Int64 {
        get { storage.hlc }
        set { unique().hlc = newValue }
    }
    public var kind: LogEntryKind {
        get { storage.kind }
        set { unique().kind = newValue }
    }
    public var rewritten: Bool {
        get { storage.rewritten }
        set { unique().rewritten = newValue }
    }
    /// Repairs only (kind `repair`, written by a reconciliation): the seq of the head the entry re-asserts,
    /// which the region records as the key's version (the entry's own `seq` only orders it). On the wire as
    /// `"base"`, absent on every other entry.
    public var base: Int64? {
        get { storage.base }
        set { unique().base = newValue }
    }

    /// The fields, behind one reference: copying an entry is one retain instead of one per string, dictionary and
    /// array it holds. Pages of thousands of entries are iterated, filtered, mapped and sorted by value (each step
    /// copies every element it touches): copying and releasing entries field by field was a tenth of an agent's CPU
    /// in W1 R=8 (2026-12-06). Copy on write: a value with a shared storage copies it before its first write
    /// (``unique()``).
    private var storage: Storage

    /// `@unchecked Sendable`: a storage is written only through ``unique()``, i.e. while one value alone holds
    /// it; a storage two values share (the only kind two threads can reach) is never written.
    private final class Storage: @unchecked Sendable {
        var seq: Int64
        var origin: String
        var id: String
        var tx: String
        var table: String
        var op: ChangeOperation
        var key: JSONObject
        var image: Image
        var hlc: Int64
        var kind: LogEntryKind
        var rewritten: Bool
        var base: Int64?

        init(
            seq: Int64, origin: String, id: String, tx: String, table: String, op: ChangeOperation, key: JSONObject,
            image: Image, hlc: Int64, kind: LogEntryKind, rewritten: Bool, base: Int64?
        ) {
            (self.seq, self.origin, self.id, self.tx, self.table, self.op) = (seq, origin, id, tx, table, op)
            (self.key, self.image, self.hlc, self.kind, self.rewritten, self.base) =
                (key, image, hlc, kind, rewritten, base)
        }

        func copy() -> Storage {
            Storage(
                seq: seq, origin: origin, id: id, tx: tx, table: table, op: op, key: key, image: image, hlc: hlc,
                kind: kind, rewritten: rewritten, base: base)
        }
    }

    /// The storage, copied first when another value shares it.
    private mutating func unique() -> Storage {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
        return storage
    }

    public init(
        seq: Int64, origin: String, id: String, tx: String, table: String, op: ChangeOperation,
        key: JSONObject, row: JSONObject?, hlc: Int64, kind: LogEntryKind, rewritten: Bool, base: Int64? = nil
    ) {
        storage = Storage(
            seq: seq, origin: origin, id: id, tx: tx, table: table, op: op, key: key, image: .object(row), hlc: hlc,
            kind: kind, rewritten: rewritten, base: base)
    }

    private enum Image: Sendable {
        case object(JSONObject?)
        /// A JSON object's text (never `null`: a delete is `.object(nil)`).
        case json([UInt8])
    }

    /// The image after the entry, nil for a delete. An entry read from a pull page's bytes parses its kept text
    /// on each access: the apply copies ``rowJSON`` instead.
    public var row: JSONObject? {
        get {
            switch image {
            case .object(let row): row
            case .json(let text): (try? JSONValue(parsing: text))?.objectValue
            }
        }
        set { image = .object(newValue) }
    }

    /// The image's JSON text as the pull page carried it; nil when the entry holds a parsed image or none.
    public var rowJSON: [UInt8]? {
        if case .json(let text) = image { return text }
        return nil
    }

    /// Keeps `text`, a JSON object's text (`null`: a delete), as the image.
    mutating func setRowJSON(_ text: [UInt8]) {
        image = text == Array("null".utf8) ? .object(nil) : .json(text)
    }

    public static func == (a: LogEntry, b: LogEntry) -> Bool {
        a.seq == b.seq && a.origin == b.origin && a.id == b.id && a.tx == b.tx && a.table == b.table && a.op == b.op
            && a.key == b.key && a.hlc == b.hlc && a.kind == b.kind && a.rewritten == b.rewritten && a.base == b.base
            && a.row == b.row
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(seq)
        hasher.combine(id)
        hasher.combine(row)
    }

    /// Decodes an entry; `row` may be absent or null (delete).
    public init(json: JSONValue) throws(CoreError) {
        let reader = try JSONObjectReader(json, what: "a log entry", code: .invalidValue)
        self.init(
            seq: try reader.nonNegativeInt64("seq"),
            origin: try reader.string("origin"),
            id: try reader.string("id"),
            tx: try reader.string("tx"),
            table: try reader.string("table"),
            op: try reader.enumeration("op", ChangeOperation.self),
            key: try reader.object("key"),
            row: try reader.optionalObject("row"),
            hlc: try reader.int64("hlc"),
            kind: try reader.enumeration("kind", LogEntryKind.self),
            rewritten: try reader.bool("rewritten"),
            base: json["base"]?.int64Value)
    }

    /// The known members of an entry, each with its duplicate-check bit.
    private enum Member: UInt16 {
        case seq = 0x1, hlc = 0x2, base = 0x4, origin = 0x8, id = 0x10, tx = 0x20, table = 0x40, op = 0x80
        case kind = 0x100, key = 0x200, rewritten = 0x400, row = 0x800

        /// The member named by the UTF-8 bytes `name`; nil for any other name. Picked by length and first byte, then
        /// compared once (a `switch` over the names compared a name with each in turn: a tenth of reading a pull page).
        init?(_ name: UnsafeBufferPointer<UInt8>) {
            let candidate: Member? =
                switch (name.count, name.first ?? 0) {
                case (3, UInt8(ascii: "s")): .seq
                case (3, UInt8(ascii: "h")): .hlc
                case (4, UInt8(ascii: "b")): .base
                case (6, UInt8(ascii: "o")): .origin
                case (2, UInt8(ascii: "i")): .id
                case (2, UInt8(ascii: "t")): .tx
                case (5, UInt8(ascii: "t")): .table
                case (2, UInt8(ascii: "o")): .op
                case (4, UInt8(ascii: "k")): .kind
                case (3, UInt8(ascii: "k")): .key
                case (9, UInt8(ascii: "r")): .rewritten
                case (3, UInt8(ascii: "r")): .row
                default: nil
                }
            guard let candidate, candidate.spelling.withUTF8Buffer({ Self.equal($0, name) }) else { return nil }
            self = candidate
        }

        /// Whether `a` and `b` hold the same bytes. A loop over two buffers of bytes: `String.UTF8View`'s
        /// `elementsEqual` with a buffer ran unspecialized, 0.7 % of the whole machine's samples in W1 R=8.
        private static func equal(_ a: UnsafeBufferPointer<UInt8>, _ b: UnsafeBufferPointer<UInt8>) -> Bool {
            guard a.count == b.count else { return false }
            for index in a.indices where a[index] != b[index] { return false }
            return true
        }

        /// The member's name.
        var name: String { spelling.description }

        /// The member's name as its UTF-8 bytes.
        private var spelling: StaticString {
            switch self {
            case .seq: "seq"
            case .hlc: "hlc"
            case .base: "base"
            case .origin: "origin"
            case .id: "id"
            case .tx: "tx"
            case .table: "table"
            case .op: "op"
            case .kind: "kind"
            case .key: "key"
            case .rewritten: "rewritten"
            case .row: "row"
            }
        }
    }

    /// Reads an entry object (at nesting `depth`) at the reader (``PullPage/init(bytes:)``) with the checks of
    /// ``init(json:)``, its row kept as the text it came as.
    static func read(_ reader: inout JSONReader, depth: Int) throws(CoreError) -> LogEntry {
        var seq: Int64?, hlc: Int64?, base: Int64?
        var origin: String?, id: String?, tx: String?, table: String?, op: String?, kind: String?
        var key: JSONObject?
        var rewritten: Bool?
        var row: [UInt8]?
        // A member's name is spelled only for an error.
        func string(_ member: Member, _ value: JSONValue) throws(CoreError) -> String {
            guard case .string(let text) = value else {
                let name = member.name
                throw CoreError(code: .invalidValue, message: "\"\(name)\" must be a string", field: name)
            }
            guard !text.isEmpty else {
                let name = member.name
                throw CoreError(code: .invalidValue, message: "\"\(name)\" must not be empty", field: name)
            }
            guard text.utf8.count <= 1024 else {
                let name = member.name
                throw CoreError(code: .invalidValue, message: "\"\(name)\" is longer than 1024 bytes", field: name)
            }
            return text
        }
        func integer(_ member: Member, _ value: Int64?) throws(CoreError) -> Int64 {
            guard let number = value else {
                let name = member.name
                throw CoreError(
                    code: .invalidValue,
                    message: "\"\(name)\" must be an integer (a number or a decimal string) within 64 bits", field: name)
            }
            return number
        }
        // Duplicate names: a bit per known name (hashing each name into a set was a tenth of reading a page),
        // a set for the others.
        var seenKnown: UInt16 = 0
        var seenOther: Set<String> = []
        try reader.readMembers(depth: depth, names: { nameBytes, offset, reader throws(CoreError) in
            guard let member = Member(nameBytes) else {
                let name = String(decoding: nameBytes, as: UTF8.self)
                guard seenOther.insert(name).inserted else { throw reader.duplicate(name, at: offset) }
                _ = try reader.readValue(depth: depth)  // ignored, checked as the tree parser checks it
                return
            }
            guard seenKnown & member.rawValue == 0 else { throw reader.duplicate(member.name, at: offset) }
            seenKnown |= member.rawValue
            switch member {
            case .row:
                let start = reader.index
                try reader.skipValue(depth: depth)
                row = Array(UnsafeBufferPointer(rebasing: reader.bytes[start..<reader.index]))
            case .seq: seq = try integer(member, try reader.readInt64(depth: depth))
            case .hlc: hlc = try integer(member, try reader.readInt64(depth: depth))
            case .base: base = try reader.readInt64(depth: depth)
            case .origin: origin = try string(member, try reader.readValue(depth: depth))
            case .id: id = try string(member, try reader.readValue(depth: depth))
            case .tx: tx = try string(member, try reader.readValue(depth: depth))
            case .table: table = try string(member, try reader.readValue(depth: depth))
            case .op: op = try string(member, try reader.readValue(depth: depth))
            case .kind: kind = try string(member, try reader.readValue(depth: depth))
            case .key:
                guard case .object(let object) = try reader.readValue(depth: depth) else {
                    throw CoreError(code: .invalidValue, message: "\"key\" must be an object", field: "key")
                }
                key = object
            case .rewritten:
                guard case .bool(let flag) = try reader.readValue(depth: depth) else {
                    throw CoreError(code: .invalidValue, message: "\"rewritten\" must be true or false", field: "rewritten")
                }
                rewritten = flag
            }
        })
        func required<T>(_ value: T?, _ name: String) throws(CoreError) -> T {
            guard let value else {
                throw CoreError(code: .invalidValue, message: "missing required field \"\(name)\"", field: name)
            }
            return value
        }
        let seqValue = try required(seq, "seq")
        guard seqValue >= 0 else {
            throw CoreError(code: .invalidValue, message: "\"seq\" must not be negative", field: "seq")
        }
        guard let operation = ChangeOperation(rawValue: try required(op, "op")) else {
            throw CoreError(code: .invalidValue, message: "\"op\" is not a known value", field: "op")
        }
        guard let entryKind = LogEntryKind(rawValue: try required(kind, "kind")) else {
            throw CoreError(code: .invalidValue, message: "\"kind\" is not a known value", field: "kind")
        }
        var entry = LogEntry(
            seq: seqValue, origin: try required(origin, "origin"), id: try required(id, "id"), tx: try required(tx, "tx"),
            table: try required(table, "table"), op: operation, key: try required(key, "key"), row: nil,
            hlc: try required(hlc, "hlc"), kind: entryKind, rewritten: try required(rewritten, "rewritten"), base: base)
        if let row {
            guard row == Array("null".utf8) || row.first == UInt8(ascii: "{") else {
                throw CoreError(code: .invalidValue, message: "\"row\" must be an object or null", field: "row")
            }
            entry.setRowJSON(row)
        }
        return entry
    }

    /// The wire form; `row` is always present (`null` for a delete).
    public var json: JSONValue {
        var object: JSONObject = [
            "seq": .integer(seq), "origin": .string(origin), "id": .string(id), "tx": .string(tx),
            "table": .string(table), "op": .string(op.rawValue), "key": .object(key),
            "row": row.map(JSONValue.object) ?? .null, "hlc": .integer(hlc), "kind": .string(kind.rawValue),
            "rewritten": .bool(rewritten),
        ]
        if let base { object["base"] = .integer(base) }
        return .object(object)
    }

    /// Appends exactly `json.serialized()` without building the intermediate value.
    public func write(to output: inout [UInt8]) {
        var keyJSON: [UInt8] = []
        JSONSerializer.writeObject(key, to: &keyJSON)
        var rowText: [UInt8]?
        switch image {
        case .object(let row?):
            var text: [UInt8] = []
            JSONSerializer.writeObject(row, to: &text)
            rowText = text
        case .object(nil): rowText = nil
        case .json(let text): rowText = text
        }
        Self.write(
            base: base, hlc: hlc, id: id, keyJSON: String(decoding: keyJSON, as: UTF8.self), kind: kind.rawValue,
            op: op.rawValue, origin: origin, isRewritten: rewritten,
            rowJSON: rowText.map { String(decoding: $0, as: UTF8.self) }, seq: seq, table: table, tx: tx,
            to: &output)
    }

    /// The one writer of a log entry's JSON object, from its parts with `key` and `row` as JSON texts (the hub's
    /// pull copies the texts it stored, for entries read from its log table and for those it caches as they
    /// commit). Members in canonical (byte-sorted) order: base hlc id key kind op origin rewritten row seq
    /// table tx; `row` is `null` when nil.
    public static func write(
        base: Int64?, hlc: Int64, id: String, keyJSON: String, kind: String, op: String, origin: String,
        isRewritten: Bool, rowJSON: String?, seq: Int64, table: String, tx: String, to output: inout [UInt8]
    ) {
        if let base {
            output.append(contentsOf: #"{"base":"#.utf8)
            JSONSerializer.writeInt64(base, to: &output)
            output.append(contentsOf: #","hlc":"#.utf8)
        } else {
            output.append(contentsOf: #"{"hlc":"#.utf8)
        }
        JSONSerializer.writeInt64(hlc, to: &output)
        output.append(contentsOf: #","id":"#.utf8)
        JSONSerializer.writeString(id, to: &output)
        output.append(contentsOf: #","key":"#.utf8)
        output.append(contentsOf: keyJSON.utf8)
        output.append(contentsOf: #","kind":"#.utf8)
        JSONSerializer.writeString(kind, to: &output)
        output.append(contentsOf: #","op":"#.utf8)
        JSONSerializer.writeString(op, to: &output)
        output.append(contentsOf: #","origin":"#.utf8)
        JSONSerializer.writeString(origin, to: &output)
        output.append(contentsOf: (isRewritten ? #","rewritten":true,"row":"# : #","rewritten":false,"row":"#).utf8)
        output.append(contentsOf: (rowJSON ?? "null").utf8)
        output.append(contentsOf: #","seq":"#.utf8)
        JSONSerializer.writeInt64(seq, to: &output)
        output.append(contentsOf: #","table":"#.utf8)
        JSONSerializer.writeString(table, to: &output)
        output.append(contentsOf: #","tx":"#.utf8)
        JSONSerializer.writeString(tx, to: &output)
        output.append(UInt8(ascii: "}"))
    }
}
