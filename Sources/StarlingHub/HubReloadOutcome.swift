public import StarlingCore

/// What a reload changed: the tables that joined, left or changed policy (or delta columns), and the keys of the
/// file that differ from the running configuration but only take effect at a restart.
public struct HubReloadOutcome: Sendable, Hashable {
    public var tables: [String]
    public var added: [String]
    public var removed: [String]
    public var changed: [String]
    /// Top-level keys (`regions`, `listen`, …) whose new values wait for a restart; the running hub keeps the old.
    public var restartRequired: [String]

    /// The `POST /v1/admin/reload` answer.
    public var json: JSONValue {
        .object([
            "reloaded": .bool(true), "tables": .array(tables.map(JSONValue.string)),
            "added": .array(added.map(JSONValue.string)), "removed": .array(removed.map(JSONValue.string)),
            "changed": .array(changed.map(JSONValue.string)),
            "restart_required": .array(restartRequired.map(JSONValue.string)),
        ])
    }
}
