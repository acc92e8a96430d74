public import StarlingCore

/// One row of `starling.outbox`: a captured change waiting for its verdict.
public struct OutboxChange: Sendable, Hashable {
    /// `outbox.id`: the local order, and the number in the wire id `"<region>:<id>"`.
    public var id: Int64
    /// The origin transaction (`txid_current()` of the application's transaction).
    public var tx: Int64
    public var table: String
    public var op: ChangeOperation
    public var key: JSONObject
    public var before: JSONObject?
    public var after: JSONObject?
    /// The key's version seq when the change was captured (0 = never synced).
    public var base: Int64
    /// `clock_timestamp()` at capture, Unix microseconds.
    public var capturedAt: Int64
    /// The HLC assigned before the first push; nil until then.
    public var hlc: Int64?
    /// Approximate size on the wire (the JSON texts as read plus a fixed overhead), for batch limits.
    public var approximateBytes: Int
    /// Set on a row re-asserting an image after a rewind (``Change/reassert``).
    public var reassert: Int64? = nil

    public init(
        id: Int64, tx: Int64, table: String, op: ChangeOperation, key: JSONObject, before: JSONObject?,
        after: JSONObject?, base: Int64, capturedAt: Int64, hlc: Int64?, approximateBytes: Int
    ) {
        self.id = id
        self.tx = tx
        self.table = table
        self.op = op
        self.key = key
        self.before = before
        self.after = after
        self.base = base
        self.capturedAt = capturedAt
        self.hlc = hlc
        self.approximateBytes = approximateBytes
    }

    /// The wire change (`hlc` must be assigned).
    func change(region: String) throws(CoreError) -> Change {
        try Change(
            id: ChangeID(origin: region, number: id).description,
            tx: ChangeID(origin: region, number: tx).description, table: table, op: op, key: key, before: before,
            after: after, base: base, hlc: hlc ?? capturedAt, reassert: reassert)
    }
}

/// Chooses the next push batch from outbox rows: whole origin transactions only, in `id` order, bounded by
/// a count and a byte budget. A transaction larger than either bound goes alone (it cannot be split).
/// Pure.
public enum OutboxBatcher {
    /// `rows` must contain every row of each transaction it mentions (ascending `id`). Transactions are
    /// taken in the order of their first row while both bounds hold; the first is always taken.
    public static func select(_ rows: [OutboxChange], maxCount: Int, maxBytes: Int) -> [OutboxChange] {
        var order: [Int64] = []
        var groups: [Int64: [OutboxChange]] = [:]
        for row in rows {
            if groups[row.tx] == nil { order.append(row.tx) }
            groups[row.tx, default: []].append(row)
        }
        var chosen: [OutboxChange] = []
        var bytes = 0
        for tx in order {
            let group = groups[tx] ?? []
            let groupBytes = group.reduce(0) { $0 + $1.approximateBytes }
            if !chosen.isEmpty && (chosen.count + group.count > maxCount || bytes + groupBytes > maxBytes) { break }
            chosen.append(contentsOf: group)
            bytes += groupBytes
        }
        return chosen.sorted { $0.id < $1.id }
    }
}
