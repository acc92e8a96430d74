/// A recorded conflict: both sides, the policy, who won and whether an operator must act
/// (DESIGN.md step 4 and the `GET /v1/conflicts` shape).
///
/// `id` and `detectedAt` are the hub's (its database assigns the id, its clock the time); they are `nil` in a
/// record fresh from the resolver and written to JSON only when set.
public struct ConflictRecord: Sendable, Hashable {
    /// Lifecycle of a conflict.
    public enum Status: String, Sendable, Hashable, CaseIterable {
        /// Resolved by policy; nothing to do.
        case auto
        /// A `manual` table's conflict waiting for an operator.
        case open
        /// An operator resolved it.
        case resolved
    }

    /// Which side's version the key holds after the decision.
    public enum Winner: String, Sendable, Hashable, CaseIterable {
        case current
        case incoming
    }

    /// The head the incoming change ran into.
    public struct Current: Sendable, Hashable {
        public var seq: Int64
        public var origin: String
        public var op: ChangeOperation
        public var row: JSONObject?

        public init(seq: Int64, origin: String, op: ChangeOperation, row: JSONObject?) {
            self.seq = seq
            self.origin = origin
            self.op = op
            self.row = row
        }
    }

    /// The pushed change that conflicted; `row` is its after image (`nil` for a delete).
    public struct Incoming: Sendable, Hashable {
        public var id: String
        public var origin: String
        public var op: ChangeOperation
        public var base: Int64
        public var row: JSONObject?

        public init(id: String, origin: String, op: ChangeOperation, base: Int64, row: JSONObject?) {
            self.id = id
            self.origin = origin
            self.op = op
            self.base = base
            self.row = row
        }
    }

    public var id: Int64?
    public var table: String
    public var key: JSONObject
    public var policy: ConflictPolicy
    public var status: Status
    public var winner: Winner
    public var current: Current
    public var incoming: Incoming
    /// ISO 8601 detection time, formatted by the hub.
    public var detectedAt: String?

    public init(
        id: Int64? = nil, table: String, key: JSONObject, policy: ConflictPolicy, status: Status, winner: Winner,
        current: Current, incoming: Incoming, detectedAt: String? = nil
    ) {
        self.id = id
        self.table = table
        self.key = key
        self.policy = policy
        self.status = status
        self.winner = winner
        self.current = current
        self.incoming = incoming
        self.detectedAt = detectedAt
    }

    /// Decodes the `GET /v1/conflicts` element shape. A `manual` policy reads as provisional `keepHead`
    /// unless the record carries `"provisional":"lww"`.
    public init(json: JSONValue) throws(CoreError) {
        let reader = try JSONObjectReader(json, what: "a conflict", code: .invalidValue)
        let current = try JSONObjectReader(
            try reader.value("current"), what: "current", code: .invalidValue, path: "current")
        let incoming = try JSONObjectReader(
            try reader.value("incoming"), what: "incoming", code: .invalidValue, path: "incoming")
        let provisional = try reader.optionalString("provisional").flatMap(
            ConflictPolicy.ManualProvisional.init(rawValue:))
        let policy: ConflictPolicy
        do throws(CoreError) {
            policy = try ConflictPolicy(name: try reader.string("policy"), manualProvisional: provisional ?? .keepHead)
        } catch {
            throw reader.failure("policy", error.message)
        }
        self.init(
            id: try reader.optionalInt64("id"), table: try reader.string("table"), key: try reader.object("key"),
            policy: policy, status: try reader.enumeration("status", Status.self),
            winner: try reader.enumeration("winner", Winner.self),
            current: Current(
                seq: try current.nonNegativeInt64("seq"), origin: try current.string("origin"),
                op: try current.enumeration("op", ChangeOperation.self), row: try current.optionalObject("row")),
            incoming: Incoming(
                id: try incoming.string("id"), origin: try incoming.string("origin"),
                op: try incoming.enumeration("op", ChangeOperation.self), base: try incoming.nonNegativeInt64("base"),
                row: try incoming.optionalObject("row")),
            detectedAt: try reader.optionalString("detected_at"))
    }

    /// The `GET /v1/conflicts` element; `id`, `detected_at` and (for manual) `provisional` when known.
    public var json: JSONValue {
        var object: JSONObject = [
            "table": .string(table), "key": .object(key), "policy": .string(policy.name),
            "status": .string(status.rawValue), "winner": .string(winner.rawValue),
            "current": [
                "seq": .integer(current.seq), "origin": .string(current.origin), "op": .string(current.op.rawValue),
                "row": current.row.map(JSONValue.object) ?? .null,
            ],
            "incoming": [
                "id": .string(incoming.id), "origin": .string(incoming.origin), "op": .string(incoming.op.rawValue),
                "base": .integer(incoming.base), "row": incoming.row.map(JSONValue.object) ?? .null,
            ],
        ]
        if let id { object["id"] = .integer(id) }
        if let detectedAt { object["detected_at"] = .string(detectedAt) }
        if case .manual(let provisional) = policy { object["provisional"] = .string(provisional.rawValue) }
        return .object(object)
    }
}
