/// The clauses of an `ALTER TABLE` statement given for a synced table (`POST /v1/schema`, `starling admin ddl`):
/// `ALTER TABLE [IF EXISTS] [ONLY] name clauses` or the clauses alone. The name must be the table's (an unqualified
/// name means `public`); quoted identifiers keep their case, unquoted ones are folded to lower case as PostgreSQL
/// does. Pure: no IO.
public enum SchemaStatement {
    public static func clauses(of statement: String, table: String) throws(CoreError) -> String {
        var text = Substring(statement.trimmingSpaces)
        while text.hasSuffix(";") { text = Substring(text.dropLast().trimmingSpaces) }
        guard !text.isEmpty else { throw failure("the statement is empty") }
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
