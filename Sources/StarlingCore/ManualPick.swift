/// An operator's choice for a conflict (`POST /v1/conflicts/{id}/resolve`): `{"pick":"current"}`,
/// `{"pick":"incoming"}` or `{"row":{…}}`.
public enum ManualPick: Sendable, Hashable {
    /// The conflict's current side (the head it ran into, as recorded).
    case current
    /// The conflict's incoming side (the pushed change's image).
    case incoming
    /// A row the operator wrote; it must carry the conflict's key.
    case row(JSONObject)

    public init(json: JSONValue) throws(CoreError) {
        let reader = try JSONObjectReader(json, what: "a resolution", code: .invalidResolution)
        if let row = try reader.optionalObject("row") {
            guard reader.object["pick"] == nil else {
                throw reader.failure("pick", "give either \"pick\" or \"row\", not both")
            }
            self = .row(row)
            return
        }
        switch try reader.string("pick") {
        case "current": self = .current
        case "incoming": self = .incoming
        case let other: throw reader.failure("pick", "\"pick\" must be \"current\" or \"incoming\", not \"\(other)\"")
        }
    }

    public var json: JSONValue {
        switch self {
        case .current: ["pick": "current"]
        case .incoming: ["pick": "incoming"]
        case .row(let row): ["row": .object(row)]
        }
    }
}
