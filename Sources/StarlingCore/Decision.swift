/// What the hub does with one pushed change: the resolver's answer (see ``ConflictResolver``).
///
/// The hub finishes it with the `seq` it assigns: ``logEntry(seq:)`` and ``newHead(seq:)`` for an accepted
/// or merged change (both `nil` for a rejected one), ``verdict(seq:conflictID:)`` for the answer, and
/// ``conflict`` (non-nil exactly when ``isConflict``) to record with the id its database assigns.
public struct Decision: Sendable, Hashable {
    /// What happens to the change.
    public enum Outcome: Sendable, Hashable {
        /// Appended as pushed: `row` is the change's image (`nil` for a delete, then `isTombstone`).
        case accept(row: JSONObject?, isTombstone: Bool, kind: LogEntryKind, rewritten: Bool)
        /// Appended with a merged image (kind `merge`, rewritten): the origin must apply it too.
        case merge(row: JSONObject)
        /// Not appended; the head stays.
        case reject
        /// Not appended: the head already holds the change's image (a re-assertion the hub has from another
        /// region, ``ConflictResolver/decideReassert(change:head:headPriority:policy:priorities:)``); answered as
        /// accepted at the head's seq, so the region records that version and skips the entry that carries it.
        case unchanged
    }

    /// The change decided on.
    public let change: Change
    /// The head before the decision; `nil` when the key had never been seen.
    public let previousHead: Head?
    /// Whether the change was written without seeing a concurrent foreign write.
    public let isConflict: Bool
    public let outcome: Outcome
    /// The record to store, exactly when ``isConflict``.
    public let conflict: ConflictRecord?

    public init(change: Change, previousHead: Head?, isConflict: Bool, outcome: Outcome, conflict: ConflictRecord?) {
        precondition(isConflict == (conflict != nil), "a decision records a conflict exactly when there is one")
        self.change = change
        self.previousHead = previousHead
        self.isConflict = isConflict
        self.outcome = outcome
        self.conflict = conflict
    }

    /// Whether the outcome appends a log entry (accept or merge).
    public var appendsEntry: Bool {
        switch outcome {
        case .reject, .unchanged: false
        case .accept, .merge: true
        }
    }

    /// HLC of the new version: the change's for an accept, the larger of both sides for a merge.
    private var resultingHLC: Int64 {
        if case .merge = outcome, let previousHead { return max(change.hlc, previousHead.hlc) }
        return change.hlc
    }

    /// The log entry to append at `seq`; `nil` for a rejection.
    public func logEntry(seq: Int64) -> LogEntry? {
        let row: JSONObject?
        let kind: LogEntryKind
        let rewritten: Bool
        let op: ChangeOperation
        switch outcome {
        case .reject, .unchanged: return nil
        case .accept(let image, _, let acceptKind, let acceptRewritten):
            (row, kind, rewritten, op) = (image, acceptKind, acceptRewritten, change.op)
        case .merge(let image):
            (row, kind, rewritten, op) = (image, .merge, true, .update)
        }
        return LogEntry(
            seq: seq, origin: change.region, id: change.id, tx: change.tx, table: change.table, op: op,
            key: change.key, row: row, hlc: resultingHLC, kind: kind, rewritten: rewritten)
    }

    /// The head to store after appending at `seq`; `nil` for a rejection (the head stays).
    public func newHead(seq: Int64) -> Head? {
        let image: JSONObject?
        let op: ChangeOperation
        switch outcome {
        case .reject, .unchanged: return nil
        case .accept(let row, _, _, _): (image, op) = (row, change.op)
        case .merge(let row): (image, op) = (row, .update)
        }
        return Head(
            seq: seq, origin: change.region, hlc: resultingHLC, image: image,
            prevForeignSeq: Head.prevForeignSeq(after: previousHead, newOrigin: change.region), op: op)
    }

    /// The verdict for the change. `seq` is required for accept and merge, `conflictID` for reject
    /// (a hub bug otherwise, hence a precondition).
    public func verdict(seq: Int64?, conflictID: Int64?) -> Verdict {
        switch outcome {
        case .accept:
            guard let seq else { preconditionFailure("an accepted change needs its seq") }
            return Verdict(id: change.id, outcome: .accepted(seq: seq))
        case .merge(let row):
            guard let seq else { preconditionFailure("a merged change needs its seq") }
            return Verdict(id: change.id, outcome: .merged(seq: seq, row: row))
        case .unchanged:
            guard let previousHead else { preconditionFailure("an unchanged head needs the head") }
            return Verdict(id: change.id, outcome: .accepted(seq: previousHead.seq))
        case .reject:
            guard let conflictID, let previousHead else {
                preconditionFailure("a rejected change needs its conflict id and the head that beat it")
            }
            return Verdict(
                id: change.id, outcome: .rejected(conflict: conflictID, winner: Verdict.Winner(head: previousHead)))
        }
    }
}

extension Head {
    /// `prev_foreign_seq` of a head written by `newOrigin` on top of `previous`: the previous head's seq when it
    /// was foreign to `newOrigin`, else the previous head's own `prev_foreign_seq`; 0 for a first version.
    public static func prevForeignSeq(after previous: Head?, newOrigin: String) -> Int64 {
        guard let previous else { return 0 }
        return previous.origin != newOrigin ? previous.seq : previous.prevForeignSeq
    }
}
