import Foundation
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Delta columns under pgbench's TPC-B transactions, run concurrently in three regions
/// against the same branch, tellers and accounts: every increment counts everywhere.
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DeltaPgbenchTests {
    static let pgbench = "/usr/lib/postgresql/15/bin/pgbench"
    static let regions = 3
    /// Transactions per region (two clients each): bounded so the whole test stays well under a minute.
    static let transactions = 80
    static let accounts = 2000

    /// The synced tables. Deployment writes `{name: …, policy: …}` into hub.yaml; the policy text carries the
    /// `delta:` list along in the same flow mapping.
    static let tables: [(name: String, policy: String)] = [
        ("public.pgbench_branches", "lww, delta: [bbalance]"),
        ("public.pgbench_tellers", "lww, delta: [tbalance]"),
        ("public.pgbench_accounts", "lww, delta: [abalance]"),
        ("public.pgbench_history", "lww"),
    ]

    /// pgbench's TPC-B-like transaction (its built-in `tpcb-like` script), with accounts drawn from the first
    /// `accounts` only, so the regions start from a small identical copy and collide on accounts too.
    static let script = """
        \\set aid random(1, \(accounts))
        \\set bid 1
        \\set tid random(1, 10)
        \\set delta random(-5000, 5000)
        BEGIN;
        UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
        SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
        UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
        UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
        INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
        END;

        """

    /// After `pgbench -i -I dtp` (pgbench's own tables and primary keys, no data): the same rows in every
    /// region, as pgbench's generator writes them (balances 0) for scale 1 cut to `accounts` accounts.
    /// pgbench_history has no primary key in stock pgbench, and a synced table needs one; its rows are
    /// inserted concurrently in every region, so a plain serial would collide across regions (insert-insert
    /// conflicts would drop history rows). The key is (region, hid): the region's name as a column default
    /// plus a local bigserial, the "per-region key" choice of the README's "Globally unique ids".
    static func data(region: String) -> String {
        """
        INSERT INTO pgbench_branches (bid, bbalance) VALUES (1, 0);
        INSERT INTO pgbench_tellers (tid, bid, tbalance) SELECT t, 1, 0 FROM generate_series(1, 10) t;
        INSERT INTO pgbench_accounts (aid, bid, abalance, filler)
            SELECT a, 1, 0, '' FROM generate_series(1, \(accounts)) a;
        ALTER TABLE pgbench_history ADD COLUMN region text NOT NULL DEFAULT '\(region)',
            ADD COLUMN hid bigserial, ADD PRIMARY KEY (region, hid);
        """
    }

    // Proves: three regions running TPC-B transactions concurrently on the same rows end with identical
    // tables, and each balance column's sum equals the sum of every delta written (pgbench_history, synced
    // too, holds each region's every committed transaction exactly once).
    @Test func concurrentTPCBKeepsEveryIncrement() async throws {
        try await Deployment.with(
            regions: Self.regions, tables: Self.tables, ddl: "SELECT 1;", startAgents: false
        ) { deployment in
            for region in deployment.regions {
                let url = try #require(deployment.regionDatabases[region]?.url)
                let initialize = try ChildProcess.launch(Self.pgbench, ["-i", "-I", "dtp", "-q", url])
                let status = try await initialize.waitForExit(timeout: .seconds(30))
                #expect(status == 0, "pgbench -i in \(region): \(initialize.output)")
                try await deployment.sql(region) { try $0.executeScript(Self.data(region: region)) }
            }
            // r1 adopts first; the others start once its rows are all at the hub. Started earlier, a region
            // may compare its rows with a partly pushed adoption and be refused (adoption_refused: "1000 rows
            // here differ"): an adoption race of the table lifecycle, not what this test is about.
            try await deployment.startAgent("r1")
            let rows = Int64(Self.accounts + 10 + 1)
            let deadline = ContinuousClock.now + .seconds(30)
            func heads() async throws -> Int64 {
                try await deployment.sql("hub") { try $0.query("SELECT count(*) FROM starling_hub.heads")[0].int64(0) }
            }
            while try await heads() < rows {
                guard ContinuousClock.now < deadline else { throw E2EError("r1's adoption did not reach the hub") }
                try await Task.sleep(for: .milliseconds(50))
            }
            for region in deployment.regions.dropFirst() { try await deployment.startAgent(region) }

            let scriptFile = deployment.directory.appendingPathComponent("tpcb.sql")
            try Self.script.write(to: scriptFile, atomically: true, encoding: .utf8)
            var runs: [(String, ChildProcess)] = []
            for region in deployment.regions {
                let url = try #require(deployment.regionDatabases[region]?.url)
                runs.append(
                    (region, try ChildProcess.launch(
                        Self.pgbench,
                        ["-n", "-f", scriptFile.path, "-c", "2", "-j", "1", "-t", "\(Self.transactions)",
                         "--max-tries=20", url])))
            }
            var committed: [String: Int64] = [:]
            for (region, run) in runs {
                let status = try await run.waitForExit(timeout: .seconds(60))
                #expect(status == 0, "pgbench in \(region): \(run.output)")
                committed[region] = try await Self.processed(run)
            }

            try await deployment.waitForConvergence(timeout: .seconds(60))
            for region in deployment.regions {
                let sums = try await deployment.sql(region) { connection in
                    let row = try connection.query(
                        "SELECT (SELECT sum(abalance) FROM pgbench_accounts), "
                            + "(SELECT sum(tbalance) FROM pgbench_tellers), "
                            + "(SELECT sum(bbalance) FROM pgbench_branches), "
                            + "(SELECT coalesce(sum(delta), 0) FROM pgbench_history)")[0]
                    return [try row.int64(0), try row.int64(1), try row.int64(2), try row.int64(3)]
                }
                #expect(Set(sums).count == 1, "\(region): accounts, tellers, branches, history sums \(sums)")
                for origin in deployment.regions {
                    let rows = try await deployment.sql(region) {
                        try $0.query("SELECT count(*) FROM pgbench_history WHERE region = $1", [.text(origin)])[0]
                            .int64(0)
                    }
                    #expect(rows == committed[origin], "\(region) holds \(rows) history rows of \(origin)")
                }
            }
            let conflicts = try await deployment.conflicts()
            let merged = conflicts.filter { ($0["table"] as? String) == "public.pgbench_branches" }
            print("e2e delta: \(committed) committed, \(conflicts.count) conflicts, \(merged.count) on the branch")
            #expect(!merged.isEmpty, "the regions' concurrent updates of the one branch must have conflicted")
            #expect(conflicts.allSatisfy { ($0["status"] as? String) == "auto" }, "no counter overflowed")
        }
    }

    /// pgbench's "number of transactions actually processed: N/M" → N. The child's output reaches us through
    /// a pipe handler that may lag its exit, so poll with a deadline.
    static func processed(_ run: ChildProcess) async throws -> Int64 {
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline {
            if let line = run.output.split(separator: "\n").first(where: { $0.contains("actually processed") }),
                let figures = line.split(separator: ":").last?.split(separator: "/").first,
                let count = Int64(figures.trimmingCharacters(in: .whitespaces))
            {
                return count
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw E2EError("no transaction count in pgbench's output:\n\(run.output)")
    }
}
