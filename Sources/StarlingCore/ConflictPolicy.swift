/// How the hub resolves a conflict on a table (DESIGN.md step 3), parsed from `hub.yaml`'s `policy`.
public enum ConflictPolicy: Sendable, Hashable {
    /// Last writer wins: higher HLC, then higher region priority, then the smaller region name.
    case lww
    /// Higher region priority wins; equal priority falls back to `lww`.
    case priority
    /// Column-level merge onto the head; columns changed by both sides go by `lww`.
    case merge
    /// Recorded as open for an operator; meanwhile the head stays or `lww` decides provisionally.
    case manual(provisional: ManualProvisional)
    /// First writer wins: the head stays.
    case reject

    /// What a `manual` table does until an operator resolves the conflict.
    public enum ManualProvisional: String, Sendable, Hashable, CaseIterable {
        /// The head stays; the incoming change is rejected for now (the default).
        case keepHead
        /// `lww` decides for now.
        case lww
    }

    /// The configuration names.
    public static let names = ["lww", "priority", "merge", "manual", "reject"]

    /// Parses a configuration name; `manual` takes `manualProvisional` (default `.keepHead`).
    public init(name: String, manualProvisional: ManualProvisional = .keepHead) throws(CoreError) {
        switch name {
        case "lww": self = .lww
        case "priority": self = .priority
        case "merge": self = .merge
        case "manual": self = .manual(provisional: manualProvisional)
        case "reject": self = .reject
        default:
            let expected = ConflictPolicy.names.joined(separator: ", ")
            throw CoreError(
                code: .invalidPolicy, message: "unknown conflict policy \"\(name)\"; expected one of \(expected)",
                field: "policy")
        }
    }

    /// The configuration and wire name (`manual` for both provisional modes).
    public var name: String {
        switch self {
        case .lww: "lww"
        case .priority: "priority"
        case .merge: "merge"
        case .manual: "manual"
        case .reject: "reject"
        }
    }
}
