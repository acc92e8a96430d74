/// The SQL operation a change or log entry carries.
public enum ChangeOperation: String, Sendable, Hashable, CaseIterable {
    case insert
    case update
    case delete
}
