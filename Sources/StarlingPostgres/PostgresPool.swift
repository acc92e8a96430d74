public import Logging

/// A small pool of Postgres connections for async code: N dedicated threads, each owning one connection.
///
/// libpq blocks, so it never runs on an event loop or on Swift's cooperative pool: `withConnection` queues the
/// body on a bounded job queue, one of the pool's threads runs it on its own connection, and the caller's task
/// resumes through a continuation. Connections are opened lazily and replaced when they break (a terminated
/// backend, a network failure); a job that fails because its connection broke gets an error with
/// `isConnectionLost`, and the next job gets a fresh connection. Jobs are not cancelled with their task: a
/// job that started runs to completion.
///
/// Call `shutdown()` before dropping the pool; dropping it without closes the threads without waiting.
public final class PostgresPool: Sendable {
    private let threads: PostgresThreads

    /// Starts `configuration.connectionCount` threads (connections open on first use).
    public init(configuration: PostgresThreadConfiguration, logger: Logger = PostgresLogging.disabled) {
        threads = PostgresThreads(configuration: configuration, logger: logger)
    }

    deinit {
        threads.closeWithoutWaiting()
    }

    /// The configuration the pool was started with.
    public var configuration: PostgresThreadConfiguration { threads.configuration }

    /// Runs `body` on one of the pool's threads with that thread's connection and returns its value.
    /// Throws `poolOverloaded` when the queue is full, `poolClosed` after shutdown, `connectionFailed` when no
    /// connection could be opened, or whatever `body` throws.
    public func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        try await threads.withConnection(body)
    }

    /// Queues a job without awaiting it (for callers such as an event loop that hand results back themselves).
    public func submit(_ job: @escaping PostgresJob) throws(PostgresError) {
        try threads.enqueue(job)
    }

    /// Stops taking jobs, fails queued ones with `poolClosed`, waits for running ones, closes every connection.
    public func shutdown() async {
        await threads.shutdown()
    }
}

/// One dedicated thread with its own connection, running jobs strictly in submission order: the hub's
/// sequencer (one writer, group commit) and anything else that needs a single ordered session.
///
/// Same guarantees as `PostgresPool` with one connection: the connection is reopened when it breaks.
public final class PostgresWorker: Sendable {
    private let threads: PostgresThreads

    /// Starts the thread (the connection opens on first use).
    /// `sessionSetup` runs on every new connection before its first job (see `PostgresThreadConfiguration`).
    public init(
        url: String, applicationName: String? = nil, maxQueuedJobs: Int = 1024,
        threadName: String = "starling-pgw", logger: Logger = PostgresLogging.disabled,
        sessionSetup: (@Sendable (PostgresConnection) throws -> Void)? = nil
    ) {
        threads = PostgresThreads(
            configuration: PostgresThreadConfiguration(
                url: url, applicationName: applicationName, connectionCount: 1,
                maxQueuedJobs: maxQueuedJobs, threadName: threadName, sessionSetup: sessionSetup),
            logger: logger)
    }

    deinit {
        threads.closeWithoutWaiting()
    }

    /// Runs `body` on the worker's thread and connection, after every job submitted before it.
    public func withConnection<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        try await threads.withConnection(body)
    }

    /// Queues a job without awaiting it.
    public func submit(_ job: @escaping PostgresJob) throws(PostgresError) {
        try threads.enqueue(job)
    }

    /// The worker's thread as a task executor: a task preferring it runs between its awaits on that thread, in
    /// order with the worker's jobs (after shutdown, on Swift's global executor). Only for tasks that do not block
    /// the thread waiting for one of its own jobs.
    public var taskExecutor: any TaskExecutor { threads }

    /// Stops the thread after the running job and closes its connection; queued jobs fail with `poolClosed`.
    public func shutdown() async {
        await threads.shutdown()
    }
}
