import StarlingCore

/// The one writer of a log entry's JSON on the pull path (`GET /v1/changes`), for entries read from the log
/// table (``HubStore/pull(_:region:after:limit:)``) and for entries cached as they commit (``LogCache``): both
/// give the same members in the same canonical order, `base hlc id key kind op origin rewritten row seq table
/// tx`, with `key` and `row` copied as the JSON texts they are stored as.
enum LogEntryWriter {
    /// Appends one entry object to `output`.
    static func write(
        base: Int64?, hlc: Int64, id: String, keyText: String, kind: String, op: String, origin: String,
        isRewritten: Bool, rowText: String?, seq: Int64, table: String, tx: String, to output: inout [UInt8]
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
        output.append(contentsOf: keyText.utf8)
        output.append(contentsOf: #","kind":"#.utf8)
        JSONSerializer.writeString(kind, to: &output)
        output.append(contentsOf: #","op":"#.utf8)
        JSONSerializer.writeString(op, to: &output)
        output.append(contentsOf: #","origin":"#.utf8)
        JSONSerializer.writeString(origin, to: &output)
        output.append(contentsOf: (isRewritten ? #","rewritten":true,"row":"# : #","rewritten":false,"row":"#).utf8)
        output.append(contentsOf: (rowText ?? "null").utf8)
        output.append(contentsOf: #","seq":"#.utf8)
        JSONSerializer.writeInt64(seq, to: &output)
        output.append(contentsOf: #","table":"#.utf8)
        JSONSerializer.writeString(table, to: &output)
        output.append(contentsOf: #","tx":"#.utf8)
        JSONSerializer.writeString(tx, to: &output)
        output.append(UInt8(ascii: "}"))
    }
}
