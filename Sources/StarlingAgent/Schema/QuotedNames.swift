import StarlingCore
import Synchronization

/// A table's quoted names (its own, its generated functions'), made once per table name: an apply names the table
/// and its batch function on every page, and quoting and hashing them each time was 3 % of an agent's CPU in W2 R=8
/// (2026-12-06), where most pages hold one or two entries. Process-wide and bounded: cleared past ``limit`` names
/// (synced tables are far fewer).
enum QuotedNames {
    private static let kept = Mutex<[String: TableSQL]>([:])
    static let limit = 4096

    /// ``TableSQL`` of `table` with no columns: what its quoted names need (`table`, `applyWALRowsFunction`, …).
    static func of(_ table: String) throws -> TableSQL {
        if let found = kept.withLock({ $0[table] }) { return found }
        let made = try TableSQL(shape: TableShape(name: table, columns: [], key: []))
        kept.withLock { kept in
            if kept.count >= limit { kept.removeAll() }
            kept[table] = made
        }
        return made
    }
}
