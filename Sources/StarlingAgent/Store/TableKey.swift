public import StarlingCore

/// A row's identity across regions: its table and primary key.
///
/// Hashed and compared by one string made once, at init (the table, a NUL, the key's canonical JSON), and a 64-bit
/// FNV-1a hash of it: the agent looks keys up in several maps per entry it applies or captures (pending changes,
/// versions above the cursor, its own writes). Hashing or comparing the key's dictionary of JSON values each time
/// was a tenth of its CPU in the replication benchmark; hashing and comparing the string in every probe still was
/// about a tenth of an agent's samples in W1 R=8 (2026-12-06), where the hash now rejects a bucket's other key
/// before the strings are compared.
public struct TableKey: Hashable, Sendable {
    public let table: String
    public let key: JSONObject
    private let identity: String
    private let code: UInt64

    public init(table: String, key: JSONObject) {
        self.table = table
        self.key = key
        // Room for a usual key up front: growing the array as the key is written was one more allocation a key.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(table.utf8.count + 48)
        bytes.append(contentsOf: table.utf8)
        bytes.append(0)
        JSONSerializer.writeObject(key, to: &bytes)
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        code = hash
        identity = String(decoding: bytes, as: UTF8.self)
    }

    public static func == (a: TableKey, b: TableKey) -> Bool { a.code == b.code && a.identity == b.identity }

    /// Appends the key's canonical JSON, the bytes ``JSONSerializer/writeObject(_:to:)`` writes for `key`, copied from
    /// the identity made at init: markers and written-keys lists write every key a page applies, and serializing the
    /// object again (its members sorted) was most of their cost.
    public func writeKeyJSON(to out: inout [UInt8]) {
        var identity = identity
        let start = table.utf8.count + 1
        identity.withUTF8 { bytes in out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...])) }
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

extension LogEntry {
    /// The row the entry writes.
    var tableKey: TableKey { TableKey(table: table, key: key) }
}
