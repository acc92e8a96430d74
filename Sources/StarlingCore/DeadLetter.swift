/// An entry (or verdict image) a region could not apply, as the agent stores it and reports it in
/// `POST /v1/dead-letters` (`{"dead_letters":[…]}`, each `{"id":N,"seq":N,"table":…,"entry":{…},
/// "sqlstate":…|null,"error":…}`). The agent encodes it (``json``), the hub decodes it (``init(json:)``) and
/// records it as an open conflict.
public struct DeadLetter: Sendable, Hashable {
    /// The region's local dead-letter id: with the region, the hub's idempotency key.
    public var id: Int64
    /// The seq of the entry (or verdict) that failed; never negative.
    public var seq: Int64
    public var table: String
    /// The log entry (or verdict) as received: a JSON object.
    public var entry: JSONValue
    public var sqlState: String?
    public var error: String

    public init(id: Int64, seq: Int64, table: String, entry: JSONValue, sqlState: String?, error: String) {
        self.id = id
        self.seq = seq
        self.table = table
        self.entry = entry
        self.sqlState = sqlState
        self.error = error
    }

    /// The wire form.
    public var json: JSONValue {
        .object([
            "id": .integer(id), "seq": .integer(seq), "table": .string(table), "entry": entry,
            "sqlstate": sqlState.map(JSONValue.string) ?? .null, "error": .string(error),
        ])
    }

    /// Decodes one letter. `seq` must not be negative and `entry` must be an object (as the OpenAPI schema
    /// says; a conflict stored from anything else broke the `GET /v1/conflicts` schema); `sqlstate` is a string
    /// or null. Errors name the member.
    public init(json: JSONValue) throws(CoreError) {
        guard let id = json["id"]?.int64Value, let seq = json["seq"]?.int64Value, let table = json["table"]?.stringValue,
            let entry = json["entry"], let error = json["error"]?.stringValue
        else {
            throw CoreError(code: .invalidValue, message: "needs id, seq, table, entry and error")
        }
        guard seq >= 0 else { throw CoreError(code: .invalidValue, message: "must not be negative", field: "seq") }
        guard case .object = entry else {
            throw CoreError(code: .invalidValue, message: "must be an object", field: "entry")
        }
        if let sqlState = json["sqlstate"], !sqlState.isNull, sqlState.stringValue == nil {
            throw CoreError(code: .invalidValue, message: "must be a string or null", field: "sqlstate")
        }
        self.init(id: id, seq: seq, table: table, entry: entry, sqlState: json["sqlstate"]?.stringValue, error: error)
    }
}
