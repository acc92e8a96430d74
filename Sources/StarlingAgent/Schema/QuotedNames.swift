import StarlingCore
import Synchronization

/// The quoted names an apply uses on every page (a table's, its WAL batch function's), made once per table name:
/// quoting and hashing them on each apply was 3 % of an agent's CPU in W2 R=8 (2026-12-06), where most pages hold
/// one or two entries. Process-wide and bounded: cleared past ``limit`` names (synced tables are far fewer).
enum QuotedNames {
    private struct Names: Sendable {
        var table: String
        var walRowsFunction: String
    }

    private static let kept = Mutex<[String: Names]>([:])
    static let limit = 4096

    /// `table` quoted as ``TableSQL`` quotes it (`"schema"."name"`).
    static func table(_ table: String) throws -> String { try names(of: table).table }

    /// The quoted name of `table`'s WAL batch function (``TableSQL/applyWALRowsFunction``).
    static func walRowsFunction(of table: String) throws -> String { try names(of: table).walRowsFunction }

    private static func names(of table: String) throws -> Names {
        if let found = kept.withLock({ $0[table] }) { return found }
        let sql = try TableSQL(shape: TableShape(name: table, columns: [], key: []))
        let made = Names(table: sql.table, walRowsFunction: sql.applyWALRowsFunction)
        kept.withLock { kept in
            if kept.count >= limit { kept.removeAll() }
            kept[table] = made
        }
        return made
    }
}
