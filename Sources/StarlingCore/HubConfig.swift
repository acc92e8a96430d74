/// `GET /v1/config`, what the hub tells a region: its name and `next_id` bits, and every synced table with its
/// policy and registered shape. The hub encodes it (``json``), the agent decodes it (``init(json:)``).
///
/// `{"region":"us-east","region_id":3,"tables":[{"name":"public.items","policy":"lww",
/// "key_columns":["id"],"columns":[{"name":"id","type":"bigint"},…]}]}`; `region_id` is absent when not
/// configured, `manual_provisional` is present for manual tables only, `key_columns`/`columns` once a region
/// registered the table.
public struct HubConfig: Sendable, Hashable {
    public var region: String
    public var tables: [Table]
    /// The region bits of `starling.next_id()` (`region_id`, hub.yaml `regions[].id`); nil when not configured.
    public var regionID: Int? = nil
    /// What one push may carry at this hub (`limits`; nil from a hub that does not say): the agent cuts its
    /// batches and chunks within it, whatever its own `tuning.batch` says.
    public var pushLimits: PushLimits? = nil
    /// The hub's log terms, oldest first (`log_terms`; empty from a hub that does not say): where a region whose
    /// pull or push was refused with `log_diverged` finds the point its history and the hub's part (``LogTerms``).
    public var logTerms = LogTerms()

    /// The hub's `limits.max_push_changes` and `limits.max_body_bytes`.
    public struct PushLimits: Sendable, Hashable {
        public var maxChanges: Int
        public var maxBodyBytes: Int

        public init(maxChanges: Int, maxBodyBytes: Int) {
            self.maxChanges = maxChanges
            self.maxBodyBytes = maxBodyBytes
        }
    }

    /// One synced table.
    public struct Table: Sendable, Hashable {
        public var name: String
        /// The policy's name (`lww`, `manual`, `custom:…`).
        public var policy: String
        /// A manual table's provisional outcome (`lww` or `keep`); nil for every other policy.
        public var manualProvisional: String?
        /// The registered shape (columns and key); nil until a region registered the table.
        public var shape: TableShape?

        public init(name: String, policy: String, manualProvisional: String? = nil, shape: TableShape? = nil) {
            self.name = name
            self.policy = policy
            self.manualProvisional = manualProvisional
            self.shape = shape
        }
    }

    public init(region: String, tables: [Table], regionID: Int? = nil) {
        self.region = region
        self.tables = tables
        self.regionID = regionID
    }

    /// The wire form.
    public var json: JSONValue {
        var body: JSONObject = [
            "region": .string(region),
            "tables": .array(
                tables.map { table in
                    var object: JSONObject = ["name": .string(table.name), "policy": .string(table.policy)]
                    if let provisional = table.manualProvisional { object["manual_provisional"] = .string(provisional) }
                    if let shape = table.shape {
                        object["key_columns"] = .array(shape.key.map(JSONValue.string))
                        object["columns"] = shape.columnsJSON
                    }
                    return .object(object)
                }),
        ]
        if let regionID { body["region_id"] = .integer(regionID) }
        if let pushLimits {
            body["limits"] = .object([
                "max_push_changes": .integer(Int64(pushLimits.maxChanges)),
                "max_body_bytes": .integer(Int64(pushLimits.maxBodyBytes)),
            ])
        }
        if !logTerms.isEmpty { body["log_terms"] = logTerms.json }
        return .object(body)
    }

    /// Decodes the config body; unknown members are ignored, a table given as a bare name string has policy
    /// `lww`, and a `region_id` outside 0...1023 counts as not configured.
    public init(json: JSONValue) throws(CoreError) {
        guard let region = json["region"]?.stringValue, let tables = json["tables"]?.arrayValue else {
            throw CoreError(code: .invalidValue, message: "/v1/config lacks \"region\" or \"tables\"")
        }
        var parsed: [Table] = []
        for (index, table) in tables.enumerated() {
            guard let name = table["name"]?.stringValue ?? table.stringValue else {
                throw CoreError(
                    code: .invalidValue, message: "/v1/config has a table without a name", field: "tables[\(index)]")
            }
            var shape: TableShape?
            if let key = table["key_columns"]?.arrayValue, let columns = table["columns"] {
                shape = TableShape(
                    name: name, columns: try TableShape.columns(json: columns), key: key.compactMap(\.stringValue))
            }
            parsed.append(
                Table(
                    name: name, policy: table["policy"]?.stringValue ?? "lww",
                    manualProvisional: table["manual_provisional"]?.stringValue, shape: shape))
        }
        self.init(
            region: region, tables: parsed,
            regionID: json["region_id"]?.int64Value.flatMap { (0...1023).contains($0) ? Int($0) : nil })
        if let changes = json["limits"]?["max_push_changes"]?.int64Value, changes > 0,
            let body = json["limits"]?["max_body_bytes"]?.int64Value, body > 0
        {
            pushLimits = PushLimits(maxChanges: Int(clamping: changes), maxBodyBytes: Int(clamping: body))
        }
        if let terms = json["log_terms"] { logTerms = try LogTerms(json: terms) }
    }
}
