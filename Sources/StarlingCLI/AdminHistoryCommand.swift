import ArgumentParser
import StarlingCore

/// `starling admin history TABLE KEY`: one row's metadata (version, source region, last sync time) and history
/// (its newest log entries and its conflicts), from `GET /v1/rows/{table}?key=…`.
struct AdminHistoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history", abstract: "Show a row's version, source region, last sync time and history.",
        discussion: """
            KEY is the primary key as a JSON object, with the types the hub stores (bigint and numeric values \
            as strings): '{"id": "42"}'. `starling admin conflicts` shows keys in that form.
            """)

    @OptionGroup var options: AdminConnectionOptions

    @Argument(help: "The synced table (schema.table).") var table: String
    @Argument(help: "The primary key as a JSON object.") var key: String
    @Option(help: "Newest log entries to show, 1…1000.") var limit = 20

    func run() async throws {
        try await runAdmin(options) { client throws(AdminFailure) in
            guard (1...1000).contains(limit) else { throw AdminFailure(AdminFailure.usage, "--limit must be 1…1000") }
            let path = "/v1/rows/\(PercentEncoding.encode(table))?key=\(PercentEncoding.encode(key))&limit=\(limit)"
            let answer = try await client.send("GET", path)
            if options.json {
                Console.out(String(decoding: answer.body, as: UTF8.self) + "\n")
                return
            }
            Console.out(Self.render(answer.json))
        }
    }

    static func render(_ body: JSONValue) -> String {
        var text = "\(body["table"]?.cellText ?? "?") \(body["key"]?.jsonText ?? "?")\n"
        guard let head = body["head"], !head.isNull else { return text + "no version at the hub\n" }
        text += "version \(body["version"]?.cellText ?? "?") from \(body["source_region"]?.cellText ?? "?"), "
            + "synced \(body["last_sync_time"]?.cellText ?? "?")\n"
        text += "row \(head["row"]?.jsonText ?? "null")\n\n"
        var table = TextTable([
            ("SEQ", .right), ("ORIGIN", .left), ("KIND", .left), ("OP", .left), ("COMMITTED", .left), ("ROW", .left),
        ])
        for entry in body["history"]?.arrayValue ?? [] {
            table.append([
                entry["seq"]?.cellText ?? "?", entry["origin"]?.cellText ?? "?", entry["kind"]?.cellText ?? "?",
                entry["op"]?.cellText ?? "?", entry["committed_at"]?.cellText ?? "?", entry["row"]?.jsonText ?? "null",
            ])
        }
        text += table.render()
        let conflicts = body["conflicts"]?.arrayValue ?? []
        text += conflicts.isEmpty ? "\nno conflicts\n" : "\n\(conflicts.count) conflicts:\n"
        for conflict in conflicts {
            text += "  #\(conflict["id"]?.cellText ?? "?") \(conflict["policy"]?.cellText ?? "?") "
                + "\(conflict["status"]?.cellText ?? "?"), winner \(conflict["winner"]?.cellText ?? "?"): "
                + "\(conflict["incoming"]?["id"]?.cellText ?? "?") against seq \(conflict["current"]?["seq"]?.cellText ?? "?")\n"
        }
        return text
    }
}
