/// The clauses of an `ALTER TABLE` statement given for a synced table (`POST /v1/schema`, `starling admin ddl`):
/// `ALTER TABLE [IF EXISTS] [ONLY] name clauses` or the clauses alone. The name must be the table's (an unqualified
/// name means `public`); quoted identifiers keep their case, unquoted ones are folded to lower case as PostgreSQL
/// does. Pure: no IO.
public enum SchemaStatement {
    /// What a statement given to the hub is.
    public enum Kind: Sendable, Hashable {
        /// `ALTER TABLE`: its clauses (the hub finds their column actions on an empty copy of the table).
        case alter(clauses: String)
        /// An index change: the statement every region runs (`CREATE [UNIQUE] INDEX IF NOT EXISTS name ON table …`
        /// or `DROP INDEX IF EXISTS schema.name`: idempotent, never `CONCURRENTLY`, which cannot run inside the
        /// transaction that applies it), and for a `CREATE INDEX` the same on the hub's copy of the table
        /// (`probe`, with `TABLE_PROBE` where the table goes).
        case index(statement: String, probe: String?)
    }

    /// Where ``Kind/index(statement:probe:)``'s probe names the table.
    public static let probeTable = "TABLE_PROBE"

    /// Reads a statement for `table`: an `ALTER TABLE` (or its clauses alone), a `CREATE INDEX` on the table or a
    /// `DROP INDEX`. Refuses, naming why, a statement for another table, an unnamed index, `DROP INDEX … CASCADE`
    /// (it would drop what depends on the index, differently in each region) and several indexes at once.
    public static func parse(_ statement: String, table: String) throws(CoreError) -> Kind {
        let text = try trimmed(statement)
        var rest = Substring(text)
        if takeWord("create", from: &rest) {
            return try createIndex(rest, table: table)
        }
        rest = Substring(text)
        if takeWord("drop", from: &rest), takeWord("index", from: &rest) {
            return try dropIndex(rest, table: table)
        }
        return .alter(clauses: try clauses(of: statement, table: table))
    }

    private static func trimmed(_ statement: String) throws(CoreError) -> String {
        var text = Substring(statement.trimmingSpaces)
        while text.hasSuffix(";") { text = Substring(text.dropLast().trimmingSpaces) }
        guard !text.isEmpty else { throw failure("the statement is empty") }
        return String(text)
    }

    private static func createIndex(_ afterCreate: Substring, table: String) throws(CoreError) -> Kind {
        var rest = afterCreate
        let isUnique = takeWord("unique", from: &rest)
        guard takeWord("index", from: &rest) else {
            throw failure("only ALTER TABLE, CREATE INDEX and DROP INDEX are schema changes Starling replicates")
        }
        _ = takeWord("concurrently", from: &rest)
        let beforeIf = rest
        if !(takeWord("if", from: &rest) && takeWord("not", from: &rest) && takeWord("exists", from: &rest)) {
            rest = beforeIf
        }
        rest = Substring(rest.trimmingSpaces)
        var probe = rest
        guard !takeWord("on", from: &probe), let (_, afterName) = qualifiedName(rest) else {
            throw failure("give the index a name (CREATE INDEX name ON …): every region creates it under that name")
        }
        let name = rest[..<afterName.startIndex].trimmingSpaces
        rest = afterName
        guard takeWord("on", from: &rest) else { throw failure("CREATE INDEX needs ON <table>") }
        _ = takeWord("only", from: &rest)
        rest = Substring(rest.trimmingSpaces)
        guard let (parts, afterTable) = qualifiedName(rest) else { throw failure("CREATE INDEX names no table") }
        let qualified = parts.count == 1 ? ["public"] + parts : parts
        guard qualified.joined(separator: ".") == table else {
            throw failure("the index is on \(parts.joined(separator: ".")), not on table \(table)")
        }
        let tail = afterTable.trimmingSpaces
        guard !tail.isEmpty else { throw failure("CREATE INDEX needs its columns") }
        let unique = isUnique ? "UNIQUE " : ""
        // The table as the hub names it, quoted: a region's search_path does not decide which table it is.
        let quotedTable = qualified.map { quoted($0) }.joined(separator: ".")
        return .index(
            statement: "CREATE \(unique)INDEX IF NOT EXISTS \(name) ON \(quotedTable) \(tail)",
            probe: "CREATE \(unique)INDEX \(name) ON \(probeTable) \(tail)")
    }

    private static func dropIndex(_ afterIndex: Substring, table: String) throws(CoreError) -> Kind {
        var rest = afterIndex
        _ = takeWord("concurrently", from: &rest)
        let beforeIf = rest
        if !(takeWord("if", from: &rest) && takeWord("exists", from: &rest)) { rest = beforeIf }
        rest = Substring(rest.trimmingSpaces)
        guard let (parts, afterName) = qualifiedName(rest) else { throw failure("DROP INDEX names no index") }
        let name = rest[..<afterName.startIndex].trimmingSpaces
        var tail = Substring(afterName.trimmingSpaces)
        if takeWord("cascade", from: &tail) {
            throw failure("DROP INDEX … CASCADE would drop what depends on the index, differently in each region")
        }
        _ = takeWord("restrict", from: &tail)
        guard tail.trimmingSpaces.isEmpty else { throw failure("drop one index per statement") }
        // An unqualified name is the table's schema's (a region's search_path may not hold it).
        let schema = table.split(separator: ".").first.map(String.init) ?? "public"
        let qualified = parts.count == 1 ? "\(quoted(schema)).\(name)" : name
        return .index(statement: "DROP INDEX IF EXISTS \(qualified)", probe: nil)
    }

    public static func clauses(of statement: String, table: String) throws(CoreError) -> String {
        let text = Substring(try trimmed(statement))
        var rest = text
        guard Self.takeWord("alter", from: &rest), Self.takeWord("table", from: &rest) else { return String(text) }
        let afterTable = rest
        if !(Self.takeWord("if", from: &rest) && Self.takeWord("exists", from: &rest)) { rest = afterTable }
        _ = Self.takeWord("only", from: &rest)
        rest = Substring(rest.trimmingSpaces)
        guard let (name, remainder) = Self.qualifiedName(rest) else {
            throw failure("the statement names no table after ALTER TABLE")
        }
        let qualified = name.count == 1 ? ["public"] + name : name
        guard qualified.joined(separator: ".") == table else {
            throw failure("the statement alters \(name.joined(separator: ".")), not table \(table)")
        }
        let clauses = remainder.trimmingSpaces
        guard !clauses.isEmpty else { throw failure("the statement has no clause after the table name") }
        return clauses
    }

    /// `name` as a quoted identifier.
    private static func quoted(_ name: String) -> String {
        "\"" + name.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\""
    }

    private static func failure(_ message: String) -> CoreError {
        CoreError(code: .invalidValue, message: message, field: "statement")
    }

    /// Takes `word` (case-insensitive, followed by a space or the end) after leading spaces.
    private static func takeWord(_ word: String, from text: inout Substring) -> Bool {
        let trimmed = Substring(text.trimmingSpaces)
        guard trimmed.lowercased().hasPrefix(word) else { return false }
        let after = trimmed.dropFirst(word.count)
        guard after.isEmpty || after.first?.isWhitespace == true else { return false }
        text = after
        return true
    }

    /// A dotted name of one to three parts at the start of `text` (quoted parts as written, unquoted folded),
    /// and what follows it.
    private static func qualifiedName(_ text: Substring) -> ([String], Substring)? {
        var parts: [String] = []
        var rest = text
        while true {
            if rest.first == "\"" {
                var part = ""
                var index = rest.index(after: rest.startIndex)
                var closed = false
                while index < rest.endIndex {
                    if rest[index] == "\"" {
                        let next = rest.index(after: index)
                        if next < rest.endIndex, rest[next] == "\"" {
                            part.append("\"")
                            index = rest.index(after: next)
                            continue
                        }
                        closed = true
                        rest = rest[next...]
                        break
                    }
                    part.append(rest[index])
                    index = rest.index(after: index)
                }
                guard closed, !part.isEmpty else { return nil }
                parts.append(part)
            } else {
                let end = rest.firstIndex { !($0.isLetter || $0.isNumber || $0 == "_" || $0 == "$") } ?? rest.endIndex
                guard end > rest.startIndex else { return nil }
                parts.append(rest[..<end].lowercased())
                rest = rest[end...]
            }
            guard rest.first == "." else { break }
            rest = rest.dropFirst()
        }
        guard parts.count <= 3 else { return nil }
        return (parts.count == 3 ? Array(parts.dropFirst()) : parts, rest)
    }
}
