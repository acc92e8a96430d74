/// Conflict detection and resolution at the hub (DESIGN.md steps 2 and 3): pure functions from a change,
/// the key's head, the table's policy and the region priorities to a ``Decision``.
///
/// Detection: no conflict when there is no head, when `base >= head.seq` (the writer saw the head: trigger
/// capture's base is the key's version, WAL capture's the region's apply cursor at the write, which covers every
/// entry before it; this includes re-inserting onto a tombstone it had seen), or when the head is the writer's own and
/// `base >= head.prevForeignSeq` (the region only raced with itself). Anything else is a conflict, whatever
/// the ops: insert-vs-insert and delete-vs-update included.
///
/// Resolution by policy:
/// * `lww`: higher HLC wins; equal HLC → higher region priority; equal priority → the region whose name is
///   smaller in UTF-8 byte order wins (an arbitrary but total and stable order); the same region on both
///   sides with equal HLC (a region racing with itself at one clock value) → the head stays.
/// * `priority`: higher region priority wins, equal → `lww`.
/// * `reject`: the head stays. `manual`: the head stays (or `lww` decides provisionally) and the record is
///   `open`; every other conflict is recorded `auto`.
/// * `merge`: for an update onto a live head, each column the change modified (`before != after`) is applied
///   onto the head's image, unless the head also modified it (`head != before`) and `lww` picks the head.
///   Outcome `merge` (kind `merge`, rewritten), record winner `incoming`, even when the merged row equals the
///   head's image, so the origin still applies it. A degenerate merge (the change is an insert or a delete,
///   or the head is a tombstone) has no columns to combine and falls back to `lww` for the whole row.
///
/// Delta columns (counters) are then combined into the policy's row: see `ConflictResolver+Delta.swift`.
public enum ConflictResolver {
    /// Decides what happens to `change` given the key's `head` (`nil` if the key was never seen);
    /// `deltaColumns` are the table's counter columns with their kinds.
    public static func decide(
        change: Change, head: Head?, policy: ConflictPolicy, priorities: RegionPriorities,
        deltaColumns: [String: DeltaColumn.Kind] = [:]
    ) -> Decision {
        guard let head, isConflict(change: change, head: head) else {
            return Decision(
                change: change, previousHead: head, isConflict: false, outcome: accept(change), conflict: nil)
        }
        let decision = decideByPolicy(change: change, head: head, policy: policy, priorities: priorities)
        if deltaColumns.isEmpty { return decision }
        return applyingDeltas(to: decision, head: head, policy: policy, deltaColumns: deltaColumns)
    }

    /// Step 3 for a conflict, by the table's policy alone.
    private static func decideByPolicy(
        change: Change, head: Head, policy: ConflictPolicy, priorities: RegionPriorities
    ) -> Decision {
        let incomingWins: Bool
        var status = ConflictRecord.Status.auto
        switch policy {
        case .lww:
            incomingWins = lwwPrefersIncoming(change: change, head: head, priorities: priorities)
        case .priority:
            let incomingPriority = priorities[change.region]
            let currentPriority = priorities[head.origin]
            incomingWins =
                incomingPriority != currentPriority
                ? incomingPriority > currentPriority
                : lwwPrefersIncoming(change: change, head: head, priorities: priorities)
        case .reject:
            incomingWins = false
        case .manual(let provisional):
            status = .open
            incomingWins = provisional == .lww && lwwPrefersIncoming(change: change, head: head, priorities: priorities)
        case .merge:
            if let merged = merge(change: change, head: head, priorities: priorities) {
                return conflictDecision(
                    change: change, head: head, policy: policy, status: .auto, winner: .incoming,
                    outcome: .merge(row: merged))
            }
            incomingWins = lwwPrefersIncoming(change: change, head: head, priorities: priorities)
        }
        return conflictDecision(
            change: change, head: head, policy: policy, status: status,
            winner: incomingWins ? .incoming : .current, outcome: incomingWins ? accept(change) : .reject)
    }

    /// Step 2: whether `change` was written without seeing a concurrent foreign write of `head`.
    public static func isConflict(change: Change, head: Head?) -> Bool {
        guard let head else { return false }
        if change.base >= head.seq { return false }
        if head.origin == change.region && change.base >= head.prevForeignSeq { return false }
        return true
    }

    /// Last-writer-wins between the incoming change and the head: HLC, then priority, then the smaller region
    /// name; a full tie keeps the head.
    public static func lwwPrefersIncoming(change: Change, head: Head, priorities: RegionPriorities) -> Bool {
        if change.hlc != head.hlc { return change.hlc > head.hlc }
        let incomingPriority = priorities[change.region]
        let currentPriority = priorities[head.origin]
        if incomingPriority != currentPriority { return incomingPriority > currentPriority }
        return change.region.utf8.lexicographicallyPrecedes(head.origin.utf8)
    }

    /// The column-level merge of an update onto a live head, or `nil` when the merge is degenerate.
    static func merge(change: Change, head: Head, priorities: RegionPriorities) -> JSONObject? {
        guard change.op == .update, var merged = head.image, let before = change.before, let after = change.after
        else { return nil }
        let incomingWinsBoth = lwwPrefersIncoming(change: change, head: head, priorities: priorities)
        let headImage = merged
        for (column, newValue) in after {
            let oldValue = before[column]
            guard oldValue != newValue else { continue }  // the change did not modify this column
            let headModified = headImage[column] != oldValue
            if headModified && !incomingWinsBoth { continue }
            merged[column] = newValue
        }
        return merged
    }

    static func accept(_ change: Change) -> Decision.Outcome {
        .accept(row: change.image, isTombstone: change.image == nil, kind: .change, rewritten: false)
    }

    static func conflictDecision(
        change: Change, head: Head, policy: ConflictPolicy, status: ConflictRecord.Status,
        winner: ConflictRecord.Winner, outcome: Decision.Outcome
    ) -> Decision {
        let record = ConflictRecord(
            table: change.table, key: change.key, policy: policy, status: status, winner: winner,
            current: .init(seq: head.seq, origin: head.origin, op: head.op, row: head.image),
            incoming: .init(id: change.id, origin: change.region, op: change.op, base: change.base, row: change.image))
        return Decision(change: change, previousHead: head, isConflict: true, outcome: outcome, conflict: record)
    }
}
