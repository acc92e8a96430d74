/// `GET /v1/snapshot`, one page of a table's heads for a bootstrapping region: `{"adopted_by":R|null,
/// "adopted_rows":N|null,"heads":H|null,"next":KEY|null,"rows":[{"key":{…},"origin":"…","row":{…}|null,
/// "seq":N}],"seq":S,"table":T}` (the hub's HubAPI+Snapshot.swift says why pages need no transaction).
///
/// The hub writes it with ``write(table:seq:rowsJSON:next:heads:adoptedBy:adoptedRows:to:)`` from the key and
/// row texts it stores (each row by ``Row/write(keyJSON:origin:rowJSON:seq:to:)``); ``json`` is the same bytes
/// from values, and the agent decodes it with ``init(json:)``.
public struct SnapshotPage: Sendable, Hashable {
    /// One head: key, image (nil: tombstone), the head's seq and origin.
    public struct Row: Sendable, Hashable {
        public var key: JSONObject
        public var row: JSONObject?
        public var seq: Int64
        public var origin: String

        public init(key: JSONObject, row: JSONObject?, seq: Int64, origin: String) {
            self.key = key
            self.row = row
            self.seq = seq
            self.origin = origin
        }

        /// The wire form; `row` is always present (`null` for a tombstone).
        public var json: JSONValue {
            .object([
                "key": .object(key), "origin": .string(origin), "row": row.map(JSONValue.object) ?? .null,
                "seq": .integer(seq),
            ])
        }

        /// Appends one row's JSON from `key` and `row` as JSON texts (`row` nil: a tombstone): exactly
        /// `json.serialized()` when the texts are canonical, as the hub stores them.
        public static func write(keyJSON: String, origin: String, rowJSON: String?, seq: Int64, to output: inout [UInt8]) {
            output.append(contentsOf: #"{"key":"#.utf8)
            output.append(contentsOf: keyJSON.utf8)
            output.append(contentsOf: #","origin":"#.utf8)
            JSONSerializer.writeString(origin, to: &output)
            output.append(contentsOf: #","row":"#.utf8)
            output.append(contentsOf: (rowJSON ?? "null").utf8)
            output.append(contentsOf: #","seq":"#.utf8)
            JSONSerializer.writeInt64(seq, to: &output)
            output.append(UInt8(ascii: "}"))
        }
    }

    public var table: String
    /// The hub's committed head when the page was read.
    public var seq: Int64
    public var rows: [Row]
    /// The `after` of the next page; nil on the last.
    public var next: String?
    /// The table's head count, on the first page only.
    public var heads: Int64?
    /// The region whose rows became the table's initial state, and how many, once a region adopted it.
    public var adoptedBy: String?
    public var adoptedRows: Int64?

    public init(
        table: String, seq: Int64, rows: [Row], next: String? = nil, heads: Int64? = nil, adoptedBy: String? = nil,
        adoptedRows: Int64? = nil
    ) {
        self.table = table
        self.seq = seq
        self.rows = rows
        self.next = next
        self.heads = heads
        self.adoptedBy = adoptedBy
        self.adoptedRows = adoptedRows
    }

    /// The wire form (absent values as `null`, as the hub writes them).
    public var json: JSONValue {
        .object([
            "adopted_by": adoptedBy.map(JSONValue.string) ?? .null,
            "adopted_rows": adoptedRows.map(JSONValue.integer) ?? .null,
            "heads": heads.map(JSONValue.integer) ?? .null, "next": next.map(JSONValue.string) ?? .null,
            "rows": .array(rows.map(\.json)), "seq": .integer(seq), "table": .string(table),
        ])
    }

    /// Decodes a page; `table` may be absent (older hubs), the optional members absent or null.
    public init(json: JSONValue) throws(CoreError) {
        guard let seq = json["seq"]?.int64Value, let list = json["rows"]?.arrayValue else {
            throw CoreError(code: .invalidValue, message: "snapshot response lacks seq or rows")
        }
        var rows: [Row] = []
        rows.reserveCapacity(list.count)
        for (index, item) in list.enumerated() {
            guard let key = item["key"]?.objectValue, let version = item["seq"]?.int64Value,
                let origin = item["origin"]?.stringValue
            else {
                throw CoreError(
                    code: .invalidValue, message: "snapshot row lacks key, seq or origin", field: "rows[\(index)]")
            }
            rows.append(Row(key: key, row: item["row"]?.objectValue, seq: version, origin: origin))
        }
        self.init(
            table: json["table"]?.stringValue ?? "", seq: seq, rows: rows, next: json["next"]?.stringValue,
            heads: json["heads"]?.int64Value, adoptedBy: json["adopted_by"]?.stringValue,
            adoptedRows: json["adopted_rows"]?.int64Value)
    }

    /// Appends the page's JSON with `rowsJSON` the rows already written (``Row/write(keyJSON:origin:rowJSON:seq:to:)``),
    /// comma-separated, without brackets.
    public static func write(
        table: String, seq: Int64, rowsJSON: [UInt8], next: String?, heads: Int64?, adoptedBy: String?,
        adoptedRows: Int64?, to output: inout [UInt8]
    ) {
        output.append(contentsOf: #"{"adopted_by":"#.utf8)
        if let adoptedBy { JSONSerializer.writeString(adoptedBy, to: &output) } else { JSONSerializer.writeNull(to: &output) }
        output.append(contentsOf: #","adopted_rows":"#.utf8)
        if let adoptedRows { JSONSerializer.writeInt64(adoptedRows, to: &output) } else { JSONSerializer.writeNull(to: &output) }
        output.append(contentsOf: #","heads":"#.utf8)
        if let heads { JSONSerializer.writeInt64(heads, to: &output) } else { JSONSerializer.writeNull(to: &output) }
        output.append(contentsOf: #","next":"#.utf8)
        if let next { JSONSerializer.writeString(next, to: &output) } else { JSONSerializer.writeNull(to: &output) }
        output.append(contentsOf: #","rows":["#.utf8)
        output.append(contentsOf: rowsJSON)
        output.append(contentsOf: #"],"seq":"#.utf8)
        JSONSerializer.writeInt64(seq, to: &output)
        output.append(contentsOf: #","table":"#.utf8)
        JSONSerializer.writeString(table, to: &output)
        output.append(UInt8(ascii: "}"))
    }
}
