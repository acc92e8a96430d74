import Foundation
import StarlingPostgres
import StarlingTestSupport
import Testing

/// Reconciliation end to end: real hub and agents, regions corrupted behind the agents' backs.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct ReconcileTests {
    /// The rows corrupted per region: key → how it differs from the hub afterwards.
    static let corruption: [String: [Int: String]] = [
        "r2": [1005: "different", 1010: "missing", 999_999: "extra"],
        "r3": [1020: "different", 1030: "missing"],
    ]

    /// Reconciliation finds exactly the rows written with capture disabled in two regions, repairs them so
    /// every region converges, reports nothing on converged data, and data-diff agrees before and after.
    @Test func findsAndRepairsExactlyTheCorruptedRows() async throws {
        let seed = ConvergenceTests.seed()
        print("e2e reconcile: seed \(seed) (replay with STARLING_E2E_SEED=\(seed))")
        // Trigger capture: the corruption is written with the capture trigger switched off (`starling.applying`);
        // under WAL capture every committed write is decoded, so there is no such back door to test with.
        try await Deployment.with(regions: 3, tables: Workload.tables, ddl: Workload.ddl, capture: "trigger") {
            deployment in
            var run = try await deployment.runWorkload(Workload(seed: seed, transactions: 30, keys: 8))
            try await deployment.sql("r1") { connection in
                try connection.execute(
                    "INSERT INTO public.t_lww (k, v, note) SELECT 1000 + g, 'bulk:' || g, 'n' FROM generate_series(1, 3000) g")
            }
            run.writes += (1...3000).map {
                Workload.Write(
                    region: "r1", table: "public.t_lww", key: 1000 + $0, op: "insert", token: "bulk:\($0)", column: "v")
            }
            // Before any corruption, the run passes every oracle.
            let problems = try await deployment.convergeAndCheck(
                run, bounds: ConvergenceOracle.Bounds(minWritesPerRegion: 7, minConflicts: 5), seed: seed)
            #expect(problems.isEmpty, "seed \(seed) (replay with STARLING_E2E_SEED=\(seed)): \(problems.prefix(20))")

            let clean = try await Self.reconcile(deployment)
            #expect(clean.status == "done", "\(clean.raw)")
            #expect(clean.results.count == 3 * Workload.tables.count, "\(clean.raw)")
            #expect(clean.results.allSatisfy { $0.differing == 0 && $0.repaired == 0 && $0.status == "done" }, "\(clean.raw)")
            #expect(clean.results.first { $0.region == "r1" && $0.table == "public.t_lww" }?.compared ?? 0 >= 3000)

            try await Self.corrupt(deployment)
            let before = try await Self.dataDiff(deployment, "r1", "r2")
            #expect(before == Set(Self.corruption["r2"]?.keys.map { $0 } ?? []), "data-diff before repair: \(before)")

            let repaired = try await Self.reconcile(deployment)
            #expect(repaired.status == "done", "\(repaired.raw)")
            for result in repaired.results {
                let expected = result.table == "public.t_lww" ? Self.corruption[result.region] ?? [:] : [:]
                #expect(result.differing == expected.count, "\(result.region) \(result.table): \(repaired.raw)")
                #expect(result.repaired == expected.count, "\(result.region) \(result.table): \(repaired.raw)")
                #expect(result.keys == expected, "\(result.region) \(result.table): \(repaired.raw)")
            }

            try await deployment.waitForConvergence()
            let after = try await Self.dataDiff(deployment, "r1", "r2")
            #expect(after.isEmpty, "data-diff after repair: \(after)")
            let again = try await Self.reconcile(deployment)
            #expect(again.results.allSatisfy { $0.differing == 0 && $0.status == "done" }, "\(again.raw)")
        }
    }

    /// Writes behind the agents' backs: the apply session's setting makes the capture trigger skip them.
    static func corrupt(_ deployment: Deployment) async throws {
        try await deployment.sql("r2") { connection in
            try connection.executeScript(
                """
                BEGIN;
                SET LOCAL starling.applying = 'on';
                UPDATE public.t_lww SET v = 'corrupt' WHERE k = 1005;
                DELETE FROM public.t_lww WHERE k = 1010;
                INSERT INTO public.t_lww (k, v, note) VALUES (999999, 'ghost', 'x');
                COMMIT;
                """)
        }
        try await deployment.sql("r3") { connection in
            try connection.executeScript(
                """
                BEGIN;
                SET LOCAL starling.applying = 'on';
                UPDATE public.t_lww SET note = 'corrupt', n = n + 1 WHERE k = 1020;
                DELETE FROM public.t_lww WHERE k = 1030;
                COMMIT;
                """)
        }
        let outbox = try await deployment.sql("r2") { try $0.query("SELECT count(*) FROM starling.outbox")[0].int64(0) }
        #expect(outbox == 0, "the corruption must not be captured")
    }

    /// One table's result of a run.
    struct Result {
        var region: String
        var table: String
        var status: String
        var compared: Int
        var differing: Int
        var repaired: Int
        var keys: [Int: String]
    }

    /// Starts a run through the API and waits until it is no longer running.
    static func reconcile(_ deployment: Deployment) async throws -> (status: String, results: [Result], raw: String) {
        let (status, json) = try await deployment.admin("POST", "/v1/reconcile")
        guard status == 200, let id = (json as? [String: Any])?["id"] as? Int else {
            throw E2EError("POST /v1/reconcile answered \(status): \(String(describing: json))")
        }
        var run: [String: Any] = [:]
        try await waitUntil("reconciliation \(id) finishes", timeout: .seconds(120)) {
            let (_, json) = try await deployment.admin("GET", "/v1/reconcile/\(id)")
            run = json as? [String: Any] ?? [:]
            return run["status"] as? String != "running"
        }
        let results = (run["results"] as? [[String: Any]] ?? []).map { item in
            var keys: [Int: String] = [:]
            for entry in item["differing_keys"] as? [[String: Any]] ?? [] {
                if let key = (entry["key"] as? [String: Any])?["k"] as? Int { keys[key] = entry["difference"] as? String }
            }
            return Result(
                region: item["region"] as? String ?? "", table: item["table"] as? String ?? "",
                status: item["status"] as? String ?? "", compared: item["rows_compared"] as? Int ?? -1,
                differing: item["rows_differing"] as? Int ?? -1, repaired: item["rows_repaired"] as? Int ?? -1, keys: keys)
        }
        let raw = String(describing: run)
        print("e2e reconcile: run \(id): \(run["status"] ?? "?") in \(run["seconds"] ?? "?") s")
        return (run["status"] as? String ?? "", results, raw)
    }

    /// Keys of `public.t_lww` that datafold's data-diff (an independent checker) finds differing between two
    /// regions' databases. The tool comes from the venv ops/test creates (`STARLING_DATADIFF`).
    static func dataDiff(_ deployment: Deployment, _ a: String, _ b: String) async throws -> Set<Int> {
        guard let tool = ProcessInfo.processInfo.environment["STARLING_DATADIFF"] else {
            throw E2EError("STARLING_DATADIFF is not set: run the suite with ops/test (it installs data-diff)")
        }
        func url(_ region: String) throws -> String {
            guard let database = deployment.regionDatabases[region] else { throw E2EError("no region \(region)") }
            // data-diff's Postgres driver insists on a password; the test cluster trusts loopback.
            return database.url.replacingOccurrences(of: "postgresql://postgres@", with: "postgresql://postgres:x@")
        }
        let result = try await ProcessRunner.run(
            tool,
            [try url(a), "public.t_lww", try url(b), "public.t_lww", "-k", "k", "-c", "v", "-c", "n", "-c", "note"],
            timeout: .seconds(120))
        guard result.exitCode == 0 else { throw E2EError("data-diff failed: \(result.transcript)") }
        var keys = Set<Int>()
        for line in result.stdout.split(separator: "\n") where line.hasPrefix("- ") || line.hasPrefix("+ ") {
            if let key = Int(line.dropFirst(2).prefix { $0 != "," }.trimmingCharacters(in: .whitespaces)) { keys.insert(key) }
        }
        return keys
    }
}
