/// Quoting of SQL identifiers (schema, table, column and channel names that come from configuration).
///
/// Identifiers cannot be parameters, so they are the one thing that ends up inside SQL text; they always
/// pass through here first: every part is double-quoted with embedded `"` doubled, so no identifier can
/// end the quoted name early, and case is preserved exactly as configured.
public enum PostgresIdentifier {
    /// Quotes a possibly schema-qualified name, splitting on the first dot:
    /// `public.items` → `"public"."items"`, `items` → `"items"`, `a.b.c` → `"a"."b.c"`.
    public static func quote(_ qualifiedName: String) throws(PostgresError) -> String {
        guard let dot = qualifiedName.firstIndex(of: ".") else {
            return try quoteName(qualifiedName)
        }
        let schema = String(qualifiedName[..<dot])
        let name = String(qualifiedName[qualifiedName.index(after: dot)...])
        return try quoteName(schema) + "." + quoteName(name)
    }

    /// Quotes one name without splitting on dots: `my"odd.name` → `"my""odd.name"`.
    public static func quoteName(_ name: String) throws(PostgresError) -> String {
        guard !name.isEmpty else {
            throw PostgresError(code: .invalidIdentifier, message: "empty identifier")
        }
        guard !name.utf8.contains(0) else {
            throw PostgresError(code: .invalidIdentifier, message: "identifier contains a NUL byte")
        }
        var quoted = "\""
        quoted.reserveCapacity(name.utf8.count + 2)
        for character in name.unicodeScalars {
            if character == "\"" { quoted.append("\"") }
            quoted.unicodeScalars.append(character)
        }
        quoted.append("\"")
        return quoted
    }
}
