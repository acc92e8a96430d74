/// The result of resolving a conflict by hand (``ConflictResolver/resolveManually(record:head:pick:seq:hlc:)``):
/// the `resolution` entry to append, the head to store and the updated record (status `resolved`).
public struct ManualResolution: Sendable, Hashable {
    public var entry: LogEntry
    public var head: Head
    public var record: ConflictRecord

    public init(entry: LogEntry, head: Head, record: ConflictRecord) {
        self.entry = entry
        self.head = head
        self.record = record
    }
}
