public import StarlingCore

/// Where a captured change sits in the decoded stream: its transaction's commit LSN, then its own number
/// (``WALChangeNumber``). Decoding follows commit order, so positions grow in stream order.
public struct StreamPosition: Sendable, Hashable, Comparable {
    public var commitLSN: UInt64
    public var number: Int64

    public init(commitLSN: UInt64, number: Int64) {
        self.commitLSN = commitLSN
        self.number = number
    }

    public static func < (a: StreamPosition, b: StreamPosition) -> Bool {
        (a.commitLSN, a.number) < (b.commitLSN, b.number)
    }
}

/// The number in a WAL-captured change's id `"<region>:<n>"`: stable when the stream is decoded again after a
/// restart (the WAL record's LSN, and the change's place among the changes of one multi-insert record), and
/// apart from the outbox ids of trigger capture (bit 62 set). Needs LSNs below 2^53 (8 PiB of WAL).
public enum WALChangeNumber {
    /// Changes one WAL record can carry (a multi-insert writes at most one heap page's tuples, ≤ 291).
    public static let perRecord: Int64 = 512

    /// The number in a WAL-captured transaction's `tx`: its commit LSN with bit 62 set (apart from the
    /// `txid_current()` numbers of trigger capture).
    public static func transaction(commitLSN: UInt64) -> Int64 {
        (1 << 62) | Int64(commitLSN & ((1 << 62) - 1))
    }

    public static func make(recordLSN: UInt64, ordinal: Int) -> Int64? {
        guard recordLSN < 1 << 53, ordinal >= 0, Int64(ordinal) < perRecord else { return nil }
        return (1 << 62) | Int64(recordLSN) * perRecord | Int64(ordinal)
    }
}

/// A change's `base` in WAL capture, computed from the decoded stream alone (DESIGN.md "Engine v2", base
/// without version rows). Pure; fed in stream order by the agent's decoder.
///
/// Every transaction the agent commits (an apply, the handling of verdicts, a bootstrap) starts with a marker
/// (``Marker``, a transactional logical message), so at each point of the stream the ledger knows:
/// * `cursor`: the pull cursor as of that point: every entry up to it was applied or decided about;
/// * `versions`: keys the region holds at a version above the cursor (the image of a verdict: a rejected
///   change's winner, a merged image, an accepted change's own seq);
/// * `pending`: keys with a local change whose verdict is not handled yet at that point (entries of such a
///   key are deferred, so the key keeps the base of that change).
/// A local change's base is then the pending change's base when its key is pending, else
/// `max(cursor, versions[key])`. A transaction of the agent that writes a pending key (an apply that took
/// the row lock right after the application's commit, before the change was decoded) overwrote that change
/// locally: ``own(marker:writtenKeys:)`` names it, and an `accepted` verdict for it must write its image again.
public struct CaptureLedger: Sendable, Hashable {
    public private(set) var cursor: Int64
    public private(set) var versions: [TableKey: Int64]
    public private(set) var pending: [TableKey: Pending]
    /// Pending keys in the order they were captured, one item per key and transaction (an item whose key was
    /// captured again in a later transaction is skipped when popped).
    private var pendingOrder: [(position: StreamPosition, key: TableKey)] = []
    private var pendingOrderHead = 0
    private var versionsPrunedAt = 0

    /// A key's undecided local change(s): the base they keep, and the newest one.
    public struct Pending: Sendable, Hashable {
        public var base: Int64
        public var newest: StreamPosition
    }

    /// What an agent transaction announces at its start.
    public struct Marker: Sendable, Hashable {
        /// The pull cursor after this transaction (nil: unchanged).
        public var cursor: Int64?
        /// Verdicts handled in this transaction, for every change up to this position.
        public var handledThrough: StreamPosition?
        /// Versions this transaction gives keys (verdict images).
        public var versions: [TableKey: Int64]
        /// The newest HLC of the entries this transaction applied: the decoder's clock observes it here, so a
        /// later local write stamps above what the region had seen, the same way on every decoding.
        public var observedHLC: Int64?
        /// The region rewound to this seq (the hub's store was restored to an earlier point, AgentStore+Rewind):
        /// the cursor moves back to it, and versions and pending bases above it come down to it.
        public var rewind: Int64?
        /// An apply's promise: it writes no key whose local change, decoded at or before this position, is still
        /// pending (it deferred them). Then its rows can overwrite only changes decoded after this position, and
        /// the decoder skips them without decoding when there is none (``CaptureLedger/hasPending(after:)``).
        public var deferredThrough: StreamPosition?

        public init(
            cursor: Int64? = nil, handledThrough: StreamPosition? = nil, versions: [TableKey: Int64] = [:],
            observedHLC: Int64? = nil, rewind: Int64? = nil, deferredThrough: StreamPosition? = nil
        ) {
            self.cursor = cursor
            self.handledThrough = handledThrough
            self.versions = versions
            self.observedHLC = observedHLC
            self.rewind = rewind
            self.deferredThrough = deferredThrough
        }
    }

    public init(cursor: Int64, versions: [TableKey: Int64] = [:], pending: [TableKey: Pending] = [:]) {
        self.cursor = cursor
        self.versions = versions
        self.pending = pending
        pendingOrder = pending.map { ($0.value.newest, $0.key) }.sorted { $0.position < $1.position }
    }

    /// The base of a local change of `key` decoded at `position`, which becomes pending.
    public mutating func capture(_ key: TableKey, at position: StreamPosition) -> Int64 {
        let previous = pending[key]
        let base = previous?.base ?? max(cursor, versions[key] ?? 0)
        pending[key] = Pending(base: base, newest: position)
        // One item per key and transaction (a large transaction writing a key several times adds one): verdicts
        // are handled for whole transactions, so a `through` at or past one change of a transaction is past all
        // of them (``settle(through:)``).
        if previous?.newest.commitLSN != position.commitLSN { pendingOrder.append((position, key)) }
        return base
    }

    /// Applies an agent transaction: its marker, then its writes. Returns the newest pending change of every
    /// written key that is still pending after the marker: changes this transaction overwrote locally.
    public mutating func own(marker: Marker, writtenKeys: some Sequence<TableKey>) -> [StreamPosition] {
        if let point = marker.rewind { rewind(to: point) }
        if let through = marker.handledThrough { settle(through: through) }
        for (key, version) in marker.versions { versions[key] = max(versions[key] ?? 0, version) }
        if let next = marker.cursor, next > cursor {
            cursor = next
            pruneVersions()
        }
        var overwritten: [StreamPosition] = []
        for key in writtenKeys {
            if let pending = pending[key] { overwritten.append(pending.newest) }
        }
        return overwritten
    }

    /// Whether a key may be pending with a local change decoded after `position` (conservative: the newest
    /// capture still tracked, settled or not).
    public func hasPending(after position: StreamPosition) -> Bool {
        guard !pending.isEmpty, pendingOrderHead < pendingOrder.count, let newest = pendingOrder.last?.position else {
            return false
        }
        return newest > position
    }

    /// Everything above `point` referred to log history the hub lost: the cursor goes back to it (when beyond),
    /// versions above it are dropped (the cursor covers them) and pending bases above it come down to it.
    mutating func rewind(to point: Int64) {
        cursor = min(cursor, point)
        versions = versions.filter { $0.value <= point }
        for (key, value) in pending where value.base > point { pending[key]?.base = point }
    }

    /// Keys whose newest change is at or before `through` are pending no more.
    private mutating func settle(through: StreamPosition) {
        while pendingOrderHead < pendingOrder.count, pendingOrder[pendingOrderHead].position <= through {
            let key = pendingOrder[pendingOrderHead].key
            // A key changed again in a later transaction keeps pending: that transaction has an item of its own.
            if let newest = pending[key]?.newest, newest <= through { pending[key] = nil }
            pendingOrderHead += 1
        }
        if pendingOrderHead > 4096 && pendingOrderHead * 2 > pendingOrder.count {
            pendingOrder.removeFirst(pendingOrderHead)
            pendingOrderHead = 0
        }
    }

    /// Drops versions the cursor has reached, once the map doubled since the last time (amortised O(1)).
    private mutating func pruneVersions() {
        guard versions.count > 2 * versionsPrunedAt + 1024 else { return }
        versions = versions.filter { $0.value > cursor }
        versionsPrunedAt = versions.count
    }

    public static func == (a: CaptureLedger, b: CaptureLedger) -> Bool {
        a.cursor == b.cursor && a.versions.filter { $0.value > a.cursor } == b.versions.filter { $0.value > b.cursor }
            && a.pending == b.pending
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(cursor)
        hasher.combine(pending.count)
    }
}



// MARK: - Persisted forms

extension CaptureLedger {
    /// `{"cursor":N,"versions":[[table,key,seq]…],"pending":[[table,key,base,commitLSN,number]…]}`: the state
    /// at a confirmed stream position, stored with it (``WALState``) so decoding resumes there.
    public var json: JSONValue {
        .object([
            "cursor": .integer(cursor),
            "versions": .array(
                versions.filter { $0.value > cursor }.map { .array([.string($0.key.table), .object($0.key.key), .integer($0.value)]) }),
            "pending": .array(
                pending.map {
                    .array([
                        .string($0.key.table), .object($0.key.key), .integer($0.value.base),
                        .integer(Int64(bitPattern: $0.value.newest.commitLSN)), .integer($0.value.newest.number),
                    ])
                }),
        ])
    }

    /// The canonical text of ``json``, written straight into bytes (a ledger after a large transaction holds a
    /// pending base or a version for each of its keys).
    public var text: String {
        var out: [UInt8] = []
        out.append(contentsOf: #"{"cursor":"#.utf8)
        JSONSerializer.writeInt64(cursor, to: &out)
        out.append(contentsOf: #","pending":["#.utf8)
        var first = true
        for (key, value) in pending {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            Self.writeItem(key, [value.base, Int64(bitPattern: value.newest.commitLSN), value.newest.number], to: &out)
        }
        out.append(contentsOf: #"],"versions":["#.utf8)
        first = true
        for (key, seq) in versions where seq > cursor {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            Self.writeItem(key, [seq], to: &out)
        }
        out.append(contentsOf: "]}".utf8)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends `[table, key, numbers…]`, the item form of the ledger's and the markers' lists.
    static func writeItem(_ key: TableKey, _ numbers: [Int64], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        JSONSerializer.writeString(key.table, to: &out)
        out.append(UInt8(ascii: ","))
        key.writeKeyJSON(to: &out)
        for number in numbers {
            out.append(UInt8(ascii: ","))
            JSONSerializer.writeInt64(number, to: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    public init(json: JSONValue) throws(AgentError) {
        func bad() -> AgentError { AgentError(code: .capture, message: "the stored WAL capture state is malformed") }
        guard let cursor = json["cursor"]?.int64Value, let versionItems = json["versions"]?.arrayValue,
            let pendingItems = json["pending"]?.arrayValue
        else { throw bad() }
        var versions: [TableKey: Int64] = [:]
        for item in versionItems {
            guard let table = item[0]?.stringValue, let key = item[1]?.objectValue, let seq = item[2]?.int64Value
            else { throw bad() }
            versions[TableKey(table: table, key: key)] = seq
        }
        var pending: [TableKey: Pending] = [:]
        for item in pendingItems {
            guard let table = item[0]?.stringValue, let key = item[1]?.objectValue, let base = item[2]?.int64Value,
                let lsn = item[3]?.int64Value, let number = item[4]?.int64Value
            else { throw bad() }
            pending[TableKey(table: table, key: key)] = Pending(
                base: base, newest: StreamPosition(commitLSN: UInt64(bitPattern: lsn), number: number))
        }
        self.init(cursor: cursor, versions: versions, pending: pending)
    }
}

extension CaptureLedger.Marker {
    /// The logical message prefix of markers.
    public static let prefix = "starling"

    /// `{"c":cursor,"d":[commitLSN,number],"o":observedHLC,"h":[commitLSN,number],"r":rewind,"v":[[table,key,seq]…]}`
    /// (absent members: nothing to say).
    public var json: JSONValue {
        var object: JSONObject = [:]
        if let cursor { object["c"] = .integer(cursor) }
        if let observedHLC { object["o"] = .integer(observedHLC) }
        if let handledThrough { object["h"] = positionJSON(handledThrough) }
        if let rewind { object["r"] = .integer(rewind) }
        if let deferredThrough { object["d"] = positionJSON(deferredThrough) }
        if !versions.isEmpty {
            object["v"] = .array(versions.map { .array([.string($0.key.table), .object($0.key.key), .integer($0.value)]) })
        }
        return .object(object)
    }

    /// The canonical text of ``json``, written straight into bytes: a marker handling a large transaction's
    /// verdicts carries a version for each of its keys, and a ``JSONValue`` of a million items costs far more.
    public var text: String {
        var out: [UInt8] = [UInt8(ascii: "{")]
        func member(_ name: String) {
            if out.count > 1 { out.append(UInt8(ascii: ",")) }
            JSONSerializer.writeString(name, to: &out)
            out.append(UInt8(ascii: ":"))
        }
        if let cursor {
            member("c")
            JSONSerializer.writeInt64(cursor, to: &out)
        }
        func position(_ position: StreamPosition) {
            out.append(UInt8(ascii: "["))
            JSONSerializer.writeInt64(Int64(bitPattern: position.commitLSN), to: &out)
            out.append(UInt8(ascii: ","))
            JSONSerializer.writeInt64(position.number, to: &out)
            out.append(UInt8(ascii: "]"))
        }
        if let deferredThrough {
            member("d")
            position(deferredThrough)
        }
        if let handledThrough {
            member("h")
            position(handledThrough)
        }
        if let observedHLC {
            member("o")
            JSONSerializer.writeInt64(observedHLC, to: &out)
        }
        if let rewind {
            member("r")
            JSONSerializer.writeInt64(rewind, to: &out)
        }
        if !versions.isEmpty {
            member("v")
            out.append(UInt8(ascii: "["))
            for (position, (key, seq)) in versions.enumerated() {
                if position > 0 { out.append(UInt8(ascii: ",")) }
                CaptureLedger.writeItem(key, [seq], to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    public init(json: JSONValue) throws(AgentError) {
        func bad() -> AgentError { AgentError(code: .capture, message: "a Starling marker in the WAL is malformed") }
        guard json.objectValue != nil else { throw bad() }
        self.init()
        if let cursor = json["c"] {
            guard let value = cursor.int64Value else { throw bad() }
            self.cursor = value
        }
        if let observed = json["o"] {
            guard let value = observed.int64Value else { throw bad() }
            observedHLC = value
        }
        if let through = json["h"] {
            guard let position = streamPosition(through) else { throw bad() }
            handledThrough = position
        }
        if let through = json["d"] {
            guard let position = streamPosition(through) else { throw bad() }
            deferredThrough = position
        }
        if let point = json["r"] {
            guard let value = point.int64Value else { throw bad() }
            rewind = value
        }
        for item in json["v"]?.arrayValue ?? [] {
            guard let table = item[0]?.stringValue, let key = item[1]?.objectValue, let seq = item[2]?.int64Value
            else { throw bad() }
            versions[TableKey(table: table, key: key)] = seq
        }
    }
}

/// A stream position in a marker: `[commitLSN, number]`.
private func positionJSON(_ position: StreamPosition) -> JSONValue {
    .array([.integer(Int64(bitPattern: position.commitLSN)), .integer(position.number)])
}

private func streamPosition(_ json: JSONValue) -> StreamPosition? {
    guard json.arrayValue?.count == 2, let lsn = json[0]?.int64Value, let number = json[1]?.int64Value else {
        return nil
    }
    return StreamPosition(commitLSN: UInt64(bitPattern: lsn), number: number)
}
