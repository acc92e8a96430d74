public import StarlingCore

/// A row's identity across regions: its table and primary key.
///
/// Hashed and compared by one string made once, at init (the table, a NUL, the key's canonical JSON): the agent
/// looks keys up in several maps per entry it applies or captures (pending changes, versions above the cursor,
/// its own writes), and hashing or comparing the key's dictionary of JSON values each time was a tenth of its
/// CPU in the replication benchmark.
public struct TableKey: Hashable, Sendable {
    public let table: String
    public let key: JSONObject
    private let identity: String

    public init(table: String, key: JSONObject) {
        self.table = table
        self.key = key
        var bytes = Array(table.utf8)
        bytes.append(0)
        JSONSerializer.writeObject(key, to: &bytes)
        identity = String(decoding: bytes, as: UTF8.self)
    }

    public static func == (a: TableKey, b: TableKey) -> Bool { a.identity == b.identity }

    public func hash(into hasher: inout Hasher) { hasher.combine(identity) }
}

extension LogEntry {
    /// The row the entry writes.
    var tableKey: TableKey { TableKey(table: table, key: key) }
}
