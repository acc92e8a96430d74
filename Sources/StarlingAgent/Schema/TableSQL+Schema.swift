import StarlingCore
import StarlingPostgres

extension TableSQL {
    /// The statements a region runs for a schema change from the log, built from its actions (never from the
    /// statement text an operator wrote, which may name the table differently or hold more than one command):
    /// `ALTER TABLE t ADD COLUMN "c" type [NOT NULL] [DEFAULT expression]`, `DROP COLUMN "c"`,
    /// `RENAME COLUMN "a" TO "b"`, `ALTER COLUMN "c" TYPE type USING "c"::type`, and an index statement as the hub
    /// canonicalised it. Types and defaults are
    /// PostgreSQL's own spelling (`format_type`, `pg_get_expr`) from the region or the hub that computed the
    /// change; a type or a default is refused when it could end the statement.
    static func schemaStatements(table: String, actions: [SchemaChange.Action]) throws -> [String] {
        let quoted = try PostgresIdentifier.quote(table)
        func checked(_ fragment: String, _ what: String) throws -> String {
            guard !fragment.contains(";"), !fragment.contains("--"), !fragment.contains("/*") else {
                throw AgentError(code: .invalidTable, message: "schema change of \(table): \(what) \(fragment) is refused")
            }
            return fragment
        }
        return try actions.map { action throws -> String in
            switch action {
            case .addColumn(let name, let type, let isNotNull, let defaultSQL):
                let defaultClause = try defaultSQL.map { " DEFAULT \(try checked($0, "default"))" } ?? ""
                return "ALTER TABLE \(quoted) ADD COLUMN \(try PostgresIdentifier.quoteName(name)) "
                    + "\(try checked(type, "type"))\(isNotNull ? " NOT NULL" : "")\(defaultClause)"
            case .dropColumn(let name):
                return "ALTER TABLE \(quoted) DROP COLUMN \(try PostgresIdentifier.quoteName(name))"
            case .renameColumn(let from, let to):
                return "ALTER TABLE \(quoted) RENAME COLUMN \(try PostgresIdentifier.quoteName(from)) TO "
                    + "\(try PostgresIdentifier.quoteName(to))"
            case .alterType(let name, let type):
                let column = try PostgresIdentifier.quoteName(name)
                let checkedType = try checked(type, "type")
                return "ALTER TABLE \(quoted) ALTER COLUMN \(column) TYPE \(checkedType) USING \(column)::\(checkedType)"
            case .index(let statement):
                // Canonicalised by the hub: IF [NOT] EXISTS, so a region that has (or lacks) it already is fine.
                return try checked(statement, "index statement")
            }
        }
    }
}
