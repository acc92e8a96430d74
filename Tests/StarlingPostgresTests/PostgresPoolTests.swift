import Glibc
import StarlingPostgres
import StarlingTestSupport
import Synchronization
import Testing

/// Spins (without sleeping) until `condition` holds or `timeout` passes; returns whether it held. Only for code
/// on the pool's own threads (a job holding its thread on purpose); test bodies use the async `waitUntil`, which
/// leaves the cooperative pool free for the work it waits on.
func spinUntil(timeout: Duration = .seconds(60), _ condition: () throws -> Bool) rethrows -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    while clock.now < deadline {
        if try condition() { return true }
        sched_yield()
    }
    return try condition()
}

/// An integer shared between test tasks and pool threads.
final class SharedCounter: Sendable {
    let atomic = Atomic<Int>(0)
    func load() -> Int { atomic.load(ordering: .sequentiallyConsistent) }
}

/// A flag shared between test tasks and pool threads.
final class SharedFlag: Sendable {
    let atomic = Atomic<Bool>(false)
    func load() -> Bool { atomic.load(ordering: .sequentiallyConsistent) }
    func store(_ value: Bool) { atomic.store(value, ordering: .sequentiallyConsistent) }
}

/// Something a job captures, big enough to matter.
final class Payload: Sendable {
    let bytes = [UInt8](repeating: 1, count: 4096)
}

/// A weak reference to a ``Payload``, read from the test's task and set before the job runs.
final class WeakPayload: @unchecked Sendable {  // `value` is guarded by `lock`.
    private let lock = Mutex<Void>(())
    private weak var value: Payload?

    func set(_ payload: Payload) { lock.withLock { _ in value = payload } }
    var isFreed: Bool { lock.withLock { _ in value == nil } }
}

@Suite(.timeLimit(.minutes(2)))
struct PostgresPoolTests {
    /// Proves the pool runs jobs concurrently, one connection per thread: three jobs meet at a barrier that only
    /// opens when all three run at once, on three different backends.
    @Test func poolRunsJobsConcurrently() async throws {
        try await TestDatabase.with { db in
            let pool = PostgresPool(configuration: PostgresThreadConfiguration(url: db.url, connectionCount: 3))
            let arrived = SharedCounter()
            let pids = try await withThrowingTaskGroup(of: Int32.self) { group in
                for _ in 0..<3 {
                    group.addTask {
                        try await pool.withConnection { connection in
                            let pid = try connection.query("SELECT pg_backend_pid() AS pid")[0].int32("pid")
                            arrived.atomic.add(1, ordering: .sequentiallyConsistent)
                            guard spinUntil({ arrived.load() == 3 }) else {
                                throw PostgresError(code: .init("barrier"), message: "jobs did not run concurrently")
                            }
                            return pid
                        }
                    }
                }
                return try await group.reduce(into: Set<Int32>()) { $0.insert($1) }
            }
            #expect(pids.count == 3)
            let sum = try await withThrowingTaskGroup(of: Int64.self) { group in
                for index in 0..<50 {
                    group.addTask {
                        try await pool.withConnection {
                            try $0.query("SELECT $1::bigint * 2 AS v", [.int(index)])[0].int64("v")
                        }
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(sum == 2 * (0..<50).reduce(0, +))
            await pool.shutdown()
            let closed = await #expect(throws: PostgresError.self) { try await pool.withConnection { _ in 1 } }
            #expect(closed?.code == .poolClosed)
        }
    }

    /// Proves the pool notices a backend killed with pg_terminate_backend and reconnects for the next job;
    /// a job that hits the dead connection gets isConnectionLost and the one after it succeeds.
    @Test func poolSurvivesTerminatedBackend() async throws {
        try await TestDatabase.with { db in
            let pool = PostgresPool(configuration: PostgresThreadConfiguration(url: db.url, connectionCount: 1))
            let admin = try db.connect()
            let before = try await pool.withConnection { try $0.query("SELECT pg_backend_pid() AS p")[0].int32("p") }
            #expect(try admin.query("SELECT pg_terminate_backend($1) AS ok", [.int32(before)])[0].bool("ok"))
            try await waitUntil("the terminated backend is gone") {
                try admin.query(
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE pid = $1",
                    [.int32(before)])[0].int64("n") == 0
            }
            let after = try await pool.withConnection { try $0.query("SELECT pg_backend_pid() AS p")[0].int32("p") }
            #expect(after != before)

            // A backend that dies during a job: the job fails with isConnectionLost, the next job reconnects.
            let lost = await #expect(throws: PostgresError.self) {
                try await pool.withConnection { connection in
                    try connection.query("SELECT pg_terminate_backend(pg_backend_pid())").rowCount
                }
            }
            #expect(lost?.isConnectionLost == true)
            #expect(lost?.message.isEmpty == false)
            let third = try await pool.withConnection { try $0.query("SELECT pg_backend_pid() AS p")[0].int32("p") }
            #expect(third != after)
            await pool.shutdown()
        }
    }

    /// Proves the job queue is bounded: with the only thread busy and the queue full, the next job is refused
    /// with poolOverloaded instead of queueing without limit.
    @Test func poolQueueIsBounded() async throws {
        try await TestDatabase.with { db in
            let pool = PostgresPool(
                configuration: PostgresThreadConfiguration(
                    url: db.url, connectionCount: 1,
                    maxQueuedJobs: 1))
            let release = SharedFlag()
            let started = SharedFlag()
            async let blocker: Void = pool.withConnection { _ in
                started.store(true)
                _ = spinUntil { release.load() }
            }
            try await waitUntil("the blocking job runs") { started.load() }
            let queuedRan = SharedFlag()
            try pool.submit { _ in queuedRan.store(true) }
            let overloaded = await #expect(throws: PostgresError.self) { try await pool.withConnection { _ in 0 } }
            #expect(overloaded?.code == .poolOverloaded)
            release.store(true)
            try await blocker
            try await waitUntil("the queued job ran") { queuedRan.load() }
            #expect(try await pool.withConnection { _ in 1 } == 1)
            await pool.shutdown()
        }
    }

    /// Proves a worker runs jobs strictly in submission order on one session, and that a job's leftover open
    /// transaction is rolled back before the next job.
    @Test func workerRunsJobsInOrder() async throws {
        try await TestDatabase.with { db in
            let worker = PostgresWorker(url: db.url, applicationName: "starling-test-worker")
            try await worker.withConnection { _ = try $0.executeScript("CREATE TABLE log (n int)") }
            for n in 0..<20 {
                try worker.submit { _ = try? $0.get().execute("INSERT INTO log VALUES ($1)", [.int(n)]) }
            }
            let order = try await worker.withConnection { connection in
                try connection.query("SELECT n FROM log ORDER BY ctid").map { try $0.int64("n") }
            }
            #expect(order == (0..<20).map(Int64.init))
            try await worker.withConnection { connection in
                _ = try connection.executeScript("BEGIN")
                _ = try connection.execute("INSERT INTO log VALUES (99)")
            }
            let state = try await worker.withConnection { connection in
                (
                    connection.isInTransaction,
                    try connection.query("SELECT count(*) AS c FROM log WHERE n = 99")[0].int64("c"),
                    try connection.query(
                        "SELECT application_name AS a FROM pg_stat_activity WHERE pid = pg_backend_pid()")[0]
                        .string("a")
                )
            }
            #expect(state.0 == false)
            #expect(state.1 == 0)
            #expect(state.2 == "starling-test-worker")
            await worker.shutdown()
            let name = try await db.withConnection { try $0.query("SELECT current_database() AS d")[0].string("d") }
            #expect(name == db.name)
        }
    }

    /// Proves a job and what it captured are freed once it ran, not when the queue compacts. Before: the taken job
    /// stayed in the queue's array until 64 more had been taken, so an agent's workers kept up to 64 pulled pages
    /// (a thousand entries each) alive and freed them in bursts; the agents' heaps fragmented and each W1 run at
    /// R=8 was slower than the one before it (2026-12-06).
    @Test func aJobIsFreedOnceItRan() async throws {
        try await TestDatabase.with { db in
            let worker = PostgresWorker(url: db.url)
            let held = WeakPayload()
            try await Self.runJob(holding: held, on: worker)
            try await waitUntil("the job's captured payload is freed", timeout: .seconds(10)) { held.isFreed }
            await worker.shutdown()
        }
    }

    /// Proves ``PostgresWorker/taskExecutor``: a task preferring it runs on the worker's thread before and after
    /// awaiting one of the worker's jobs (which ran there too), and after the worker shut down it goes on, on Swift's
    /// pool, instead of waiting forever for a thread that is gone.
    @Test func aTaskPreferringTheWorkerRunsOnItsThread() async throws {
        try await TestDatabase.with { db in
            let worker = PostgresWorker(url: db.url, threadName: "pg-exec")
            let names = try await withTaskExecutorPreference(worker.taskExecutor) { () async throws -> [String] in
                let before = Self.threadName()
                let inJob = try await worker.withConnection { connection in
                    "\(Self.threadName()) \(try connection.query("SELECT 1 AS one")[0].int64("one"))"
                }
                return [before, inJob, Self.threadName()]
            }
            #expect(names == ["pg-exec-0", "pg-exec-0 1", "pg-exec-0"])
            await worker.shutdown()
            let after = await withTaskExecutorPreference(worker.taskExecutor) { () async -> String in
                await Task.yield()
                return Self.threadName()
            }
            #expect(after != "pg-exec-0")
        }
    }

    /// The calling thread's name (`/proc/thread-self/comm`; Glibc's `pthread_getname_np` is not imported).
    private static func threadName() -> String {
        guard let file = fopen("/proc/thread-self/comm", "r") else { return "?" }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 32)
        guard fgets(&buffer, Int32(buffer.count), file) != nil else { return "?" }
        return String(decoding: buffer.prefix { $0 != 0 && $0 != 10 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Runs one job on `worker` that captures a payload only `held` refers to (weakly) besides the job.
    private static func runJob(holding held: WeakPayload, on worker: PostgresWorker) async throws {
        let payload = Payload()
        held.set(payload)
        #expect(try await worker.withConnection { _ in payload.bytes.count } == 4096)
    }
}
