import ArgumentParser
import StarlingCore

/// `starling admin ddl TABLE STATEMENT`: a schema change of a synced table, sequenced by the hub and applied by
/// every region at its place in the log (`POST /v1/schema`).
struct AdminDDLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ddl", abstract: "Replicate a schema change (ALTER TABLE) of a synced table to every region.",
        discussion: """
            STATEMENT is `ALTER TABLE <table> <clauses>` or the clauses alone. Replicated: ADD COLUMN (nullable, \
            or with a constant DEFAULT), DROP COLUMN, RENAME COLUMN, ALTER COLUMN … TYPE when it widens \
            (smallint → integer → bigint → numeric, real → double precision, a longer varchar or text, a wider \
            numeric); CREATE [UNIQUE] INDEX name ON table (…) and DROP INDEX name. Refused, with the reason: key \
            columns, narrowing type changes, volatile defaults (now(), nextval(…)), NOT NULL without a default, \
            unnamed indexes, DROP INDEX … CASCADE. Give --id to make a retry safe.
            """)

    @OptionGroup var options: AdminConnectionOptions

    @Argument(help: "The synced table (schema.table).") var table: String
    @Argument(help: "The statement, e.g. \"ALTER TABLE public.items ADD COLUMN note text\".") var statement: String
    @Option(help: "An id for this change: sending it again returns the first answer.") var id: String?

    func run() async throws {
        try await runAdmin(options) { client throws(AdminFailure) in
            var body: JSONObject = ["table": .string(table), "statement": .string(statement)]
            if let id { body["id"] = .string(id) }
            let answer = try await client.send("POST", "/v1/schema", body: .object(body))
            if options.json {
                Console.out(String(decoding: answer.body, as: UTF8.self) + "\n")
                return
            }
            let columns = (answer.json["columns"]?.arrayValue ?? []).map {
                "\($0["name"]?.cellText ?? "?") \($0["type"]?.cellText ?? "?")"
            }
            Console.out(
                "\(table) is at version \(answer.json["version"]?.cellText ?? "?") from seq "
                    + "\(answer.json["seq"]?.cellText ?? "?"): \(columns.joined(separator: ", "))\n")
        }
    }
}
