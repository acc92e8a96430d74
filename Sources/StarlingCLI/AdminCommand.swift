import ArgumentParser
import StarlingCore
import StarlingHub

/// `starling admin status|conflicts|resolve|reconcile|history|ddl|openapi`: operator commands against a running hub over
/// its admin API (HTTP/2, the admin bearer token). Readable tables by default, `--json` for scripts.
struct AdminCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin", abstract: "Operate a running hub: status, conflicts, resolve, reconcile, history, ddl.",
        discussion: """
            Every command takes --hub URL (or $STARLING_HUB), --token T (or $STARLING_ADMIN_TOKEN), \
            --ca FILE for a hub certificate signed by a private CA, and --json to print the hub's JSON.

            Exit codes: 0 ok; 1 usage or configuration (bad option, unreadable CA file, request refused as \
            invalid); 2 hub unreachable or unavailable (connect, TLS, timeout, 5xx); 3 token refused (401/403); \
            4 not found or wrong state (no such conflict, already resolved); 5 not offered by this hub yet \
            (reconciliation). 64: the command line could not be parsed.
            """,
        subcommands: [
            AdminStatusCommand.self, AdminConflictsCommand.self, AdminResolveCommand.self,
            AdminReconcileCommand.self, AdminHistoryCommand.self, AdminDDLCommand.self, AdminOpenAPICommand.self,
        ])
}

/// Runs `body` with a connected client and turns an ``AdminFailure`` into its message and exit code.
func runAdmin(
    _ options: AdminConnectionOptions, _ body: (AdminClient) async throws(AdminFailure) -> Void
) async throws {
    do throws(AdminFailure) {
        let client = try options.connect()
        defer { client.shutdown() }
        try await body(client)
    } catch {
        Console.error("starling admin: \(error.message)\n")
        throw ExitCode(error.exitCode)
    }
}

/// `starling admin status`: head, per-region state, cursor, lag, outbox and last error.
struct AdminStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show the head, every region's state and lag, and conflict counts.")

    @OptionGroup var options: AdminConnectionOptions

    func run() async throws {
        try await runAdmin(options) { client throws(AdminFailure) in
            let answer = try await client.send("GET", "/v1/status")
            if options.json {
                Console.out(String(decoding: answer.body, as: UTF8.self) + "\n")
                return
            }
            Console.out(Self.render(answer.json, hub: client.url, now: AdminTime.nowMicros()))
        }
    }

    static func render(_ status: JSONValue, hub: String, now: Int64) -> String {
        let open = status["conflicts"]?["open"]?.cellText ?? "?"
        let total = status["conflicts"]?["total"]?.cellText ?? "?"
        let text = "hub \(hub)  head seq \(status["head"]?.cellText ?? "?")  conflicts \(open) open / \(total) total\n\n"
        var table = TextTable([
            ("REGION", .left), ("STATE", .left), ("CURSOR", .right), ("LAG", .right), ("LAG(S)", .right),
            ("OUTBOX", .right), ("LAST PUSH", .left), ("LAST PULL", .left), ("LAST ERROR", .left),
        ])
        for region in status["regions"]?.arrayValue ?? [] {
            table.append([
                region["name"]?.cellText ?? "?", RegionHealth.state(region, now: now),
                region["cursor"]?.cellText ?? "-", region["lag_entries"]?.cellText ?? "-",
                region["lag_seconds"]?.cellText ?? "-", region["outbox_depth"]?.cellText ?? "-",
                AdminTime.age(region["last_push_at"]?.stringValue, now: now),
                AdminTime.age(region["last_pull_at"]?.stringValue, now: now), region["last_error"]?.cellText ?? "-",
            ])
        }
        return text + table.render()
    }
}

/// `starling admin conflicts`: recorded conflicts, open ones by default, one page at a time.
struct AdminConflictsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conflicts", abstract: "List conflicts (open by default) with both sides.")

    @OptionGroup var options: AdminConnectionOptions

    @Option(help: "open or all.") var status = "open"
    @Option(help: "Only this table (schema.table), filtered here after the hub's page.") var table: String?
    @Option(help: "Page size, 1…1000.") var limit = 100
    @Option(help: "Start after this conflict id (the 'next' of the previous page).") var after: Int64 = 0
    @Flag(help: "Also print both row images under each conflict.") var images = false

    func run() async throws {
        try await runAdmin(options) { client throws(AdminFailure) in
            guard status == "open" || status == "all" else {
                throw AdminFailure(AdminFailure.usage, "--status must be open or all, not \(status)")
            }
            guard (1...1000).contains(limit), after >= 0 else {
                throw AdminFailure(AdminFailure.usage, "--limit must be 1…1000 and --after at least 0")
            }
            let answer = try await client.send("GET", "/v1/conflicts?status=\(status)&after=\(after)&limit=\(limit)")
            var conflicts = answer.json["conflicts"]?.arrayValue ?? []
            if let table { conflicts = conflicts.filter { $0["table"]?.stringValue == table } }
            if options.json {
                let body = table == nil ? String(decoding: answer.body, as: UTF8.self)
                    : JSONValue.object(["conflicts": .array(conflicts), "next": answer.json["next"] ?? .null]).jsonText
                Console.out(body + "\n")
                return
            }
            let full = (answer.json["conflicts"]?.arrayValue?.count ?? 0) == limit
            Console.out(render(conflicts, next: full ? answer.json["next"]?.cellText : nil))
        }
    }

    func render(_ conflicts: [JSONValue], next: String?) -> String {
        guard !conflicts.isEmpty || next != nil else {
            return status == "open" ? "no open conflicts\n" : "no conflicts\n"
        }
        var output = TextTable([
            ("ID", .right), ("TABLE", .left), ("KEY", .left), ("POLICY", .left), ("STATUS", .left),
            ("WINNER", .left), ("CURRENT", .left), ("INCOMING", .left), ("DETECTED", .left),
        ])
        var text = ""
        for conflict in conflicts {
            let current = conflict["current"] ?? .null
            let incoming = conflict["incoming"] ?? .null
            let cells = [
                conflict["id"]?.cellText ?? "?", conflict["table"]?.cellText ?? "?", conflict["key"]?.cellText ?? "?",
                conflict["policy"]?.cellText ?? "?", conflict["status"]?.cellText ?? "?",
                conflict["winner"]?.cellText ?? "?",
                "\(current["origin"]?.cellText ?? "?") seq \(current["seq"]?.cellText ?? "?") \(current["op"]?.cellText ?? "")",
                "\(incoming["id"]?.cellText ?? "?") base \(incoming["base"]?.cellText ?? "?") \(incoming["op"]?.cellText ?? "")",
                conflict["detected_at"]?.cellText ?? "-",
            ]
            if images {
                var one = output
                one.rows = []
                one.append(cells)
                text += one.render()
                text += "    current:  \(current["row"]?.jsonText ?? "null")\n"
                text += "    incoming: \(incoming["row"]?.jsonText ?? "null")\n\n"
            } else {
                output.append(cells)
            }
        }
        if !images { text = output.render() }
        if let next { text += "more: --after \(next)\n" }
        return text
    }
}

/// `starling admin resolve ID --pick current|incoming | --row JSON`.
struct AdminResolveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resolve", abstract: "Resolve an open conflict: keep a side or write the row yourself.")

    @OptionGroup var options: AdminConnectionOptions

    @Argument(help: "The conflict id.") var id: Int64
    @Option(help: "current (keep the head) or incoming (take the pushed change).") var pick: String?
    @Option(help: "The resolved row as a JSON object (must carry the conflict's key).") var row: String?

    func run() async throws {
        try await runAdmin(options) { client throws(AdminFailure) in
            let body = try resolution()
            guard id > 0 else { throw AdminFailure(AdminFailure.usage, "the conflict id must be positive") }
            let answer = try await client.send("POST", "/v1/conflicts/\(id)/resolve", body: body)
            if options.json {
                Console.out(String(decoding: answer.body, as: UTF8.self) + "\n")
                return
            }
            let how = pick.map { "kept \($0)" } ?? "wrote the given row"
            let seq = answer.json["entry"]?["seq"]?.cellText ?? "?"
            Console.out("conflict \(id) resolved (\(how)); resolution entry seq \(seq)\n")
        }
    }

    private func resolution() throws(AdminFailure) -> JSONValue {
        switch (pick, row) {
        case (let pick?, nil):
            guard pick == "current" || pick == "incoming" else {
                throw AdminFailure(AdminFailure.usage, "--pick must be current or incoming, not \(pick)")
            }
            return ["pick": .string(pick)]
        case (nil, let text?):
            guard let value = try? JSONValue(parsing: Array(text.utf8)), case .object = value else {
                throw AdminFailure(AdminFailure.usage, "--row must be a JSON object")
            }
            return ["row": value]
        default:
            throw AdminFailure(AdminFailure.usage, "give exactly one of --pick and --row")
        }
    }
}

/// `starling admin reconcile [ID]`: starts a reconciliation (or joins the one running), waits for it by
/// polling `GET /v1/reconcile/{id}` and prints the per-region/table report; with an ID, shows that run without
/// waiting. Exit 0 when the run is done; 6 when it failed (a region timed out) or `--wait` ran out; 5 when the
/// hub has no reconciliation endpoints.
struct AdminReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile", abstract: "Compare every region with the hub and repair differences.")

    @OptionGroup var options: AdminConnectionOptions

    @Option(help: "Seconds to wait for the run to finish.") var wait: Int = 3600

    @Argument(help: "Show this reconciliation instead of starting one.") var id: String?

    /// The run failed or did not finish in time.
    static let runFailed: Int32 = 6

    func run() async throws {
        try await runAdmin(options) { client throws(AdminFailure) in
            var answer: AdminClient.Answer
            if let id {
                answer = try await client.send("GET", "/v1/reconcile/\(id)")
            } else {
                let started: AdminClient.Answer
                do throws(AdminFailure) {
                    started = try await client.send("POST", "/v1/reconcile", body: [:])
                } catch {
                    guard error.exitCode == AdminFailure.notFound, error.message.contains(" 404 ") else { throw error }
                    throw AdminFailure(
                        AdminFailure.notAvailable, "reconciliation is not available on this hub yet (\(error.message))")
                }
                guard let runID = started.json["id"]?.int64Value else {
                    throw AdminFailure(AdminFailure.notAvailable, "the hub's answer has no run id")
                }
                answer = try await client.send("GET", "/v1/reconcile/\(runID)")
                let deadline = ContinuousClock.now + .seconds(wait)
                while answer.json["status"]?.stringValue == "running" && ContinuousClock.now < deadline {
                    try? await Task.sleep(for: .milliseconds(500))
                    answer = try await client.send("GET", "/v1/reconcile/\(runID)")
                }
            }
            Console.out(options.json ? String(decoding: answer.body, as: UTF8.self) + "\n" : Self.render(answer.json))
            switch answer.json["status"]?.stringValue {
            case "done": return
            case "running" where id != nil: return
            case "running":
                throw AdminFailure(Self.runFailed, "the reconciliation did not finish within \(wait) s")
            default:
                let reason = answer.json["error"]?.stringValue ?? "see the report"
                throw AdminFailure(Self.runFailed, "the reconciliation failed: \(reason)")
            }
        }
    }

    /// `run N: done in X s` and one table row per region and table.
    static func render(_ run: JSONValue) -> String {
        var table = TextTable([
            ("REGION", .left), ("TABLE", .left), ("STATUS", .left), ("COMPARED", .right), ("DIFFERING", .right),
            ("REPAIRED", .right), ("SKIPPED", .right), ("SECONDS", .right),
        ])
        func number(_ value: JSONValue?) -> String { value?.numberText ?? "-" }
        for result in run["results"]?.arrayValue ?? [] {
            table.append([
                result["region"]?.stringValue ?? "?", result["table"]?.stringValue ?? "?",
                result["status"]?.stringValue ?? "?", number(result["rows_compared"]), number(result["rows_differing"]),
                number(result["rows_repaired"]), number(result["rows_skipped"]), number(result["seconds"]),
            ])
        }
        let header = "reconciliation \(number(run["id"])): \(run["status"]?.stringValue ?? "?") "
            + "in \(number(run["seconds"])) s\n"
        return header + table.render()
    }
}

/// `starling admin openapi`: prints the OpenAPI document built into this binary (no hub needed).
struct AdminOpenAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "openapi", abstract: "Print the OpenAPI 3.1 description of the hub's HTTP API.")

    func run() {
        Console.out(HubOpenAPI.document)
    }
}
