import Foundation
import StarlingPostgres

/// A seeded random workload with conflicts: every region writes the same few keys of one table per policy
/// (inserts, updates, deletes, 1–3 per transaction) and logs every write that committed, with a unique token
/// in the written column, so the test can find each write in the hub's log or conflicts afterwards.
struct Workload: Sendable {
    /// One table per conflict policy, the same columns in every region.
    static let tables: [(name: String, policy: String)] = [
        ("public.t_lww", "lww"), ("public.t_prio", "priority"), ("public.t_merge", "merge"),
        ("public.t_manual", "manual"), ("public.t_reject", "reject"),
    ]

    static var ddl: String {
        tables.map {
            "CREATE TABLE \($0.name) (k int PRIMARY KEY, v text, n int NOT NULL DEFAULT 0, note text);"
        }.joined(separator: "\n")
    }

    /// One committed write.
    struct Write: Sendable, Hashable {
        var region: String
        var table: String
        var key: Int
        var op: String
        /// The value written into `column` (nil for a delete).
        var token: String?
        var column: String?
    }

    var seed: UInt64
    var transactions: Int
    var keys: Int

    /// Runs `region`'s share on `connection` (blocking); returns the committed writes.
    func run(region: String, index: Int, connection: PostgresConnection, counterStart: Int = 0) -> [Write] {
        var random = SplitMix64(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        var log: [Write] = []
        var counter = counterStart
        for _ in 0..<transactions {
            var pending: [Write] = []
            do {
                try connection.execute("BEGIN")
                for _ in 0..<(1 + Int(random.next() % 3)) {
                    let table = Self.tables[Int(random.next() % UInt64(Self.tables.count))].name
                    let key = 1 + Int(random.next() % UInt64(keys))
                    counter += 1
                    let token = "\(region):\(counter)"
                    let roll = random.next() % 10
                    if roll < 4 {
                        let result = try connection.query(
                            "INSERT INTO \(table) (k, v, note) VALUES ($1, $2, $3) ON CONFLICT (k) DO NOTHING",
                            [.int(key), .text(token), .text("n-" + token)])
                        if result.affectedRows == 1 {
                            pending.append(Write(region: region, table: table, key: key, op: "insert", token: token, column: "v"))
                        }
                    } else if roll < 8 {
                        let column = random.next() % 2 == 0 ? "v" : "note"
                        let result = try connection.query(
                            "UPDATE \(table) SET \(column) = $2, n = n + 1 WHERE k = $1", [.int(key), .text(token)])
                        if result.affectedRows == 1 {
                            pending.append(
                                Write(region: region, table: table, key: key, op: "update", token: token, column: column))
                        }
                    } else {
                        let result = try connection.query("DELETE FROM \(table) WHERE k = $1", [.int(key)])
                        if result.affectedRows == 1 {
                            pending.append(Write(region: region, table: table, key: key, op: "delete", token: nil, column: nil))
                        }
                    }
                }
                try connection.execute("COMMIT")
                log += pending
            } catch {
                // A deadlock with the agent's apply (or any clash) aborts this transaction only.
                _ = try? connection.execute("ROLLBACK")
            }
        }
        return log
    }
}

/// SplitMix64: a tiny seeded generator, so a failing run can be replayed from its printed seed.
struct SplitMix64: Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Deployment {
    /// Runs `workload` in every region at once; returns every committed write.
    func runWorkload(_ workload: Workload, counterStart: Int = 0) async throws -> [Workload.Write] {
        try await withThrowingTaskGroup(of: [Workload.Write].self) { group in
            for (index, region) in regions.enumerated() {
                group.addTask {
                    try await self.sql(region) { connection in
                        workload.run(region: region, index: index, connection: connection, counterStart: counterStart)
                    }
                }
            }
            var all: [Workload.Write] = []
            for try await writes in group { all += writes }
            return all
        }
    }

    /// Checks "nothing lost, nothing doubled": every committed write reached the hub exactly once (one
    /// decision per captured change, no change id twice in the log) and is in the log or on the losing side
    /// of a recorded conflict; every final value comes from a logged write. Returns problems (empty: fine).
    func auditWrites(_ writes: [Workload.Write]) async throws -> [String] {
        var problems: [String] = []
        let hubRows = try await sql("hub") { connection in
            try connection.query("SELECT table_name, key, op, origin, coalesce(row, 'null') FROM starling_hub.log")
                .map { [try $0.string(0), try $0.string(1), try $0.string(2), try $0.string(3), try $0.string(4)] }
        }
        var seen = Set<String>()
        var deletes = Set<String>()
        func tokens(_ json: Any?) -> [String] {
            guard let row = json as? [String: Any] else { return [] }
            return [row["v"], row["note"]].compactMap { $0 as? String }
        }
        for row in hubRows {
            let table = row[0]
            let key = (try? JSONSerialization.jsonObject(with: Data(row[1].utf8)) as? [String: Any])?["k"] as? Int ?? -1
            if row[2] == "delete" { deletes.insert("\(table) \(key) \(row[3])") }
            for token in tokens(try? JSONSerialization.jsonObject(with: Data(row[4].utf8))) {
                seen.insert("\(table) \(token)")
            }
        }
        for conflict in try await conflicts() {
            guard let table = conflict["table"] as? String, let incoming = conflict["incoming"] as? [String: Any]
            else { continue }
            let key = (conflict["key"] as? [String: Any])?["k"] as? Int ?? -1
            if incoming["op"] as? String == "delete", let origin = incoming["origin"] as? String {
                deletes.insert("\(table) \(key) \(origin)")
            }
            for token in tokens(incoming["row"]) { seen.insert("\(table) \(token)") }
        }
        for write in writes {
            if let token = write.token {
                if !seen.contains("\(write.table) \(token)") { problems.append("lost: \(write)") }
            } else if !deletes.contains("\(write.table) \(write.key) \(write.region)") {
                problems.append("lost delete: \(write)")
            }
        }
        let duplicates = try await sql("hub") { connection in
            try connection.query(
                "SELECT count(*) FROM (SELECT change_id FROM starling_hub.log WHERE kind IN ('change', 'merge') "
                    + "GROUP BY change_id HAVING count(*) > 1) d")[0].int64(0)
        }
        if duplicates > 0 { problems.append("\(duplicates) change ids are in the log more than once") }
        for region in regions {
            let decided = try await sql("hub") { connection in
                // Accepted and merged changes are in the log by change id; rejected ones in decisions.
                try connection.query(
                    "SELECT (SELECT count(*) FROM starling_hub.log WHERE kind IN ('change', 'merge') AND change_id LIKE $1)"
                        + " + (SELECT count(*) FROM starling_hub.decisions WHERE change_id LIKE $1)",
                    [.text(region + ":%")]
                )[0].int64(0)
            }
            let written = writes.filter { $0.region == region }.count
            if decided != Int64(written) {
                problems.append("\(region): \(written) committed writes but \(decided) decided changes at the hub")
            }
        }
        let allTokens = Set(writes.compactMap { write in write.token.map { "\(write.table) \($0)" } })
        for table in Workload.tables {
            let values = try await sql(regions[0]) { connection in
                try connection.query("SELECT v, note FROM \(table.name)").flatMap {
                    [try $0.optionalString(0), try $0.optionalString(1)].compactMap { $0 }
                }
            }
            for value in values where !value.hasPrefix("n-") && !allTokens.contains("\(table.name) \(value)") {
                problems.append("\(table.name): final value \(value) was never written")
            }
        }
        return problems
    }
}
