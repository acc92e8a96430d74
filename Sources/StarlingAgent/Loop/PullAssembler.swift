public import StarlingCore

/// Where a pulled batch may be cut so that no origin transaction is split (DESIGN.md: "an origin
/// transaction is never split across apply transactions"). The hub returns a transaction's entries
/// contiguously and commits whole pushes, so a page that is not full ends on a transaction boundary; a full
/// page may end inside one. Pure.
public enum PullAssembler {
    /// The number of leading `entries` that form whole transactions. `isComplete` says the hub had nothing
    /// more after the last entry (the page was not full). Returns nil when not even the first transaction is
    /// known to be complete: pull more and ask again with the longer list.
    public static func completePrefix(_ entries: [LogEntry], isComplete: Bool) -> Int? {
        guard let last = entries.last else { return 0 }
        if isComplete { return entries.count }
        var cut = entries.count - 1
        while cut > 0 && entries[cut - 1].tx == last.tx { cut -= 1 }
        return cut == 0 ? nil : cut
    }
}
