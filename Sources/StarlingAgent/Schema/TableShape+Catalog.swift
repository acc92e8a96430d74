public import StarlingCore
public import StarlingPostgres

/// Reading a synced table's shape (``TableShape``, in Core: the wire form and what capture and apply SQL are
/// generated from) from the region's catalog.
extension TableShape {
    /// Reads `table`'s shape from the catalog. Fails with `invalidTable` when the table does not exist or has
    /// no key: a primary key, or a unique index on NOT NULL columns (``keyIndexSQL(relation:)``).
    public static func load(table: String, connection: PostgresConnection) throws -> TableShape {
        let quoted = try PostgresIdentifier.quote(table)
        let found = try connection.query(
            "SELECT to_regclass($1)::oid::bigint AS oid", [.text(quoted)], name: "agent.shape.regclass")
        guard let oid = try found[0].optionalInt64("oid") else {
            throw AgentError(
                code: .invalidTable, message: "synced table \(table) does not exist in the region's database",
                key: table)
        }
        let rows = try connection.query(
            """
            SELECT a.attname::text AS name, format_type(a.atttypid, a.atttypmod) AS type,
                   (a.attgenerated <> '') AS generated, bt.typname::text AS base, et.typname::text AS element,
                   coalesce(array_position(string_to_array(i.indkey::text, ' ')::int2[], a.attnum), 0)::bigint
                       AS key_position,
                   a.attnum::bigint AS number, pg_get_expr(d.adbin, d.adrelid) AS default_sql
            FROM pg_attribute a
            LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            JOIN pg_type t ON t.oid = a.atttypid
            JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
            LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
            LEFT JOIN pg_index i ON i.indexrelid = \(keyIndexSQL(relation: "a.attrelid"))
            WHERE a.attrelid = $1::bigint::oid AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """, [.int64(oid)], name: "agent.shape.columns")
        var columns: [Column] = []
        var keyed: [(position: Int64, name: String)] = []
        for row in rows {
            let name = try row.string("name")
            let (base, element) = (try row.string("base"), try row.optionalString("element"))
            columns.append(
                Column(
                    name: name, type: try row.string("type"), encoding: .of(base: base, element: element),
                    isGenerated: try row.bool("generated"), valueType: element ?? base, isArray: element != nil,
                    number: try row.int64("number"), defaultSQL: try row.optionalString("default_sql")))
            let position = try row.int64("key_position")
            if position > 0 { keyed.append((position, name)) }
        }
        guard !keyed.isEmpty else {
            throw AgentError(
                code: .invalidTable, message: Self.noPrimaryKeyMessage(table), key: table)
        }
        return TableShape(name: table, columns: columns, key: keyed.sorted { $0.position < $1.position }.map(\.name))
    }

    /// Why a table without a key cannot be synced, and the fix (the hub says the same at registration).
    static func noPrimaryKeyMessage(_ table: String) -> String {
        "synced table \(table) has no primary key: Starling identifies a row by its key in every region. Add one "
            + "(ALTER TABLE \(table) ADD PRIMARY KEY (…)), or a unique index on NOT NULL columns (CREATE UNIQUE "
            + "INDEX … ON \(table) (…) with those columns NOT NULL) and make it the replica identity (ALTER TABLE "
            + "\(table) REPLICA IDENTITY USING INDEX <index>)"
    }

    /// The SQL expression for the oid of the index whose columns are the key of relation `relation` (an oid
    /// expression), NULL when there is none: its primary key; else a unique index PostgreSQL would accept as
    /// replica identity (valid, immediate, not partial, no expressions or included columns, every column NOT
    /// NULL), the replica identity index first, then the one with the fewest columns, then by name. The
    /// order survives WAL capture setting `REPLICA IDENTITY FULL` (the index stays the one with the fewest
    /// columns when it is the only one; with several, give the table a primary key). ``ShapeGuard`` finds the
    /// key with the same expression.
    static func keyIndexSQL(relation: String) -> String {
        """
        (SELECT ki.indexrelid FROM pg_index ki JOIN pg_class kc ON kc.oid = ki.indexrelid
         WHERE ki.indrelid = \(relation)
           AND (ki.indisprimary OR (ki.indisunique AND ki.indisvalid AND ki.indimmediate AND ki.indpred IS NULL
                AND ki.indexprs IS NULL AND ki.indnatts = ki.indnkeyatts
                AND NOT EXISTS (SELECT 1 FROM unnest(ki.indkey::int2[]) AS kk(attnum)
                                JOIN pg_attribute ka ON ka.attrelid = ki.indrelid AND ka.attnum = kk.attnum
                                WHERE NOT ka.attnotnull)))
         ORDER BY ki.indisprimary DESC, ki.indisreplident DESC, ki.indnatts, kc.relname LIMIT 1)
        """
    }
}

extension TableShape {
    /// The names of the columns a decoded row carries, in order (pgoutput sends no generated column).
    var decodedColumnNames: [String] { columns.filter { !$0.isGenerated }.map(\.name) }
}
