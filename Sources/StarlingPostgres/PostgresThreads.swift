public import Logging

/// A unit of work for a connection thread. It receives the thread's connection (or the error that prevented
/// connecting) and runs on that thread, so it may block in libpq.
public typealias PostgresJob = @Sendable (Result<PostgresConnection, PostgresError>) -> Void

/// What the threads of a pool or worker connect with.
public struct PostgresThreadConfiguration: Sendable {
    /// Connection URL (`postgresql://…`).
    public var url: String
    /// `application_name` for the connections (default nil: libpq's default).
    public var applicationName: String?
    /// Number of threads, each owning one connection (default 4, at least 1).
    public var connectionCount: Int
    /// Jobs that may wait for a thread before `poolOverloaded` is thrown (default 1024, at least 1).
    public var maxQueuedJobs: Int
    /// Thread name prefix shown by `top -H` / gdb (default `starling-pg`, cut to 15 bytes with the index).
    public var threadName: String
    /// Runs on every new connection before its first job (session state such as a replication origin); a
    /// failure closes the connection and fails the job, and the next job connects again.
    public var sessionSetup: (@Sendable (PostgresConnection) throws -> Void)?

    public init(
        url: String, applicationName: String? = nil, connectionCount: Int = 4, maxQueuedJobs: Int = 1024,
        threadName: String = "starling-pg", sessionSetup: (@Sendable (PostgresConnection) throws -> Void)? = nil
    ) {
        self.url = url
        self.applicationName = applicationName
        self.connectionCount = max(1, connectionCount)
        self.maxQueuedJobs = max(1, maxQueuedJobs)
        self.threadName = threadName
        self.sessionSetup = sessionSetup
    }
}

/// The machinery shared by `PostgresPool` and `PostgresWorker`: N detached pthreads, each owning one
/// connection, taking jobs from one bounded FIFO queue guarded by a `ConditionLock`.
///
/// It is also a `TaskExecutor`: a task that prefers it (`withTaskExecutorPreference`) runs its code between awaits on
/// these threads, in the same queue as the connection jobs, so a task that mostly waits for its database jobs is
/// resumed where they ran instead of waking a thread of Swift's pool for each (README "Apply").
///
/// Connections are opened lazily by the thread that owns them and never leave it. Before each job an idle
/// connection is checked (a terminated backend is noticed and replaced); after each job a connection that is
/// broken, or left inside a transaction that cannot be rolled back, is dropped and reopened for the next job.
final class PostgresThreads: Sendable {
    /// Queue state; guarded by `lock`.
    struct State: Sendable {
        /// Queued jobs from `head` on; the slots before it are nil: a job leaves the queue when a thread takes it, so
        /// what it captured (a pulled page of a thousand entries) is freed when it finishes, not when the queue
        /// compacts. Keeping the last 64 taken jobs held up to 64 pages per agent, freed in bursts under the lock;
        /// with glibc's allocator the agents' heaps fragmented and each W1 run at R=8 ran slower than the one before
        /// (37, 47, 58 s on 2026-12-06; flat with jemalloc).
        var jobs: [Queued?] = []
        /// Index of the oldest queued job in `jobs` (the nil slots before it are compacted away lazily).
        var head = 0
        var isClosed = false
        var runningThreads = 0
        var shutdownWaiters: [CheckedContinuation<Void, Never>] = []

        var queuedCount: Int { jobs.count - head }
    }

    /// What the queue holds: a job for a thread's connection, or a task's job (``enqueue(_:)-(ExecutorJob)``), which
    /// needs no connection and is not bounded by `maxQueuedJobs` (a task cannot be refused).
    enum Queued: Sendable {
        case connection(PostgresJob)
        case task(UnownedJob)
    }

    let configuration: PostgresThreadConfiguration
    private let lock: ConditionLock<State>
    private let logger: Logger

    init(configuration: PostgresThreadConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        self.lock = ConditionLock(State(runningThreads: configuration.connectionCount))
        for index in 0..<configuration.connectionCount {
            let name = "\(configuration.threadName)-\(index)"
            startDetachedThread(name: name) { [self] in runThread(index: index) }
        }
    }

    /// Queues `job`; throws `poolClosed` after shutdown and `poolOverloaded` when the queue is full.
    func enqueue(_ job: @escaping PostgresJob) throws(PostgresError) {
        let outcome: PostgresError? = lock.withLock { state in
            if state.isClosed { return PostgresError(code: .poolClosed, message: "the Postgres pool is shut down") }
            if state.queuedCount >= configuration.maxQueuedJobs {
                return PostgresError(
                    code: .poolOverloaded,
                    message: "\(state.queuedCount) Postgres jobs are already queued")
            }
            state.jobs.append(.connection(job))
            return nil
        }
        if let outcome { throw outcome }
        lock.signal()
    }

    /// Runs `body` on a connection thread and returns its value.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            do {
                try enqueue { acquired in
                    switch acquired {
                    case .success(let connection): continuation.resume(with: Result { try body(connection) })
                    case .failure(let error): continuation.resume(throwing: error)
                    }
                }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    /// Stops taking jobs, fails the queued ones with `poolClosed`, lets running jobs finish, and returns once
    /// every thread has closed its connection and exited.
    func shutdown() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (failed, isFinished) = lock.withLock { state -> ([Queued], Bool) in
                let failed = close(&state)
                if state.runningThreads == 0 { return (failed, true) }
                state.shutdownWaiters.append(continuation)
                return (failed, false)
            }
            lock.broadcast()
            failJobs(failed)
            if isFinished { continuation.resume() }
        }
    }

    /// Closes without waiting (used from `deinit` of the owner).
    func closeWithoutWaiting() {
        let failed = lock.withLock { state in close(&state) }
        lock.broadcast()
        failJobs(failed)
    }

    private func close(_ state: inout State) -> [Queued] {
        state.isClosed = true
        let failed = state.jobs[state.head...].compactMap { $0 }
        state.jobs.removeAll()
        state.head = 0
        return failed
    }

    /// Fails the connection jobs; the tasks' jobs go to Swift's global executor (a task always runs on).
    private func failJobs(_ jobs: [Queued]) {
        let error = PostgresError(code: .poolClosed, message: "the Postgres pool was shut down")
        for queued in jobs {
            switch queued {
            case .connection(let job): job(.failure(error))
            case .task(let job): globalConcurrentExecutor.enqueue(job)
            }
        }
    }

    /// The next job, sleeping while the queue is empty; nil once closed.
    private func nextJob() -> Queued? {
        lock.waitThenLock(until: { $0.isClosed || $0.queuedCount > 0 }) { state in
            guard !state.isClosed else { return nil }
            let job = state.jobs[state.head].take()
            state.head += 1
            if state.head >= 64 && state.head * 2 >= state.jobs.count {
                state.jobs.removeFirst(state.head)
                state.head = 0
            }
            return job
        }
    }

    /// A connection thread's whole life: take jobs until closed, then close the connection and report exit.
    private func runThread(index: Int) {
        var logger = self.logger
        logger[metadataKey: PostgresLogKey.thread] = "\(index)"
        var connection: PostgresConnection?
        while let next = nextJob() {
            switch next {
            case .connection(let job):
                job(acquire(&connection, logger: logger))
                release(&connection, logger: logger)
            case .task(let job):
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        connection?.close()
        let waiters = lock.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.runningThreads -= 1
            guard state.runningThreads == 0 else { return [] }
            defer { state.shutdownWaiters.removeAll() }
            return state.shutdownWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// The thread's connection, checked and reopened when it broke while idle.
    private func acquire(_ connection: inout PostgresConnection?, logger: Logger) -> Result<
        PostgresConnection, PostgresError
    > {
        if let existing = connection {
            if existing.checkIdleConnection() { return .success(existing) }
            logger.debug("Postgres connection lost while idle, reconnecting")
            existing.close()
            connection = nil
        }
        do throws(PostgresError) {
            let opened = try PostgresConnection.connect(
                url: configuration.url,
                applicationName: configuration.applicationName)
            if let setup = configuration.sessionSetup {
                do {
                    try setup(opened)
                } catch {
                    opened.close()
                    throw error as? PostgresError
                        ?? PostgresError(code: .queryFailed, message: "session setup failed: \(error)")
                }
            }
            connection = opened
            return .success(opened)
        } catch {
            logger.debug("Postgres connect failed", metadata: [PostgresLogKey.error: "\(error)"])
            return .failure(error)
        }
    }

    /// After a job: drop a broken connection; roll back a transaction the job left open.
    private func release(_ connection: inout PostgresConnection?, logger: Logger) {
        guard let existing = connection else { return }
        if !existing.isConnectionLost && existing.isInTransaction {
            logger.debug("Postgres job left a transaction open, rolling back")
            existing.rollbackQuietly()
        }
        if existing.isConnectionLost || !existing.isIdle {
            logger.debug("dropping Postgres connection after job")
            existing.close()
            connection = nil
        }
    }
}

extension PostgresThreads: TaskExecutor {
    /// Queues a task's job behind the jobs queued before it; after shutdown it goes to Swift's global executor.
    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let isQueued = lock.withLock { state in
            guard !state.isClosed else { return false }
            state.jobs.append(.task(unowned))
            return true
        }
        if isQueued {
            lock.signal()
        } else {
            globalConcurrentExecutor.enqueue(unowned)
        }
    }
}

/// Loggers of this module.
public enum PostgresLogging {
    /// A logger that discards everything: the default where a caller (tests, tools) passes none.
    public static let disabled = Logger(label: "starling.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
}

/// Logging metadata keys of this module.
enum PostgresLogKey {
    static let thread = "db.thread"
    static let error = "db.error"
    static let sqlState = "db.sqlstate"
    static let migration = "db.migration"
}
