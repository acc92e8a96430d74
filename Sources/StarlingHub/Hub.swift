public import Logging
import StarlingHTTP2
public import StarlingIO
import StarlingPostgres
import Synchronization

/// The Starling hub: sequencer, ordered log, conflict detection and the HTTP API in one process.
///
/// Lifecycle: ``init(configuration:logger:)`` validates the configuration; ``start()`` applies the
/// migrations, takes the sequencer lock (waiting while another hub holds it), loads region state and starts
/// listening; ``run()`` keeps the background work going (region status writes, table shape refresh) and
/// returns after ``shutdown()``. `starling hub` and the tests drive it the same way.
public final class Hub: Sendable {
    public let settings: HubSettings
    private let logger: Logger
    private let pool: PostgresPool
    private let notifier = CommitNotifier()
    private let metrics = HubMetrics()
    private let activity: RegionActivity
    private let sequencer: Sequencer
    private let api: HubAPI
    private let server: HTTP2Server
    private let stopped = Mutex<Bool>(false)
    private let stopSignal = AsyncStream<Void>.makeStream()

    /// Validates `configuration`; nothing is opened yet.
    public init(configuration: HubConfiguration, logger: Logger) throws(HubError) {
        let settings = try configuration.validate()
        self.settings = settings
        self.logger = logger
        pool = PostgresPool(
            configuration: PostgresThreadConfiguration(
                url: settings.database, applicationName: "starling-hub",
                connectionCount: settings.limits.poolConnections,
                maxQueuedJobs: 4096, threadName: "starling-hubpg"),
            logger: logger)
        activity = RegionActivity(regions: settings.regions.map(\.name))
        metrics.prepareDeadLetterCounters(regions: settings.regions.map(\.name), tables: settings.tables.map(\.name))
        sequencer = Sequencer(settings: settings, notifier: notifier, metrics: metrics, logger: logger)
        api = HubAPI(
            settings: settings, sequencer: sequencer, pool: pool, notifier: notifier, activity: activity,
            metrics: metrics, logger: logger)
        var serverConfiguration = HTTP2ServerConfiguration(address: settings.listen, tls: settings.tls)
        serverConfiguration.allowInsecure = settings.insecure
        serverConfiguration.limits.maxRequestBodyBytes = settings.limits.maxBodyBytes
        // Long-polls hold a stream open for up to max_wait_ms; the idle timeout must outlast them.
        serverConfiguration.limits.idleTimeout = .milliseconds(max(120_000, settings.limits.maxWaitMs * 2))
        server = HTTP2Server(configuration: serverConfiguration, router: api.makeRouter(), logger: logger)
        api.serverCounters.withLock { $0 = server.counters }
    }

    /// The address the server listens on (after ``start()``; the real port when configured with port 0).
    public var localAddress: SocketAddress? { server.localAddress }

    /// The newest committed seq.
    public var head: Int64 { notifier.head }

    /// Migrates, becomes the sequencer, loads state and starts listening.
    public func start() async throws {
        let migrator = try PostgresMigrator(schema: HubMigrations.schema, migrations: HubMigrations.all, logger: logger)
        let applied = try await pool.withConnection { connection in try migrator.migrate(connection) }
        if !applied.isEmpty { logger.info("hub schema migrated", metadata: ["db.versions": "\(applied)"]) }
        logger.info("waiting for the sequencer lock")
        let head = try await sequencer.start()
        let regions = try await pool.withConnection { try HubStore.loadRegions($0) }
        for (name, entry) in regions { activity.load(name, entry) }
        try await refreshShapes()
        try server.start()
        logger.info(
            "hub started",
            metadata: [
                "listen": "\(server.localAddress?.description ?? "?")", "seq": "\(head)",
                "tls": "\(settings.tls != nil)",
            ])
    }

    /// Runs the background work until ``shutdown()``; then flushes region state one last time.
    ///
    /// One child waits for the stop signal for the whole run and the other sleeps and flushes: cancelling a
    /// task that awaits an `AsyncStream` finishes the stream, so the stop signal must not be raced anew on
    /// every tick (that turned this loop into a busy loop after its first tick).
    public func run() async {
        let interval = Duration.milliseconds(settings.limits.statusFlushMs)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [stopSignal] in
                for await _ in stopSignal.stream {}
            }
            group.addTask { [self] in
                while true {
                    try? await Task.sleep(for: interval)
                    if Task.isCancelled || stopped.withLock({ $0 }) { return }
                    await flushActivity()
                    try? await refreshShapes()
                }
            }
            group.addTask { [self] in
                await api.reconciler.run { self.stopped.withLock { $0 } }
            }
            await group.next()
            group.cancelAll()
        }
        await server.waitUntilStopped()
    }

    /// Stops accepting requests (in-flight ones get `gracePeriod`), stops the sequencer and the pool.
    public func shutdown(gracePeriod: Duration = .seconds(5)) async {
        let already = stopped.withLock { stopped in
            defer { stopped = true }
            return stopped
        }
        guard !already else { return }
        logger.info("hub stopping")
        await server.shutdown(gracePeriod: gracePeriod)
        await sequencer.shutdown()
        await flushActivity()
        stopSignal.continuation.finish()
        await pool.shutdown()
        logger.info("hub stopped")
    }

    private func flushActivity() async {
        let dirty = activity.takeDirty()
        guard !dirty.isEmpty else { return }
        do {
            try await pool.withConnection { try HubStore.saveRegions($0, dirty) }
        } catch {
            activity.markDirty(dirty.map(\.0))
            logger.warning("writing region status failed", metadata: ["error": "\(error)"])
        }
    }

    private func refreshShapes() async throws {
        let shapes = try await pool.withConnection { try HubStore.loadShapes($0) }
        api.shapes.withLock { $0 = shapes }
    }
}
