import StarlingCore
import StarlingPostgres

/// The one-trip apply's upsert with one array parameter per column (``ColumnArrayWriter``) instead of one jsonb
/// document of rows: the server parses each value once, with its column type's input function, instead of a jsonb
/// tree first (3.4 against 1.2 µs a row of the benchmark's table, PostgreSQL 15, 2026-12-07).
extension TableSQL {
    /// The built-in types whose text form a JSON image holds as a scalar (a string, number or boolean) that the
    /// type's input function reads as `jsonb_populate_record` would: `typname` and `format_type` without type
    /// modifiers. A column of any other type (an array, json, jsonb, an enum, a domain, a composite…) keeps the
    /// document: its conversion from JSON differs, or its name is not known to resolve under the apply's settings.
    static let arrayScalarTypes: [String: String] = [
        "int2": "smallint", "int4": "integer", "int8": "bigint", "float4": "real", "float8": "double precision",
        "numeric": "numeric", "bool": "boolean", "text": "text", "varchar": "character varying",
        "bpchar": "character", "uuid": "uuid", "date": "date", "timestamp": "timestamp without time zone",
        "timestamptz": "timestamp with time zone", "bytea": "bytea", "inet": "inet", "cidr": "cidr",
    ]

    /// The upsert of ``upsertRowsSQL()`` reading `unnest($1::<type>[], …)`, one parameter per writable column in
    /// ``ArrayUpsert/columns``' order; nil when a writable column is not of a type in ``arrayScalarTypes`` or
    /// needs its image (a constant default written when the image lacks the column). The arrays are of the
    /// base types, without modifiers: the INSERT's assignment applies them (`varchar(n)` raises on a longer value
    /// and `numeric(p,s)` rounds, as the input function with the modifier does; an explicit cast would truncate).
    func upsertArraysSQL() throws -> ArrayUpsert? {
        let writable = shape.columns.filter { !$0.isGenerated }
        var arrayTypes: [String] = []
        for column in writable {
            guard !column.isArray, !needsImage(column),
                let name = Self.arrayScalarTypes[column.valueType], Self.withoutModifiers(column.type) == name
            else { return nil }
            arrayTypes.append("pg_catalog.\(column.valueType)[]")
        }
        let quoted = try writable.map { try PostgresIdentifier.quoteName($0.name) }
        let parameters = arrayTypes.enumerated().map { "$\($0.offset + 1)::\($0.element)" }
        let source = "unnest(\(parameters.joined(separator: ", "))) AS r(\(quoted.joined(separator: ", ")))"
        let sql = try upsertSQL(image: "", source: source, tail: " ORDER BY \(try keyList("r"))")
        return ArrayUpsert(sql: sql, columns: writable.map(\.name))
    }

    /// `format_type`'s text without its modifiers: `numeric(10,2)` → `numeric`, `timestamp(3) with time zone` →
    /// `timestamp with time zone`.
    static func withoutModifiers(_ type: String) -> String {
        var result = ""
        var depth = 0
        for character in type {
            if character == "(" { depth += 1 } else if character == ")" { depth -= 1 } else if depth == 0 { result.append(character) }
        }
        return result.split(separator: " ").joined(separator: " ")
    }
}

/// ``TableSQL/upsertArraysSQL()``: the statement and the columns its parameters are, in order.
struct ArrayUpsert: Sendable, Hashable {
    let sql: String
    let columns: [String]
}

/// A table's upsert statements for the one-trip apply: ``TableSQL/upsertRowsSQL()`` (a jsonb document of rows) and,
/// when every column allows, ``TableSQL/upsertArraysSQL()``.
struct TableUpserts: Sendable, Hashable {
    let rows: String
    let arrays: ArrayUpsert?

    init(_ sql: TableSQL) throws {
        rows = try sql.upsertRowsSQL()
        arrays = try sql.upsertArraysSQL()
    }
}
