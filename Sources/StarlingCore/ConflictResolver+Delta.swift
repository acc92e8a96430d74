/// Delta columns: counters that add up across regions instead of one side winning.
///
/// Applies to a conflict of an `update` onto a live head (both sides have the row; an insert has no `before`
/// to take a difference from, a delete has no counter left, so those go by the policy alone). The policy first
/// decides the row as usual (``ConflictResolver/decide(change:head:policy:priorities:deltaColumns:)``); then
/// every delta column present in the head, `before` and `after` becomes `head + (after − before)`, computed
/// exactly (``ExactDecimal``) and written back in the head value's JSON form (number or string):
///
/// * No delta column present in all three images: the policy's decision, unchanged.
/// * A delta column null in the head, `before` or `after`: that column keeps the policy's row value.
/// * Otherwise, whether the policy accepted, merged or rejected: `merge` with the combined row (kind `merge`,
///   rewritten, so the origin applies it too); the record keeps the policy's winner and status (`manual`
///   stays `open`).
/// * A value that is not an exact number of its kind, or a sum outside the kind's range (smallint, integer,
///   bigint): the head stays and the conflict is `open` for an operator, winner `current`. No increment is
///   silently lost and no region is sent a row it cannot store.
///
/// With no conflict the change is accepted as pushed: its `after` already holds its own increment on top of
/// the head it had seen.
extension ConflictResolver {
    /// The result of combining delta columns into a policy's row.
    enum DeltaCombination: Equatable {
        /// No delta column applies: keep the policy's decision.
        case notApplicable
        /// The combined row.
        case combined(JSONObject)
        /// A value is not exact or the sum overflows: hand the conflict to an operator.
        case notComputable
    }

    /// Combines the delta columns of `change` onto `row` (the policy's choice), given the head image.
    static func combineDeltas(
        change: Change, headImage: JSONObject?, row: JSONObject?, deltaColumns: [String: DeltaColumn.Kind]
    ) -> DeltaCombination {
        guard !deltaColumns.isEmpty, change.op == .update, let headImage, var row, let before = change.before,
            let after = change.after
        else { return .notApplicable }
        var applied = false
        for (column, kind) in deltaColumns.sorted(by: { $0.key < $1.key }) {
            guard let headValue = headImage[column], let old = before[column], let new = after[column] else { continue }
            applied = true
            if headValue.isNull || old.isNull || new.isNull { continue }
            guard let sum = delta(head: headValue, before: old, after: new, kind: kind) else { return .notComputable }
            row[column] = sum
        }
        return applied ? .combined(row) : .notApplicable
    }

    /// `head + (after − before)` in `kind`, in the head value's JSON form; `nil` when not exact or out of range.
    static func delta(head: JSONValue, before: JSONValue, after: JSONValue, kind: DeltaColumn.Kind) -> JSONValue? {
        guard let h = exact(head), let b = exact(before), let a = exact(after) else { return nil }
        let sum = h + (a - b)
        if let range = kind.range {
            guard h.scale == 0, b.scale == 0, a.scale == 0, let value = sum.int64Value, range.contains(value) else {
                return nil
            }
        }
        if case .string = head { return .string(sum.text) }
        return .number(sum.text)
    }

    private static func exact(_ value: JSONValue) -> ExactDecimal? {
        switch value {
        case .number(let text), .string(let text): ExactDecimal(text)
        default: nil
        }
    }

    /// The policy's `decision` with delta columns combined in (see the table above).
    static func applyingDeltas(
        to decision: Decision, head: Head, policy: ConflictPolicy, deltaColumns: [String: DeltaColumn.Kind]
    ) -> Decision {
        guard let record = decision.conflict else { return decision }
        let change = decision.change
        let row: JSONObject?
        switch decision.outcome {
        case .accept(let image, _, _, _): row = image
        case .merge(let image): row = image
        case .reject, .unchanged: row = head.image
        }
        switch combineDeltas(change: change, headImage: head.image, row: row, deltaColumns: deltaColumns) {
        case .notApplicable:
            return decision
        case .combined(let combined):
            return conflictDecision(
                change: change, head: head, policy: policy, status: record.status, winner: record.winner,
                outcome: .merge(row: combined))
        case .notComputable:
            return conflictDecision(
                change: change, head: head, policy: policy, status: .open, winner: .current, outcome: .reject)
        }
    }
}
