public import Logging
import StarlingHTTP2
public import StarlingIO
import StarlingPostgres
import Synchronization

/// The Starling hub: sequencer, ordered log, conflict detection and the HTTP API in one process.
///
/// Lifecycle: ``init(configuration:logger:)`` validates the configuration; ``start()`` applies the
/// migrations, tries once to take the sequencer lock (active: loads region state) or else stays a standby, and
/// starts listening either way; ``run()`` keeps the background work going (region status writes, table shape
/// refresh, and the failover loop of `Hub+Failover`: a standby polls for the lock and takes over, the active
/// hub checks its lock session and steps down when it is lost) and returns after ``shutdown()``.
/// `starling hub` and the tests drive it the same way.
public final class Hub: Sendable {
    public let settings: HubSettings
    let logger: Logger
    let pool: PostgresPool
    let notifier = CommitNotifier()
    private let metrics = HubMetrics()
    let activity: RegionActivity
    let sequencer: Sequencer
    let role: HubRole
    let retention: LogRetention
    /// Registered table shapes: loaded at start and takeover, refreshed by ``run()``, read by the API.
    let shapes = ShapeCache()
    /// Reconciliation runs: started by the API or by the schedule that ``run()`` drives.
    let reconciler: Reconciler
    /// Reloads the table list from the configuration file (``reload()``).
    let reloader: HubReloader
    let api: HubAPI
    /// Where every part of the hub reads the time (``TimeSource/system`` unless a test passes another).
    let clock: TimeSource
    private let server: HTTP2Server
    let stopped = Mutex<Bool>(false)
    private let stopSignal = AsyncStream<Void>.makeStream()

    /// Validates `configuration`; nothing is opened yet. `configurationSource` reads the configuration file
    /// again for ``reload()`` (nil: the hub has no file and refuses reloads).
    public init(
        configuration: HubConfiguration, logger: Logger,
        configurationSource: (@Sendable () throws(HubError) -> HubConfiguration)? = nil, clock: TimeSource = .system
    ) throws(HubError) {
        let settings = try configuration.validate()
        self.settings = settings
        self.clock = clock
        self.logger = logger
        pool = PostgresPool(
            configuration: PostgresThreadConfiguration(
                url: settings.database, applicationName: "starling-hub",
                connectionCount: settings.limits.poolConnections,
                maxQueuedJobs: 4096, threadName: "starling-hubpg"),
            logger: logger)
        activity = RegionActivity(regions: settings.regions.map(\.name))
        metrics.prepareDeadLetterCounters(regions: settings.regions.map(\.name), tables: settings.tables.map(\.name))
        role = HubRole(registry: metrics.registry, clock: clock)
        let logCache = LogCache(maxBytes: settings.limits.logCacheBytes)
        sequencer = Sequencer(
            settings: settings, notifier: notifier, logCache: logCache, shapes: shapes, metrics: metrics, role: role,
            clock: clock, logger: logger)
        retention = LogRetention(settings: settings.retention, metrics: metrics)
        reconciler = Reconciler(
            settings: settings, pool: pool, sequencer: sequencer, metrics: metrics, clock: clock, logger: logger)
        reloader = HubReloader(
            configuration: configuration, source: configurationSource, tableSet: settings.tableSet, pool: pool,
            metrics: metrics, regions: settings.regions.map(\.name), logger: logger)
        let serverCounters = HTTP2ServerCounters()
        api = HubAPI(
            settings: settings, sequencer: sequencer, pool: pool, notifier: notifier, logCache: logCache,
            activity: activity, metrics: metrics, role: role, retention: retention, shapes: shapes,
            reconciler: reconciler, reloader: reloader, serverCounters: serverCounters, clock: clock, logger: logger)
        var serverConfiguration = HTTP2ServerConfiguration(address: settings.listen, tls: settings.tls)
        serverConfiguration.allowInsecure = settings.insecure
        serverConfiguration.limits.maxRequestBodyBytes = settings.limits.maxBodyBytes
        // Long-polls hold a stream open for up to max_wait_ms; the idle timeout must outlast them.
        serverConfiguration.limits.idleTimeout = .milliseconds(max(120_000, settings.limits.maxWaitMs * 2))
        server = HTTP2Server(
            configuration: serverConfiguration, router: api.makeRouter(), logger: logger, counters: serverCounters)
    }

    /// The address the server listens on (after ``start()``; the real port when configured with port 0).
    public var localAddress: SocketAddress? { server.localAddress }

    /// Reads the configuration file again and replaces the synced tables and their policies, after validating
    /// the whole file; a bad file keeps the running configuration and the error says why (``HubReloader``).
    @discardableResult
    public func reload() async throws(HubError) -> HubReloadOutcome {
        try await reloader.reload()
    }

    /// The newest committed seq.
    public var head: Int64 { notifier.head }

    /// Migrates, tries once to become the sequencer (else stays a standby, see ``isActive``) and starts
    /// listening.
    public func start() async throws {
        let migrator = try PostgresMigrator(schema: HubMigrations.schema, migrations: HubMigrations.all, logger: logger)
        let applied = try await pool.withConnection { connection in try migrator.migrate(connection) }
        if !applied.isEmpty { logger.info("hub schema migrated", metadata: ["db.versions": "\(applied)"]) }
        try await checkDeltaColumnsAgainstShapes()
        let isActive = try await takeOver()
        if !isActive {
            try await refreshShapes()
            try await pool.withConnection { [retention] in try retention.load(connection: $0) }
            logger.info("standby: another hub holds the sequencer lock; waiting to take over")
        }
        try server.start()
        logger.info(
            "hub started",
            metadata: [
                "listen": "\(server.localAddress?.description ?? "?")", "seq": "\(notifier.head)",
                "tls": "\(settings.tls != nil)", "role": "\(role.snapshot.role.rawValue)",
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
            group.addTask { [self] in await runFailover() }
            group.addTask { [self] in
                while true {
                    try? await Task.sleep(for: interval)
                    if Task.isCancelled || stopped.withLock({ $0 }) { return }
                    // A standby writes nothing; its region state is reloaded when it takes over.
                    if role.isActive { await flushActivity() }
                    try? await refreshShapes()
                }
            }
            group.addTask { [self] in
                while true {
                    try? await Task.sleep(for: .seconds(settings.retention.checkIntervalSeconds))
                    if Task.isCancelled || stopped.withLock({ $0 }) { return }
                    // Only the sequencer's holder prunes: a standby writes nothing.
                    guard role.isActive else { continue }
                    do {
                        _ = try await pruneLog()
                    } catch {
                        logger.warning("log retention failed", metadata: ["error": "\(error)"])
                    }
                }
            }
            group.addTask { [self, role] in
                await reconciler.run(isStopped: { self.stopped.withLock { $0 } }, isActive: { role.isActive })
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
        if role.isActive { await flushActivity() }
        stopSignal.continuation.finish()
        await pool.shutdown()
        logger.info("hub stopped")
    }

    /// One retention round now (the background loop runs one every `retention.check_interval`): drops the
    /// partitions below every active region's cursor and older than the window and the chunks staged longer
    /// ago than the window (``ChunkStaging/deleteStale(_:windowSeconds:)``), then refreshes the log metrics.
    /// See ``LogRetention``.
    @discardableResult
    public func pruneLog() async throws -> LogPruneOutcome {
        await flushActivity()
        let head = notifier.head
        let minCursor = retention.minCursor(
            regions: settings.regions.map(\.name), activity: activity.snapshot(), head: head,
            nowMicros: clock.wallClockMicros())
        let outcome = try await pool.withConnection { [retention] connection in
            let outcome = try retention.prune(connection: connection, minCursor: minCursor)
            try ChunkStaging.deleteStale(connection, windowSeconds: retention.settings.windowSeconds)
            try retention.refreshFigures(connection: connection, head: head)
            return outcome
        }
        if outcome.partitionsDropped > 0 {
            logger.info(
                "log pruned",
                metadata: [
                    "retention.partitions": "\(outcome.partitionsDropped)", "retention.entries": "\(outcome.entriesDropped)",
                    "seq": "\(outcome.prunedThrough)",
                ])
        }
        return outcome
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

    func refreshShapes() async throws {
        let entries = try await pool.withConnection { try HubStore.loadShapeEntries($0) }
        self.shapes.replace(with: entries)
    }
}
