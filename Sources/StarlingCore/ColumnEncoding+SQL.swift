extension ColumnEncoding {
    /// The SQL expression of the jsonb image value of column expression `x` in this encoding (NULL stays SQL
    /// NULL, which `jsonb_build_object` writes as null): what trigger capture builds images with, what the hub
    /// computes a new column's default image with, so both agree byte for byte (DESIGN.md "JSON shapes").
    public func jsonSQL(of x: String) -> String {
        switch self {
        case .native: return "to_jsonb(\(x))"
        case .text, .jsonText: return "to_jsonb(\(x)::text)"
        case .bytea: return "to_jsonb(E'\\\\x' || encode(\(x), 'hex'))"
        case .timestamp: return "to_jsonb(\(Self.timestampText(x)))"
        case .timestamptz: return "to_jsonb(\(Self.timestamptzText(x)))"
        case .textArray: return "to_jsonb(\(x)::text[])"
        case .timestampArray, .timestamptzArray:
            let element = self == .timestampArray ? Self.timestampText("u.e") : Self.timestamptzText("u.e")
            return "CASE WHEN \(x) IS NULL THEN NULL ELSE (SELECT coalesce(jsonb_agg(to_jsonb(\(element)) "
                + "ORDER BY u.o), '[]'::jsonb) FROM unnest(\(x)) WITH ORDINALITY AS u(e, o)) END"
        }
    }

    private static func timestampText(_ x: String) -> String {
        "CASE WHEN isfinite(\(x)) THEN to_char(\(x), 'YYYY-MM-DD\"T\"HH24:MI:SS.US') ELSE \(x)::text END"
    }

    private static func timestamptzText(_ x: String) -> String {
        "CASE WHEN isfinite(\(x)) THEN to_char(\(x) AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"') "
            + "ELSE \(x)::text END"
    }

    /// The SQL that reads a type's encoding in a database's catalog: for type expression `$n::text`
    /// (`format_type` text), the domain-resolved `typname` and its array element's, as ``of(base:element:)``
    /// takes them; no row for a type the database does not know.
    public static let catalogSQL = """
        SELECT bt.typname::text AS base, et.typname::text AS element
        FROM pg_type t
        JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
        LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
        WHERE t.oid = to_regtype($1)
        """
}
