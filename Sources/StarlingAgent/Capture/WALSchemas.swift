import StarlingCore
import StarlingPostgres

/// What the WAL decoder knows of the synced tables' schemas, loaded when it starts (README "Schema changes"):
/// pgoutput announces a relation's columns by name and type oid, so a row is decoded with the columns it was
/// written with — before a schema change as after it — given each type's JSON encoding (``types``). A row whose
/// column names the table never had installed (``history``) and no schema message announced is a schema change
/// made here without the event trigger: it stops the table's stream. ``columns`` are the table's columns as the
/// hub has them (the recorded signature), from which a schema change made here is computed.
struct WALSchemas: Sendable {
    /// A type's domain-resolved `typname`, and its element's for an array.
    struct ColumnType: Sendable, Hashable {
        var base: String
        var element: String?
    }

    var types: [UInt32: ColumnType] = [:]
    /// Per table, every list of decoded column names its capture was installed for.
    var history: [String: Set<[String]>] = [:]
    /// Per table, the columns of its recorded signature, updated as schema messages are decoded.
    var columns: [String: [SchemaChange.CatalogColumn]] = [:]

    /// Reads the types and the synced tables' history and signatures. Blocking, on the caller's connection.
    static func load(connection: PostgresConnection) throws -> WALSchemas {
        var schemas = WALSchemas()
        let types = try connection.query(
            """
            SELECT t.oid::bigint AS oid, bt.typname::text AS base, et.typname::text AS element
            FROM pg_type t
            JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
            LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
            """, name: "agent.wal.types")
        for row in types {
            schemas.types[UInt32(truncatingIfNeeded: try row.int64("oid"))] = ColumnType(
                base: try row.string("base"), element: try row.optionalString("element"))
        }
        let tables = try connection.query(
            "SELECT table_name, column_history::text AS history, shape FROM starling.synced_tables",
            name: "agent.wal.schemaHistory")
        for row in tables {
            let table = try row.string("table_name")
            let lists = try JSONValue(parsing: try row.string("history")).arrayValue ?? []
            schemas.history[table] = Set(lists.map { ($0.arrayValue ?? []).compactMap(\.stringValue) })
            if let text = try row.optionalString("shape") {
                let signature = try TableSignature(json: try JSONValue(parsing: text), what: table)
                schemas.columns[table] = signature.columns.filter { !$0.isGenerated }.map {
                    SchemaChange.CatalogColumn(number: $0.number, name: $0.name, type: $0.type, isNotNull: false, defaultSQL: nil)
                }
            }
        }
        return schemas
    }

    /// Parses a `starling.schema` message: `{"table":…,"statement":…,"columns":[{"number","name","type",
    /// "not_null","default"}]}` (``AgentStore/schemaMessagePrefix``).
    static func message(_ content: [UInt8]) throws(AgentError) -> (table: String, statement: String, columns: [SchemaChange.CatalogColumn]) {
        do {
            let json = try JSONValue(parsing: content)
            guard let table = json["table"]?.stringValue, let list = json["columns"]?.arrayValue else {
                throw AgentError(code: .capture, message: "a schema message in the WAL lacks table or columns")
            }
            let columns = try list.map { item throws(AgentError) in
                guard let number = item["number"]?.int64Value, let name = item["name"]?.stringValue,
                    let type = item["type"]?.stringValue
                else { throw AgentError(code: .capture, message: "a schema message in the WAL has a malformed column") }
                return SchemaChange.CatalogColumn(
                    number: number, name: name, type: type, isNotNull: item["not_null"]?.boolValue ?? false,
                    defaultSQL: item["default"]?.stringValue)
            }
            return (table, json["statement"]?.stringValue ?? "", columns)
        } catch let error as AgentError {
            throw error
        } catch {
            throw AgentError(code: .capture, message: "a schema message in the WAL is not JSON: \(error)")
        }
    }
}
