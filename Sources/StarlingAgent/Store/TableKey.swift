public import StarlingCore

/// A row's identity across regions: its table and primary key.
public struct TableKey: Hashable, Sendable {
    public var table: String
    public var key: JSONObject

    public init(table: String, key: JSONObject) {
        self.table = table
        self.key = key
    }
}
