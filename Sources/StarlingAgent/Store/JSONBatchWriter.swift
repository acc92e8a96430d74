import StarlingCore

/// Builds the JSON array documents the set-wise statements read with `jsonb_to_recordset`, straight into
/// bytes (no intermediate ``JSONValue``): apply entries `{"g","k","o","r","s"}` (WAL capture's bare rows and keys)
/// and accepted versions `{"k","s","t"}`. Members are written in canonical (sorted) order.
struct JSONBatchWriter {
    private var bytes: [UInt8] = [UInt8(ascii: "[")]
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    private mutating func open() {
        if count > 0 { bytes.append(UInt8(ascii: ",")) }
        count += 1
    }

    /// One entry for a table's set-wise apply function.
    mutating func append(
        ordinal: Int, key: JSONObject, row: JSONObject?, rowJSON: [UInt8]? = nil, seq: Int64, origin: String
    ) {
        open()
        bytes.append(contentsOf: #"{"g":"#.utf8)
        JSONSerializer.writeString(origin, to: &bytes)
        bytes.append(contentsOf: #","k":"#.utf8)
        JSONSerializer.writeObject(key, to: &bytes)
        bytes.append(contentsOf: #","o":"#.utf8)
        JSONSerializer.writeInt64(Int64(ordinal), to: &bytes)
        bytes.append(contentsOf: #","r":"#.utf8)
        writeRow(row, rowJSON)
        bytes.append(contentsOf: #","s":"#.utf8)
        JSONSerializer.writeInt64(seq, to: &bytes)
        bytes.append(UInt8(ascii: "}"))
    }

    /// One image for a table's WAL-capture apply function (``TableSQL/applyWALRowsFunctionSQL()``), an upsert: the
    /// row object itself.
    mutating func append(row: JSONObject?, rowJSON: [UInt8]? = nil) {
        open()
        writeRow(row, rowJSON)
    }

    /// One key object: for a table's WAL-capture apply function to delete, or a row to lock (`starling.lock_rows`,
    /// ``AgentStore/lockRows(_:connection:)``).
    mutating func append(key: JSONObject) {
        open()
        JSONSerializer.writeObject(key, to: &bytes)
    }

    /// One accepted change's version.
    mutating func append(table: String, key: JSONObject, seq: Int64) {
        open()
        bytes.append(contentsOf: #"{"k":"#.utf8)
        JSONSerializer.writeObject(key, to: &bytes)
        bytes.append(contentsOf: #","s":"#.utf8)
        JSONSerializer.writeInt64(seq, to: &bytes)
        bytes.append(contentsOf: #","t":"#.utf8)
        JSONSerializer.writeString(table, to: &bytes)
        bytes.append(UInt8(ascii: "}"))
    }

    /// An image: its JSON text when kept (a pulled entry's, copied as is), else the object, else `null`.
    private mutating func writeRow(_ row: JSONObject?, _ rowJSON: [UInt8]?) {
        if let rowJSON {
            bytes.append(contentsOf: rowJSON)
        } else if let row {
            JSONSerializer.writeObject(row, to: &bytes)
        } else {
            JSONSerializer.writeNull(to: &bytes)
        }
    }

    /// Appends another writer's entries after this one's.
    mutating func append(contentsOf other: JSONBatchWriter) {
        guard !other.isEmpty else { return }
        open()
        bytes.append(contentsOf: other.bytes.dropFirst())
        count += other.count - 1
    }

    /// The finished array text.
    mutating func finish() -> String {
        bytes.append(UInt8(ascii: "]"))
        defer { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}
