import StarlingCore
import StarlingPostgres

/// What an `ALTER TABLE` statement does to a synced table, found by running it on an empty temporary copy of the
/// table's shape in the hub's own database, in a transaction that is rolled back: PostgreSQL parses the clauses
/// and names the result (types as `format_type` spells them, defaults as `pg_get_expr` does), and
/// ``SchemaChange/actions(from:to:)`` compares the columns before and after by position number. A column whose
/// type the hub's database does not know (an enum, a domain of the region) is copied as `text`: a statement that
/// changes such a column fails here with PostgreSQL's message.
enum SchemaProbe {
    /// The column actions of `clauses` (what follows `ALTER TABLE name`) on `shape`. Errors are PostgreSQL's,
    /// with the statement's own position.
    static func actions(of clauses: String, on shape: TableShape, connection: PostgresConnection) throws
        -> [SchemaChange.Action]
    {
        do {
            try connection.transaction(name: "hub.schemaProbe") { connection in
                throw Probed(actions: try probe(clauses, on: shape, connection: connection))
            }
        } catch let probed as Probed {
            return probed.actions
        }
        return []
    }

    /// Runs a `CREATE INDEX` (``SchemaStatement/Kind/index(statement:probe:)``'s probe) on the empty copy of the
    /// table: PostgreSQL checks its columns and expressions. Throws PostgreSQL's error.
    static func checkIndex(_ probe: String, on shape: TableShape, connection: PostgresConnection) throws {
        do {
            try connection.transaction(name: "hub.schemaProbe.index") { connection in
                try createCopy(of: shape, connection: connection)
                let statement = probe.replacing(SchemaStatement.probeTable, with: "pg_temp.starling_schema_probe")
                try connection.execute(statement, name: "hub.schemaProbe.createIndex")
                throw Probed(actions: [])
            }
        } catch is Probed {
            return
        }
    }

    /// How images written before `actions` read after them (``ImageRules``): the image of each added column's
    /// default (evaluated here, in the encoding capture gives its type; `null` without a default) and the widened
    /// columns whose image becomes text. A default that is not a constant is left out (the sequencer refuses the
    /// change, ``SchemaChange/applied(to:)``); one of a type this database does not know fails naming it.
    static func imageRules(of actions: [SchemaChange.Action], on shape: TableShape, connection: PostgresConnection)
        throws -> (fill: JSONObject, toText: Set<String>)
    {
        // Read only: a default is a literal with casts (``SchemaChange/isConstant(_:)``), a type a type name
        // (``SchemaChange/isTypeName(_:)``), checked before either is written into a statement.
        try connection.transaction(name: "hub.schemaProbe.rules") { connection in
            try connection.execute("SET TRANSACTION READ ONLY", name: "hub.schemaProbe.readOnly")
            try connection.execute("SET LOCAL statement_timeout = '5s'", name: "hub.schemaProbe.timeout")
            return try rules(of: actions, on: shape, connection: connection)
        }
    }

    private static func rules(of actions: [SchemaChange.Action], on shape: TableShape, connection: PostgresConnection)
        throws -> (fill: JSONObject, toText: Set<String>)
    {
        var fill: JSONObject = [:]
        var toText: Set<String> = []
        for action in actions {
            switch action {
            case .addColumn(let name, let type, _, let defaultSQL):
                guard let defaultSQL else {
                    fill[name] = .null
                    continue
                }
                guard SchemaChange.isConstant(defaultSQL), SchemaChange.isTypeName(type),
                    let encoding = try encoding(of: type, connection: connection)
                else { continue }
                let value = try connection.query(
                    "SELECT (\(encoding.jsonSQL(of: "((\(defaultSQL))::\(type))")))::text",
                    name: "hub.schemaProbe.default")
                fill[name] = try JSONValue(parsing: try value[0].optionalString(0) ?? "null")
            case .alterType(let name, let type):
                guard let old = shape.columns.first(where: { $0.name == name })?.type,
                    try encoding(of: old, connection: connection) == .native,
                    try encoding(of: type, connection: connection) == .text
                else { continue }
                toText.insert(name)
            case .dropColumn, .renameColumn, .index:
                continue
            }
        }
        return (fill, toText)
    }

    /// The image encoding of `type` in this database's catalog, nil when it does not know the type.
    private static func encoding(of type: String, connection: PostgresConnection) throws -> ColumnEncoding? {
        let rows = try connection.query(ColumnEncoding.catalogSQL, [.text(type)], name: "hub.schemaProbe.encoding")
        guard let row = rows.first else { return nil }
        return ColumnEncoding.of(base: try row.string(0), element: try row.optionalString(1))
    }

    /// Carries the result out of the transaction, which it rolls back (nothing of the probe is kept).
    private struct Probed: Error {
        var actions: [SchemaChange.Action]
    }

    private static func probe(_ clauses: String, on shape: TableShape, connection: PostgresConnection) throws
        -> [SchemaChange.Action]
    {
        try createCopy(of: shape, connection: connection)
        let before = try columns(connection)
        try connection.execute("ALTER TABLE pg_temp.starling_schema_probe \(clauses)", name: "hub.schemaProbe.alter")
        return SchemaChange.actions(from: before, to: try columns(connection))
    }

    /// The empty temporary copy of `shape` (dropped at the end of the caller's transaction).
    private static func createCopy(of shape: TableShape, connection: PostgresConnection) throws {
        let known = try connection.query(
            "SELECT coalesce(array_to_json(array_agg(to_regtype(t) IS NOT NULL ORDER BY o)), '[]')::text "
                + "FROM unnest($1::text[]) WITH ORDINALITY AS u(t, o)",
            [.textArray(shape.columns.map(\.type))], name: "hub.schemaProbe.types")
        let isKnown = (try JSONValue(parsing: try known[0].string(0)).arrayValue ?? []).map { $0.boolValue ?? false }
        var definitions: [String] = []
        for (index, column) in shape.columns.enumerated() {
            let type = index < isKnown.count && isKnown[index] ? column.type : "text"
            definitions.append("\(try PostgresIdentifier.quoteName(column.name)) \(type)")
        }
        if !shape.key.isEmpty {
            definitions.append("PRIMARY KEY (\(try shape.key.map(PostgresIdentifier.quoteName).joined(separator: ", ")))")
        }
        try connection.execute(
            "CREATE TEMPORARY TABLE starling_schema_probe (\(definitions.joined(separator: ", "))) ON COMMIT DROP",
            name: "hub.schemaProbe.create")
    }

    private static func columns(_ connection: PostgresConnection) throws -> [SchemaChange.CatalogColumn] {
        let rows = try connection.query(
            """
            SELECT a.attnum::bigint, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                   pg_get_expr(d.adbin, d.adrelid)
            FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attrelid = 'pg_temp.starling_schema_probe'::regclass AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """, name: "hub.schemaProbe.columns")
        return try rows.map { row in
            SchemaChange.CatalogColumn(
                number: try row.int64(0), name: try row.string(1), type: try row.string(2), isNotNull: try row.bool(3),
                defaultSQL: try row.optionalString(4))
        }
    }
}
