extension ConflictResolver {
    /// Decides a re-assertion (``Change/reassert``): a region re-asserting a row image from log history the hub
    /// lost when its store was restored to an earlier point (README "Restoring the hub's store"). Several regions
    /// may re-assert the same key, each with the image as far as it had pulled; the furthest must win whatever
    /// order they arrive in, and none of that is a conflict between writers. `headPriority` is the priority of the
    /// re-assertion that wrote `head`, nil when a plain change did.
    ///
    /// * No head: accepted (the entry carries the image to every region).
    /// * The head is the same image: nothing is logged (``Decision/Outcome/unchanged``: accepted at the head's seq).
    /// * The head is a re-assertion: the higher priority wins; a lower or equal one loses to it and the loss is
    ///   recorded (status `auto`, the current side wins) — two regions held different images of lost history.
    /// * The head is older than the change's base (nothing was written on the key since the point the region
    ///   rewound to): accepted.
    /// * Otherwise a change written after the restore met an image from before it that its writer never saw: a
    ///   conflict like any other, decided by the table's policy (``decide(change:head:policy:priorities:deltaColumns:)``).
    ///
    /// The head is a re-assertion (its priority to be stored, raised by an unchanged one) exactly after one of the
    /// first four rules: ``ReassertDecision/priority``.
    public static func decideReassert(
        change: Change, head: Head?, headPriority: Int64?, policy: ConflictPolicy, priorities: RegionPriorities
    ) -> ReassertDecision {
        let priority = change.reassert ?? 0
        func accepted(_ kept: Int64) -> ReassertDecision {
            ReassertDecision(
                decision: Decision(
                    change: change, previousHead: head, isConflict: false, outcome: accept(change), conflict: nil),
                priority: kept)
        }
        guard let head else { return accepted(priority) }
        if head.image == change.image {
            // Nothing to log: every region gets this image from the entry that wrote the head.
            return ReassertDecision(
                decision: Decision(
                    change: change, previousHead: head, isConflict: false, outcome: .unchanged, conflict: nil),
                priority: max(priority, headPriority ?? 0))
        }
        if let headPriority {
            if priority > headPriority { return accepted(priority) }
            return ReassertDecision(
                decision: conflictDecision(
                    change: change, head: head, policy: policy, status: .auto, winner: .current, outcome: .reject),
                priority: nil)
        }
        if head.seq <= change.base { return accepted(priority) }
        return ReassertDecision(
            decision: decide(change: change, head: head, policy: policy, priorities: priorities), priority: nil)
    }
}

/// A re-assertion's decision and, when it leaves a head that is a re-assertion, that head's priority.
public struct ReassertDecision: Sendable, Hashable {
    public var decision: Decision
    /// The priority to record for the new head; nil when the change was not accepted as a re-assertion.
    public var priority: Int64?
}
