/// A captured change, pushed by a region's agent to the hub (DESIGN.md "Data model on the wire").
///
/// A `Change` value is always valid: both initializers check that
/// * `id` has the form `"<region>:<n>"` (region non-empty, `n` a decimal `Int64`); ``region`` is derived from it;
/// * `op` agrees with the images: insert has `after` and no `before`, update has both, delete has `before` and
///   no `after` (a JSON `null` image counts as absent);
/// * `key` is a non-empty object of scalar, non-null values, each equal to the same column in every image
///   present. An update therefore cannot change its key: capture must send a key change as delete + insert;
/// * `base` and `hlc` are non-negative; `id`, `tx` and `table` are non-empty and at most
///   ``maxIdentifierBytes`` long.
///
/// `init(json:requiredRegion:keyColumns:)` adds the hub's checks: the change's region is the pushing region's
/// (`.forbiddenRegion` otherwise), and the key's columns are exactly the table's key columns.
public struct Change: Sendable, Hashable {
    /// Longest `id`, `tx`, `table` or key column name accepted, in UTF-8 bytes.
    public static let maxIdentifierBytes = 256

    /// Globally unique and stable across retries: `"<region>:<outbox id>"`.
    public var id: String { storage.id }
    /// The origin transaction, never split when applied elsewhere.
    public var tx: String { storage.tx }
    /// Qualified table name, `"public.items"`.
    public var table: String { storage.table }
    public var op: ChangeOperation { storage.op }
    /// Primary key columns and values.
    public var key: JSONObject { storage.key }
    /// The full row before the change (update and delete).
    public var before: JSONObject? { storage.before }
    /// The full row after the change (insert and update).
    public var after: JSONObject? { storage.after }
    /// Hub `seq` of the row version this write was made on; 0 when the region had never received one.
    public var base: Int64 { storage.base }
    /// Hybrid logical clock of the write, microseconds (see ``HybridLogicalClock``).
    public var hlc: Int64 { storage.hlc }
    /// The origin region, the part of `id` before its last `:`.
    public var region: String { storage.region }
    /// Set when the change re-asserts a row image from log history the hub lost (its store was restored to an
    /// earlier point): how far into that history the image is, the seq the region knew it at. The hub keeps the
    /// furthest of several regions' re-assertions (``ConflictResolver/decideReassert(change:head:headPriority:policy:priorities:)``).
    public var reassert: Int64? { storage.reassert }

    /// The fields, behind one reference: a change is copied into and out of arrays, batches and closures at every
    /// step of a push (the agent's queue and verdicts, the hub's sequencer); copying its ten fields one by one was a
    /// sixth of the retains and releases of the hub's sequencer thread in W1 R=8 (2026-12-07). Immutable.
    private let storage: Storage

    private final class Storage: Sendable {
        let id: String
        let tx: String
        let table: String
        let op: ChangeOperation
        let key: JSONObject
        let before: JSONObject?
        let after: JSONObject?
        let base: Int64
        let hlc: Int64
        let region: String
        let reassert: Int64?

        init(
            id: String, tx: String, table: String, op: ChangeOperation, key: JSONObject, before: JSONObject?,
            after: JSONObject?, base: Int64, hlc: Int64, region: String, reassert: Int64?
        ) {
            (self.id, self.tx, self.table, self.op, self.key) = (id, tx, table, op, key)
            (self.before, self.after, self.base, self.hlc) = (before, after, base, hlc)
            (self.region, self.reassert) = (region, reassert)
        }
    }

    /// Builds and validates a change.
    public init(
        id: String, tx: String, table: String, op: ChangeOperation, key: JSONObject,
        before: JSONObject?, after: JSONObject?, base: Int64, hlc: Int64, reassert: Int64? = nil
    ) throws(CoreError) {
        storage = Storage(
            id: id, tx: tx, table: table, op: op, key: key, before: before, after: after, base: base, hlc: hlc,
            region: try Change.region(ofID: id), reassert: reassert)
        try validate()
    }

    /// Decodes and validates a change; optionally checks it belongs to `requiredRegion` and that its key
    /// columns are exactly `keyColumns` (in any order).
    public init(json: JSONValue, requiredRegion: String? = nil, keyColumns: [String]? = nil) throws(CoreError) {
        let reader = try JSONObjectReader(json, what: "a change", code: .invalidChange)
        try self.init(
            id: try reader.string("id", maxBytes: Change.maxIdentifierBytes),
            tx: try reader.string("tx", maxBytes: Change.maxIdentifierBytes),
            table: try reader.string("table", maxBytes: Change.maxIdentifierBytes),
            op: try reader.enumeration("op", ChangeOperation.self),
            key: try reader.object("key"),
            before: try reader.optionalObject("before"),
            after: try reader.optionalObject("after"),
            base: try reader.int64("base"),
            hlc: try reader.int64("hlc"),
            reassert: try reader.optionalInt64("reassert"))
        if let requiredRegion { try check(region: requiredRegion) }
        if let keyColumns { try check(keyColumns: keyColumns) }
    }

    /// The same change with its base lowered to `point` when above it (a region rewound to `point` after the
    /// hub's store was restored: bases above it named log history the hub lost). Still valid: `point ≥ 0`.
    public func rebased(atMost point: Int64) -> Change {
        guard base > point, point >= 0 else { return self }
        return Change(copying: self, base: point)
    }

    /// The same change with other images (a region re-reading values captured under a shape the hub refused,
    /// README "Schema changes"); the caller keeps the key's columns in them.
    public func withImages(before: JSONObject?, after: JSONObject?) -> Change {
        Change(copying: self, before: .some(before), after: .some(after))
    }

    /// A copy with another base or other images (callers keep it valid: images keep the key's columns).
    init(copying change: Change, base: Int64? = nil, before: JSONObject?? = nil, after: JSONObject?? = nil) {
        storage = Storage(
            id: change.id, tx: change.tx, table: change.table, op: change.op, key: change.key,
            before: before ?? change.before, after: after ?? change.after, base: base ?? change.base, hlc: change.hlc,
            region: change.region, reassert: change.reassert)
    }

    public static func == (a: Change, b: Change) -> Bool {
        a.storage === b.storage
            || (a.id == b.id && a.tx == b.tx && a.table == b.table && a.op == b.op && a.key == b.key
                && a.before == b.before && a.after == b.after && a.base == b.base && a.hlc == b.hlc
                && a.region == b.region && a.reassert == b.reassert)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(id)
        hasher.combine(tx)
        hasher.combine(table)
        hasher.combine(op)
        hasher.combine(key)
        hasher.combine(before)
        hasher.combine(after)
        hasher.combine(base)
        hasher.combine(hlc)
        hasher.combine(region)
        hasher.combine(reassert)
    }

    /// The row image this change leaves: `after`, `nil` for a delete.
    public var image: JSONObject? { after }

    /// Fails with `.forbiddenRegion` unless the change's region is `expected`.
    public func check(region expected: String) throws(CoreError) {
        guard region == expected else {
            throw CoreError(
                code: .forbiddenRegion,
                message: "change \(id) belongs to region \"\(region)\", but was pushed by region \"\(expected)\"",
                field: "id")
        }
    }

    /// Fails unless the key's columns are exactly `keyColumns`.
    public func check(keyColumns: [String]) throws(CoreError) {
        guard key.count == keyColumns.count, keyColumns.allSatisfy({ key[$0] != nil }) else {
            let expected = keyColumns.joined(separator: ", ")
            let actual = JSONSerializer.sortedNames(key).joined(separator: ", ")
            throw CoreError(
                code: .invalidChange,
                message: "key columns (\(actual)) are not the key columns of \(table) (\(expected))", field: "key")
        }
    }

    /// Fails unless every column of `before` and `after` is one of `columns` (the table's registered shape):
    /// an image the hub stored with a column no region has could never be reconciled. (That every image holds
    /// the key's columns with the key's values is part of every change's validity, see the type.)
    public func check(columns: Set<String>) throws(CoreError) {
        for (name, image) in [("before", before), ("after", after)] {
            // The first unknown column by name (as a sorted walk would find it), without sorting every image.
            guard let image, let column = image.keys.filter({ !columns.contains($0) }).min() else { continue }
            throw CoreError(
                code: .invalidChange,
                message: "change \(id): column \"\(column)\" is not a column of \(table) as registered",
                field: "\(name).\(column)")
        }
    }

    /// The wire form; `before`/`after` are present only when the op carries them.
    public var json: JSONValue {
        var object: JSONObject = [
            "id": .string(id), "tx": .string(tx), "table": .string(table), "op": .string(op.rawValue),
            "key": .object(key), "base": .integer(base), "hlc": .integer(hlc),
        ]
        if let before { object["before"] = .object(before) }
        if let after { object["after"] = .object(after) }
        if let reassert { object["reassert"] = .integer(reassert) }
        return .object(object)
    }

    /// Appends ``json`` as a request body carries it: the same members, images unordered
    /// (``JSONSerializer/writeUnordered(_:to:)``), written without building a JSON value first.
    public func writeJSON(to output: inout [UInt8]) {
        func member(_ name: StaticString, first: Bool = false) {
            if !first { output.append(UInt8(ascii: ",")) }
            output.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { output.append(contentsOf: $0) }
            output.append(contentsOf: "\":".utf8)
        }
        output.append(UInt8(ascii: "{"))
        member("id", first: true)
        JSONSerializer.writeString(id, to: &output)
        member("tx")
        JSONSerializer.writeString(tx, to: &output)
        member("table")
        JSONSerializer.writeString(table, to: &output)
        member("op")
        JSONSerializer.writeString(op.rawValue, to: &output)
        member("key")
        JSONSerializer.writeUnordered(.object(key), to: &output)
        member("base")
        JSONSerializer.writeInt64(base, to: &output)
        member("hlc")
        JSONSerializer.writeInt64(hlc, to: &output)
        if let before {
            member("before")
            JSONSerializer.writeUnordered(.object(before), to: &output)
        }
        if let after {
            member("after")
            JSONSerializer.writeUnordered(.object(after), to: &output)
        }
        if let reassert {
            member("reassert")
            JSONSerializer.writeInt64(reassert, to: &output)
        }
        output.append(UInt8(ascii: "}"))
    }
}

extension Change {
    /// The region part of an id `"<region>:<n>"`.
    public static func region(ofID id: String) throws(CoreError) -> String {
        guard id.utf8.count <= maxIdentifierBytes,
            let colon = id.utf8.lastIndex(of: UInt8(ascii: ":")),
            colon != id.utf8.startIndex,
            let number = JSONValue.parseInt64(utf8: id.utf8[id.utf8.index(after: colon)...]), number >= 0
        else {
            throw CoreError(
                code: .invalidChange, message: "id \"\(id)\" is not of the form \"<region>:<n>\"", field: "id")
        }
        return String(id[..<colon])
    }

    private func validate() throws(CoreError) {
        try Change.checkIdentifier(tx, field: "tx")
        try Change.checkIdentifier(table, field: "table")
        guard base >= 0 else { throw Change.invalid("base must not be negative", field: "base") }
        guard hlc >= 0 else { throw Change.invalid("hlc must not be negative", field: "hlc") }
        if let reassert, reassert < 0 { throw Change.invalid("reassert must not be negative", field: "reassert") }
        switch op {
        case .insert:
            guard before == nil else { throw Change.invalid("an insert has no before image", field: "before") }
            guard after != nil else { throw Change.invalid("an insert needs an after image", field: "after") }
        case .update:
            guard before != nil else { throw Change.invalid("an update needs a before image", field: "before") }
            guard after != nil else { throw Change.invalid("an update needs an after image", field: "after") }
        case .delete:
            guard before != nil else { throw Change.invalid("a delete needs a before image", field: "before") }
            guard after == nil else { throw Change.invalid("a delete has no after image", field: "after") }
        }
        try validateKey()
    }

    private func validateKey() throws(CoreError) {
        guard !key.isEmpty else { throw Change.invalid("key must name at least one column", field: "key") }
        for (column, value) in key {
            try Change.checkIdentifier(column, field: "key")
            switch value {
            case .null, .array, .object:
                throw Change.invalid("key column \"\(column)\" must be a non-null scalar", field: "key.\(column)")
            case .bool, .number, .string:
                break
            }
            // Each image in turn, without an array of them per column (every change the hub takes passes here).
            try Change.checkKeyValue(value, of: column, in: before, named: "before")
            try Change.checkKeyValue(value, of: column, in: after, named: "after")
        }
    }

    /// Throws unless `image` (when there is one) holds `value` in key column `column`.
    private static func checkKeyValue(_ value: JSONValue, of column: String, in image: JSONObject?, named name: String)
        throws(CoreError)
    {
        guard let image else { return }
        guard let imageValue = image[column] else {
            throw Change.invalid("\(name) lacks key column \"\(column)\"", field: "\(name).\(column)")
        }
        guard imageValue == value else {
            throw Change.invalid(
                "\(name).\(column) differs from key.\(column) (key changes must be captured as "
                    + "delete + insert)", field: "\(name).\(column)")
        }
    }

    private static func checkIdentifier(_ text: String, field: String) throws(CoreError) {
        guard !text.isEmpty else { throw invalid("\(field) must not be empty", field: field) }
        guard text.utf8.count <= maxIdentifierBytes else {
            throw invalid("\(field) is longer than \(maxIdentifierBytes) bytes", field: field)
        }
        // Postgres text (where the hub stores tx, table and key columns) cannot hold a NUL byte: one would fail
        // the sequencer's whole group-commit batch, so it is refused here with a 400.
        guard !text.utf8.contains(0) else { throw invalid("\(field) must not contain a NUL byte", field: field) }
    }

    private static func invalid(_ message: String, field: String) -> CoreError {
        CoreError(code: .invalidChange, message: message, field: field)
    }
}
