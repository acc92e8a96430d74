import Glibc
import StarlingAgent
import StarlingPostgres
import Synchronization

/// Reads the demo's state — per-region writes, outbox, applied entries, row hashes; the hub's head and
/// conflicts — and renders the live view and the summary.
final class DemoMonitor: Sendable {
    private let regionNames: [String]
    private let workloads: [DemoWorkload]
    private let agents: [Agent]
    private let hubDatabase: PostgresWorker

    init(cluster: DemoCluster, regionNames: [String], workloads: [DemoWorkload], agents: [Agent]) {
        self.regionNames = regionNames
        self.workloads = workloads
        self.agents = agents
        hubDatabase = PostgresWorker(url: cluster.url(database: "starling_hub"), applicationName: "starling-demo")
    }

    func shutdown() async { await hubDatabase.shutdown() }

    /// Waits until every agent installed its capture (its replication slot, or its capture triggers): writes
    /// before that would not be captured.
    func waitForInstall(isInterrupted: @Sendable () -> Bool) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while clock.now < deadline && !isInterrupted() {
            var ready = 0
            for workload in workloads {
                let count = try? await workload.withConnection { connection in
                    try connection.query("""
                        SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'starling_capture')
                             + (SELECT count(*) FROM pg_replication_slots
                                WHERE database = current_database() AND slot_name LIKE 'starling%') AS n
                        """)[0].int64("n")
                }
                if (count ?? 0) > 0 { ready += 1 }
            }
            if ready == workloads.count { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        if !isInterrupted() {
            let errors = agents.compactMap { $0.progress.lastError }.joined(separator: "; ")
            throw DemoCluster.Failure(message: "agents did not install their capture within 60 s \(errors)")
        }
    }

    func rowCounts(table: String) async -> [Int64] {
        var counts: [Int64] = []
        for workload in workloads {
            let count = try? await workload.withConnection { connection in
                try connection.query("SELECT count(*) AS n FROM \(try PostgresIdentifier.quote(table))")[0].int64("n")
            }
            counts.append(count ?? -1)
        }
        return counts
    }

    /// Every table hashes the same in every region and no outbox holds anything.
    func isConverged() async -> Bool {
        var seen: String?
        for workload in workloads {
            guard let (fingerprint, pending) = try? await workload.withConnection({ connection in
                (try Self.fingerprint(connection), try Self.outboxDepth(connection))
            }), pending == 0 else { return false }
            if let seen, seen != fingerprint { return false }
            seen = fingerprint
        }
        return true
    }

    /// md5 of every table's ordered rows: equal fingerprints mean identical data.
    static func fingerprint(_ connection: PostgresConnection) throws -> String {
        var parts: [String] = []
        for table in DemoSchema.tables {
            let quoted = try PostgresIdentifier.quote(table.name)
            let row = try connection.query("SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') AS h FROM \(quoted) t")
            parts.append(try row[0].string("h"))
        }
        return parts.joined(separator: ",")
    }

    static func outboxDepth(_ connection: PostgresConnection) throws -> Int64 {
        try connection.query("SELECT count(*) AS n FROM starling.outbox")[0].int64("n")
    }

    struct RegionLine: Sendable {
        var name: String
        var writes: Int
        var pushed: Int
        var applied: Int
        var outbox: Int64
        var cursor: Int64
        var error: String?
    }

    func regionLines() async -> [RegionLine] {
        var lines: [RegionLine] = []
        for (index, workload) in workloads.enumerated() {
            let progress = agents[index].progress
            let outbox = try? await workload.withConnection { connection in try Self.outboxDepth(connection) }
            lines.append(RegionLine(name: regionNames[index], writes: workload.writes, pushed: progress.pushedChanges,
                                    applied: progress.appliedEntries, outbox: outbox ?? -1, cursor: progress.cursor,
                                    error: progress.lastError))
        }
        return lines
    }

    /// (policy, status) → count, and the head seq.
    func hubCounts() async -> (head: Int64, conflicts: [(policy: String, status: String, count: Int64)]) {
        (try? await hubDatabase.withConnection { connection in
            let head = try connection.query("SELECT coalesce(max(seq), 0) AS h FROM starling_hub.log")[0].int64("h")
            let rows = try connection.query(
                "SELECT policy, status, count(*) AS n FROM starling_hub.conflicts GROUP BY 1, 2 ORDER BY 1, 2")
            let conflicts = try rows.map { (try $0.string("policy"), try $0.string("status"), try $0.int64("n")) }
            return (head, conflicts)
        }) ?? (0, [])
    }

    func draw(view: DemoView, phase: String, fraction: Double) async {
        let lines = await regionLines()
        let (head, conflicts) = await hubCounts()
        var text: [String] = []
        let width = 30
        let filled = Int((min(max(fraction, 0), 1) * Double(width)).rounded())
        text.append("\(phase.padding(10)) [\(String(repeating: "█", count: filled))\(String(repeating: "·", count: width - filled))] "
                    + "\(Int(fraction * 100))%   hub head seq \(head)")
        text.append("region".padding(14) + "writes".leftPadding(8) + "pushed".leftPadding(8) + "applied".leftPadding(9)
                    + "outbox".leftPadding(8) + "cursor".leftPadding(8) + "  last error")
        for line in lines {
            let lag = head - line.cursor
            text.append(line.name.padding(14) + "\(line.writes)".leftPadding(8) + "\(line.pushed)".leftPadding(8)
                        + "\(line.applied)".leftPadding(9) + "\(line.outbox)".leftPadding(8)
                        + "\(lag <= 0 ? "head" : "-\(lag)")".leftPadding(8) + "  " + (line.error.map { String($0.prefix(40)) } ?? "-"))
        }
        let total = conflicts.reduce(0) { $0 + $1.count }
        let byPolicy = Dictionary(grouping: conflicts, by: \.policy).map { policy, rows in
            "\(policy) \(rows.reduce(0) { $0 + $1.count })" + (rows.contains { $0.status == "open" }
                ? " (\(rows.filter { $0.status == "open" }.reduce(0) { $0 + $1.count }) open)" : "")
        }.sorted().joined(separator: ", ")
        text.append("conflicts detected and resolved: \(total)\(byPolicy.isEmpty ? "" : " — " + byPolicy)")
        view.redraw(text)
    }

    func printSummary(view: DemoView, converged: Bool, hubURL: String) async {
        let lines = await regionLines()
        let (head, conflicts) = await hubCounts()
        let writes = lines.reduce(0) { $0 + $1.writes }
        view.finishLive()
        view.say("")
        view.say("summary: \(writes) application writes in \(lines.count) regions, \(head) log entries at the hub")
        for row in conflicts {
            view.say("  \(row.policy.padding(9)) conflicts \(row.status.padding(9)) \(row.count)")
        }
        if converged {
            view.say("converged: every table is identical in all \(lines.count) regions (md5 of ordered rows), outboxes empty")
        } else {
            view.say("NOT converged within 120 s — see the log and \(hubURL)/ for details")
        }
    }
}

/// The terminal: a live block redrawn in place on a TTY, plain periodic lines otherwise.
final class DemoView: Sendable {
    private let isTTY = isatty(1) == 1
    private let state = Mutex<(lines: Int, lastPlain: ContinuousClock.Instant?)>((0, nil))

    func say(_ text: String) { Console.out(text + "\n") }

    func redraw(_ lines: [String]) {
        if isTTY {
            let previous = state.withLock { state -> Int in
                defer { state.lines = lines.count }
                return state.lines
            }
            var out = previous > 0 ? "\u{1B}[\(previous)A" : ""
            for line in lines { out += "\u{1B}[2K" + line + "\n" }
            Console.out(out)
        } else {
            let now = ContinuousClock.now
            let due = state.withLock { state -> Bool in
                guard let last = state.lastPlain, now - last < .seconds(5) else {
                    state.lastPlain = now
                    return true
                }
                return false
            }
            if due { Console.out(lines.joined(separator: "\n") + "\n") }
        }
    }

    /// Ends the live block so later lines print below it.
    func finishLive() { state.withLock { $0.lines = 0 } }
}

extension String {
    func padding(_ width: Int) -> String { count >= width ? self : self + String(repeating: " ", count: width - count) }
    func leftPadding(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
