/// The hub's latest authoritative version of one key (DESIGN.md "Conflict detection at the hub").
///
/// Invariant: `isTombstone == (image == nil)`; ``init(seq:origin:hlc:image:prevForeignSeq:op:)`` derives
/// the flag from the image so the two cannot disagree.
public struct Head: Sendable, Hashable {
    /// Seq of the log entry that wrote this version.
    public var seq: Int64
    /// Region (or ``LogEntry/hubOrigin``) of that entry.
    public var origin: String
    /// HLC of that version; for a merge, the larger of both sides.
    public var hlc: Int64
    /// The full row, `nil` when the key is deleted.
    public var image: JSONObject?
    /// Seq of the last entry for this key by a region other than `origin`; 0 when there was none.
    public var prevForeignSeq: Int64
    /// The operation of the entry that wrote this version (reported in conflict records as the current side's
    /// op). Heads stored without it can pass `nil`: a tombstone then reads as `delete`, a row as `update`.
    public var op: ChangeOperation

    public var isTombstone: Bool { image == nil }

    public init(
        seq: Int64, origin: String, hlc: Int64, image: JSONObject?, prevForeignSeq: Int64,
        op: ChangeOperation? = nil
    ) {
        self.seq = seq
        self.origin = origin
        self.hlc = hlc
        self.image = image
        self.prevForeignSeq = prevForeignSeq
        self.op = op ?? (image == nil ? .delete : .update)
    }

    /// Decodes the form ``json`` writes (for snapshots and admin tools).
    public init(json: JSONValue) throws(CoreError) {
        let reader = try JSONObjectReader(json, what: "a head", code: .invalidValue)
        self.init(
            seq: try reader.nonNegativeInt64("seq"), origin: try reader.string("origin"),
            hlc: try reader.int64("hlc"), image: try reader.optionalObject("row"),
            prevForeignSeq: try reader.nonNegativeInt64("prev_foreign_seq"),
            op: try reader.enumeration("op", ChangeOperation.self))
    }

    /// `{"seq","origin","hlc","op","row"|null,"tombstone","prev_foreign_seq"}`.
    public var json: JSONValue {
        .object([
            "seq": .integer(seq), "origin": .string(origin), "hlc": .integer(hlc), "op": .string(op.rawValue),
            "row": image.map(JSONValue.object) ?? .null, "tombstone": .bool(isTombstone),
            "prev_foreign_seq": .integer(prevForeignSeq),
        ])
    }
}
