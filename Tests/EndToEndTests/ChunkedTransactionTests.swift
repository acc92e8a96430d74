import Foundation
import StarlingPostgres
import StarlingTestSupport
import Synchronization
import Testing

/// Origin transactions larger than a push (README "Large transactions"): chunked by the origin's agent, staged at
/// the hub, logged whole, applied whole at every receiver; in the capture mode of the run (``Deployment/capture``:
/// ops/test runs the end-to-end suites once with WAL capture and once with triggers).
@Suite(.serialized, .timeLimit(.minutes(6)))
struct ChunkedTransactionTests {
    /// Rows of the big transactions go above this key (the workload's keys stay far below).
    static let base = 1_000_000

    /// Polls `count(*)` of the big transaction's rows in `url`'s database on its own connection until stopped;
    /// returns every count it saw.
    final class Reader: Sendable {
        let stop = Atomic<Bool>(false)
        let seen = Mutex<Set<Int64>>([])
        let reads = Atomic<Int>(0)

        func run(url: String) -> Task<Void, any Error> {
            Task.detached { [self] in
                let connection = try PostgresConnection.connect(url: url)
                defer { connection.close() }
                while !stop.load(ordering: .relaxed) {
                    let count = try connection.query(
                        "SELECT count(*) FROM public.t_lww WHERE k > \(ChunkedTransactionTests.base)")[0].int64(0)
                    seen.withLock { _ = $0.insert(count) }
                    reads.add(1, ordering: .relaxed)
                    // A pause between reads only leaves the 2-core machine to the replication under test.
                    try await Task.sleep(for: .milliseconds(5))
                }
            }
        }
    }

    /// (entries, max − min + 1) of the big transaction in the hub's log, and the chunks still staged.
    static func logged(_ deployment: Deployment) async throws -> (entries: Int64, span: Int64, staged: Int64) {
        try await deployment.sql("hub") { connection in
            let row = try connection.query(
                "SELECT count(*), coalesce(max(seq) - min(seq) + 1, 0), "
                    + "(SELECT count(*) FROM starling_hub.staged_chunks) FROM starling_hub.log "
                    + "WHERE table_name = 'public.t_lww' AND (key::jsonb->>'k')::bigint > \(base)")[0]
            return (try row.int64(0), try row.int64(1), try row.int64(2))
        }
    }

    /// Peak resident memory of a child process in MiB (VmHWM), for the report.
    static func peakMiB(_ process: ChildProcess?) -> Int {
        guard let pid = process?.pid,
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return -1 }
        return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) / 1024
    }

    static func insert(_ rows: Int) -> String {
        "INSERT INTO public.t_lww (k, v, note) SELECT \(base) + g, 'big:' || g, 'n-big' "
            + "FROM generate_series(1, \(rows)) g"
    }

    @Test func aTransactionOverTheOldLimitReachesTheOtherRegionWhole() async throws {
        // Proves a 150 000-row transaction under WAL capture (over the old max_transaction_changes of 100 000;
        // max_push_changes 1000 and the agents' batch of 500 make it 300 chunks), 40 000 rows under trigger capture
        // (80 chunks: its apply of version rows takes minutes for 150 000 in a debug build), is logged at contiguous
        // seqs and appears in the other region all at once: a reader polling the receiver sees only 0 or all of it.
        let capture = Deployment.capture
        let rows = capture == "trigger" ? 40_000 : 150_000
        try await Self.withTwoRegions(hubLimits: "max_push_changes: 1000") { deployment in
            let reader = Reader()
            let reading = reader.run(url: deployment.regionDatabases["r2"]?.url ?? "")
            let started = ContinuousClock.now
            try await deployment.sql("r1") { try $0.execute(Self.insert(rows)) }
            try await waitUntil("the transaction reaches r2", timeout: .seconds(240), every: .milliseconds(100)) {
                reader.seen.withLock { $0.contains(Int64(rows)) }
            }
            let elapsed = ContinuousClock.now - started
            reader.stop.store(true, ordering: .relaxed)
            try await reading.value
            let seen = reader.seen.withLock { $0 }
            #expect(seen.isSubset(of: [0, Int64(rows)]), "a reader of r2 saw part of the transaction: \(seen.sorted())")
            #expect(reader.reads.load(ordering: .relaxed) > 10, "the reader read while the transaction travelled")
            #expect(try await Self.logged(deployment) == (Int64(rows), Int64(rows), 0))
            try await deployment.waitForConvergence()
            print(
                "chunked \(capture): \(rows) rows commit→visible \(elapsed); peak RSS MiB "
                    + "hub \(Self.peakMiB(deployment.hub)) "
                    + "r1 \(Self.peakMiB(deployment.agents["r1"])) r2 \(Self.peakMiB(deployment.agents["r2"]))")
        }
    }

    @Test func killingTheOriginAgentMidPushLosesAndRepeatsNothing() async throws {
        // Proves kill -9 of the origin's agent while its chunks are being staged leaves nothing in the log (a
        // half-staged transaction is invisible), and the restarted agent completes it: every row logged once, at
        // contiguous seqs, no chunk left staged, both regions equal.
        try await Self.crashMidPush(crash: { try await $0.killAgent("r1") }, recover: { try await $0.startAgent("r1") })
    }

    @Test func killingTheHubMidPushLosesNothing() async throws {
        // Proves kill -9 of the hub while a transaction's chunks are being staged loses nothing: the chunks are in
        // the hub's database, the restarted hub finishes the transaction from them and the agent's re-sends, and
        // it is logged once, at contiguous seqs, with nothing left staged and both regions equal.
        try await Self.crashMidPush(crash: { try await $0.killHub() }, recover: { try await $0.startHub() })
    }

    @Test func killingTheActiveHubMidPushTheStandbyFinishesIt() async throws {
        // Proves a hub failover in the middle of a chunked push loses nothing: the active hub is killed -9 while
        // the chunks are staged, the standby takes the sequencer lock, the agents move to it, and it logs the
        // transaction once, at contiguous seqs, from the chunks in the shared store and the agent's re-sends.
        try await Self.crashMidPush(
            withStandby: true,
            crash: { deployment in
                try await deployment.killHub()
                if let standby = deployment.standbyPort { try deployment.useHub(port: standby) }
            },
            recover: { _ in })
    }

    @Test func batchesAndChunksFitTheHubsLimitsAndKeepOrder() async throws {
        // Proves the agents cut their pushes by the hub's limits (from /v1/config), not only by their own
        // tuning.batch (1,000 changes by default): with max_push_changes 100, a 2,500-row transaction and a
        // stream of small ones from two regions replicate (before: every 1,000-change batch got 413 on every
        // retry and both streams stopped), and order holds: the small transaction that updates a row of the big
        // one after it committed wins everywhere.
        try await Self.withTwoRegions(hubLimits: "max_push_changes: 100") { deployment in
            try await deployment.sql("r1") { connection in
                try connection.execute(Self.insert(2_500))
                try connection.execute("UPDATE public.t_lww SET v = 'after' WHERE k = \(Self.base + 1)")
                for i in 1...150 {
                    try connection.execute(
                        "INSERT INTO public.t_lww (k, v, note) VALUES (\(Self.base + 10_000 + i), 'small', 'r1')")
                }
            }
            try await deployment.sql("r2") { connection in
                for i in 1...150 {
                    try connection.execute(
                        "INSERT INTO public.t_lww (k, v, note) VALUES (\(Self.base + 20_000 + i), 'small', 'r2')")
                }
            }
            try await deployment.waitForConvergence(timeout: .seconds(120))
            for region in ["r1", "r2"] {
                let (count, value) = try await deployment.sql(region) { connection in
                    let row = try connection.query(
                        "SELECT count(*), (SELECT v FROM public.t_lww WHERE k = \(Self.base + 1)) "
                            + "FROM public.t_lww WHERE k > \(Self.base)")[0]
                    return (try row.int64(0), try row.string(1))
                }
                #expect(count == 2_800, "\(region)")
                #expect(value == "after", "\(region): the update after the big transaction must win")
            }
        }
    }

    @Test func aTransactionOfFewWideRowsIsChunkedByBytes() async throws {
        // Proves a transaction within the count limit but over the hub's body limit (40 rows of 6 KB against
        // max_body_bytes 64 KiB) is chunked by bytes and replicates whole (before: it went as one push, 413 on
        // every retry, and the region's stream stopped there).
        try await Self.withTwoRegions(hubLimits: "max_body_bytes: 65536") { deployment in
            try await deployment.sql("r1") { connection in
                try connection.execute(
                    "INSERT INTO public.t_lww (k, v, note) SELECT \(Self.base) + g, repeat('w', 6000), 'wide' "
                        + "FROM generate_series(1, 40) g")
                // And as many wide rows in transactions of their own: a batch of several transactions must stay
                // within the limit too (WAL capture once counted 24 bytes per column whatever the value's width,
                // so such a batch went out far over it).
                for i in 41...80 {
                    try connection.execute(
                        "INSERT INTO public.t_lww (k, v, note) VALUES (\(Self.base + i), repeat('w', 6000), 'wide')")
                }
            }
            try await deployment.waitForConvergence(timeout: .seconds(60))
            let copied = try await deployment.sql("r2") {
                try $0.query("SELECT count(*) FROM public.t_lww WHERE k > \(Self.base) AND length(v) = 6000")[0]
                    .int64(0)
            }
            #expect(copied == 80)
        }
    }

    /// Two regions running with the workload's tables, their hub started with `limits: {hubLimits}`; `withStandby`:
    /// a second hub on the same store, and agents configured with both (the active one first).
    static func withTwoRegions(
        hubLimits: String, withStandby: Bool = false, _ body: (Deployment) async throws -> Void
    ) async throws {
        try await Deployment.with(regions: 2, tables: Workload.tables, ddl: Workload.ddl, startAgents: false) {
            deployment in
            // The hub `with` started has the default limits: replaced by one with these on the same port.
            try await deployment.killHub()
            deployment.hubExtraYAML = "limits: {\(hubLimits)}\n"
            try await deployment.startHub()
            if withStandby {
                let standby = try await deployment.startStandbyHub()
                deployment.standbyPort = standby
                deployment.agentHubURLs = ["http://127.0.0.1:\(deployment.hubPort)", "http://127.0.0.1:\(standby)"]
            }
            try await deployment.startAgent("r1")
            try await deployment.startAgent("r2")
            try await body(deployment)
        }
    }

    /// Two regions whose hub takes pushes of 1,000 changes; a 30,000-row transaction committed in r1; `crash` once
    /// at least five of its chunks are staged (none logged yet), then `recover`. Afterwards the transaction is
    /// logged once at contiguous seqs, nothing is left staged, and r2 holds every row.
    static func crashMidPush(
        withStandby: Bool = false, crash: @escaping (Deployment) async throws -> Void,
        recover: @escaping (Deployment) async throws -> Void
    ) async throws {
        let rows = 30_000
        try await withTwoRegions(hubLimits: "max_push_changes: 1000", withStandby: withStandby) { deployment in
            try await deployment.sql("r1") { try $0.execute(Self.insert(rows)) }
            try await waitUntil("r1 has staged chunks", timeout: .seconds(60), every: .milliseconds(5)) {
                try await Self.logged(deployment).staged >= 5
            }
            try await crash(deployment)
            let halfway = try await Self.logged(deployment)
            #expect(halfway.entries == 0 && halfway.staged >= 5, "staged, not logged, at the crash: \(halfway)")
            try await recover(deployment)
            try await deployment.waitForConvergence(timeout: .seconds(120))
            #expect(try await Self.logged(deployment) == (Int64(rows), Int64(rows), 0))
            let copied = try await deployment.sql("r2") {
                try $0.query("SELECT count(*) FROM public.t_lww WHERE k > \(Self.base)")[0].int64(0)
            }
            #expect(copied == Int64(rows))
        }
    }
}

