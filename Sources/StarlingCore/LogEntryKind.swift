/// Why a log entry exists.
public enum LogEntryKind: String, Sendable, Hashable, CaseIterable {
    /// A captured change accepted as pushed.
    case change
    /// A change merged column by column onto the head (`merge` policy); always rewritten.
    case merge
    /// An operator's resolution of a manual conflict; always rewritten.
    case resolution
    /// A correction the hub issues so regions converge (e.g. after a dead-lettered apply).
    case correction
    /// A reconciliation repair of a region that diverged from the heads.
    case repair
    /// A schema change of a table (``SchemaEntry``): key `{}`, the change as its row; every region applies it
    /// at its place in the order.
    case schema
}
