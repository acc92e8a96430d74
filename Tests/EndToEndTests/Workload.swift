import Foundation
import StarlingPostgres
import StarlingTestSupport

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

    /// What one region's share did: the committed writes, and every transaction that failed (rolled back, or a
    /// COMMIT whose answer was lost) with its error, so a run cannot fail silently.
    struct Outcome: Sendable {
        var writes: [Write] = []
        var attempts = 0
        var failures: [String] = []
    }

    /// Runs `region`'s share on `connection` (blocking); returns the committed writes and the failures.
    func run(region: String, index: Int, connection: PostgresConnection, counterStart: Int = 0) -> Outcome {
        var random = SplitMix64(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        var outcome = Outcome()
        var counter = counterStart
        for _ in 0..<transactions {
            var pending: [Write] = []
            outcome.attempts += 1
            do {
                try connection.execute("BEGIN")
                for _ in 0..<(1 + Int(random.next() % 3)) {
                    counter += 1
                    if let write = try write(region: region, token: "\(region):\(counter)", &random, connection) {
                        pending.append(write)
                    }
                }
                try connection.execute("COMMIT")
                outcome.writes += pending
            } catch {
                // A deadlock with the agent's apply (or any clash) aborts this transaction only; it is counted.
                outcome.failures.append("\(error)")
                _ = try? connection.execute("ROLLBACK")
            }
        }
        return outcome
    }

    /// One random statement: insert (40 %), update of `v` or `note` (40 %) or delete (20 %) of a random key;
    /// the write if it changed a row.
    private func write(
        region: String, token: String, _ random: inout SplitMix64, _ connection: PostgresConnection
    ) throws -> Write? {
        let table = Self.tables[Int(random.next() % UInt64(Self.tables.count))].name
        let key = 1 + Int(random.next() % UInt64(keys))
        let roll = random.next() % 10
        if roll < 4 {
            let result = try connection.query(
                "INSERT INTO \(table) (k, v, note) VALUES ($1, $2, $3) ON CONFLICT (k) DO NOTHING",
                [.int(key), .text(token), .text("n-" + token)])
            return result.affectedRows == 1
                ? Write(region: region, table: table, key: key, op: "insert", token: token, column: "v") : nil
        } else if roll < 8 {
            let column = random.next() % 2 == 0 ? "v" : "note"
            let result = try connection.query(
                "UPDATE \(table) SET \(column) = $2, n = n + 1 WHERE k = $1", [.int(key), .text(token)])
            return result.affectedRows == 1
                ? Write(region: region, table: table, key: key, op: "update", token: token, column: column) : nil
        }
        let result = try connection.query("DELETE FROM \(table) WHERE k = $1", [.int(key)])
        return result.affectedRows == 1
            ? Write(region: region, table: table, key: key, op: "delete", token: nil, column: nil) : nil
    }
}

/// Everything the workload did in every region of a run, for the oracles' accounting and lower bounds.
struct WorkloadRun: Sendable {
    var writes: [Workload.Write] = []
    /// Transactions attempted and failed per region, with the first few errors.
    var attempts: [String: Int] = [:]
    var failures: [String: Int] = [:]
    var failureSamples: [String: [String]] = [:]

    mutating func add(_ outcome: Workload.Outcome, region: String) {
        writes += outcome.writes
        attempts[region, default: 0] += outcome.attempts
        failures[region, default: 0] += outcome.failures.count
        let samples = failureSamples[region] ?? []
        failureSamples[region] = samples + outcome.failures.prefix(max(0, 3 - samples.count))
    }

    mutating func add(_ other: WorkloadRun) {
        writes += other.writes
        attempts.merge(other.attempts, uniquingKeysWith: +)
        failures.merge(other.failures, uniquingKeysWith: +)
        failureSamples.merge(other.failureSamples) { Array(($0 + $1).prefix(3)) }
    }
}

extension Deployment {
    /// Runs `workload` in every region at once; returns every committed write and every failed transaction.
    func runWorkload(_ workload: Workload, counterStart: Int = 0) async throws -> WorkloadRun {
        try await withThrowingTaskGroup(of: (String, Workload.Outcome).self) { group in
            for (index, region) in regions.enumerated() {
                group.addTask {
                    let outcome = try await self.sql(region) { connection in
                        workload.run(region: region, index: index, connection: connection, counterStart: counterStart)
                    }
                    return (region, outcome)
                }
            }
            var run = WorkloadRun()
            for try await (region, outcome) in group { run.add(outcome, region: region) }
            return run
        }
    }
}
