public import Logging
import Glibc
import StarlingCore
import StarlingPostgres
import Synchronization

/// One region's agent: installs capture, registers table shapes, then pushes and pulls (DESIGN.md "Agent
/// rules", "Engine v2") until ``stop()``.
///
/// Threads: `run()` runs a push task, a pull task (one page fetched while the previous applies; two staggered
/// long polls when caught up over a slow link, ``PullLanes``), a status task, the LISTEN task and the
/// reconciliation task. The loop's database work runs on the agent's
/// `PostgresWorker` thread (one connection, jobs in order, so verdict handling and applies never interleave);
/// the status reports and the LISTEN have connections of their own; the hub is reached through ``HubLink``.
/// Only `isStopped`, the status fields and the operations in flight are shared (a `Mutex`). Hub and database
/// failures are retried with backoff and jitter and reported as `last_error`; while the hub is unreachable the
/// application keeps writing and the outbox grows. A push is retried with the same changes until verdicts
/// arrive; pulls go on meanwhile, and an entry meeting a key whose local change still waits for its verdict is
/// deferred until that verdict is handled.
public final class Agent: Sendable {
    /// Loop state readable from other threads (tests, status).
    public struct Progress: Sendable, Hashable {
        public var isRunning = false
        public var pushedChanges = 0
        public var appliedEntries = 0
        public var deadLetters = 0
        /// `VACUUM starling.outbox` runs that succeeded (see ``OutboxVacuum``).
        public var outboxVacuums = 0
        public var cursor: Int64 = 0
        public var lastError: String?
        /// Tables whose stream is stopped because their shape changed, with the reason (``ShapeGuard``).
        public var stoppedTables: [String: String] = [:]
        /// Pulled entries kept in `starling.held_entries` for a stopped table, and held entries applied since.
        public var heldEntries = 0
        public var resumedEntries = 0
        /// Seconds between the newest applied entry's HLC and the apply, while behind the head.
        public var applyLagSeconds = 0.0
        /// WAL capture: decoded changes waiting for their verdicts (as of the last status round).
        public var captureQueued = 0
        /// WAL capture: the most decoded changes the queue has held in this process (read when asked).
        public var captureQueuePeak = 0
        /// Rows re-asserted after rewinds (the hub's store was restored to an earlier point).
        public var reasserted = 0
        /// Transactions pushed a chunk at a time from a scratch file or the outbox (past
        /// `tuning.large_transaction_changes`).
        public var largeTransactions = 0
        /// Parts of pages applied in parallel (Agent+ParallelApply.swift).
        public var parallelParts = 0
    }

    /// An operation of the loop in flight (an apply, a push, a pull): reported once it runs ``stuckAfter``.
    struct Operation: Sendable {
        var what: String
        var started: ContinuousClock.Instant
        var isWarned = false
    }

    /// How long an operation runs before the agent's log and `/v1/status` say so.
    public static let stuckAfter = Duration.seconds(5)

    let configuration: AgentConfiguration
    let hub: any HubLink
    let database: PostgresWorker
    /// A second connection, dedicated to `LISTEN starling_outbox` (the capture trigger notifies it).
    private let listener: PostgresWorker
    /// A third one for the status reports, so a report never waits behind a long apply on `database`.
    private let statusDatabase: PostgresWorker
    /// Wakes the push task on a local write (and once a second from the listener), when a table resumes, and
    /// on stop.
    let wake = WakeUp()
    private let schema: AgentSchema
    let store: AgentStore
    /// What this region knows of the hub's log history (``LogHistory``), loaded at start.
    let history: LogHistory
    /// Keys with a re-assertion in the outbox after a rewind (Agent+Rewind.swift): under WAL capture, pulled
    /// entries of them are deferred until its verdict, as the outbox check defers them under trigger capture.
    let reassertPending = Mutex(Set<TableKey>())
    /// Rewinds done by this process: a push batch read before one carries bases from the lost history and is read
    /// again instead of being sent (``pushUntilVerdicts(_:approximateBytes:readAt:)``).
    let rewinds = Atomic<Int>(0)
    /// Answers the hub's reconciliation steps on its own connection, so a long scan never holds up apply.
    private let reconcile: ReconcileHasher
    let logger: Logger
    let shared = Mutex<
        (stopped: Bool, progress: Progress, operations: [String: Operation], errors: [String: String])
    >((false, Progress(), [:], [:]))
    /// What one push may carry at the hub (its `/v1/config` limits), read at start.
    let hubPushLimits = Mutex<HubConfig.PushLimits?>(nil)
    /// Touched by the push task only (`pushPending`); a mutex keeps the class `Sendable`.
    private let outboxVacuum = Mutex(OutboxVacuum())
    /// WAL capture: when the outbox was last found empty (and the shapes checked), and the rewind count then.
    /// Under WAL capture, once no longer switching, only rewinds (counted) and bootstraps (which reset this) write
    /// the outbox, so the push reads it (and checks the shapes) once a second only, not before every push of
    /// captured changes.
    let outboxFoundEmpty = Mutex<(at: ContinuousClock.Instant, rewinds: Int)?>(nil)
    /// Set when a stopped table resumed (and at start): the pull task then applies its held entries.
    let heldResumeDue = Mutex(false)
    /// WAL capture: tables whose queued changes may hold values captured under a shape the hub refused
    /// (``markForReimage(_:)``, Agent+Reimage.swift).
    let reimageTables = Mutex<Set<String>>([])
    /// WAL capture: the decoded changes on their way to the hub, the decoder's thread and connection, and the
    /// replication origin the database connection's session marks the agent's own transactions with.
    let captureQueue: CaptureQueue
    let walWorker: PostgresWorker
    let walCapture: WALCapture
    let origin: OriginSetting
    /// Parallel apply (Agent+ParallelApply.swift): the workers beside `database` (`tuning.apply.workers` − 1,
    /// connections opened on first use), each with its own replication origin, the serial tables last read, and
    /// what parts applied before a cursor move that did not happen.
    let applyWorkers: [PostgresWorker]
    let applyOrigins: [OriginSetting]
    let serialTablesCache = Mutex(SerialTablesCache())
    let partsDone = Mutex<PartsDone?>(nil)
    /// Applies and verdict handling, one at a time (``ApplyGate``).
    let applyGate = ApplyGate()
    /// The capture this run chose, why, and the synced tables' shapes (for the decoder).
    let capture = Mutex(ActiveCapture())
    /// Set when the agent's tasks must start over (``restartTasks()``): they end and ``run()`` starts again from the
    /// confirmed position.
    let restartDue = Mutex(false)
    /// When the next WAL-captured push may go (``PushPacing``).
    let pushPacing = Mutex(PushPacing())

    /// The database worker is owned by the agent and shut down when `run()` returns. `clockOffset` is added to
    /// every capture time before it feeds the HLC: a region whose clock runs ahead, for fault tests (the CLI
    /// reads it from the test-only `STARLING_CLOCK_OFFSET_MS`); zero otherwise.
    public init(
        configuration: AgentConfiguration, hub: any HubLink, schema: AgentSchema, logger: Logger,
        clockOffset: Duration = .zero
    ) {
        self.configuration = configuration
        self.hub = hub
        self.schema = schema
        let offset = clockOffset.components
        let history = LogHistory()
        self.history = history
        self.store = AgentStore(
            region: configuration.region,
            clockOffsetMicros: offset.seconds &* 1_000_000 &+ offset.attoseconds / 1_000_000_000_000, history: history)
        var logger = logger
        logger[metadataKey: AgentLogKey.region] = "\(configuration.region)"
        self.logger = logger
        self.reconcile = ReconcileHasher(configuration: configuration, hub: hub, logger: logger)
        let origin = OriginSetting()
        self.origin = origin
        self.database = PostgresWorker(
            url: configuration.database, applicationName: "starling-agent-\(configuration.region)",
            threadName: "starling-agent", logger: logger, sessionSetup: { connection in try origin.setUp(connection) })
        self.captureQueue = CaptureQueue(arrived: wake)
        let applyOrigins = (1..<max(1, configuration.tuning.apply.workers)).map { _ in OriginSetting() }
        self.applyOrigins = applyOrigins
        self.applyWorkers = applyOrigins.enumerated().map { index, origin in
            PostgresWorker(
                url: configuration.database,
                applicationName: "starling-agent-\(configuration.region)-apply-\(index + 1)",
                threadName: "starling-apply", logger: logger, sessionSetup: { connection in try origin.setUp(connection) })
        }
        self.walWorker = PostgresWorker(
            url: configuration.database, applicationName: "starling-agent-\(configuration.region)-slot",
            threadName: "starling-wal", logger: logger)
        self.walCapture = WALCapture(
            url: configuration.database, region: configuration.region, queue: captureQueue, logger: logger)
        self.listener = PostgresWorker(
            url: configuration.database, applicationName: "starling-agent-\(configuration.region)-listen",
            threadName: "starling-listen", logger: logger)
        self.statusDatabase = PostgresWorker(
            url: configuration.database, applicationName: "starling-agent-\(configuration.region)-status",
            threadName: "starling-status", logger: logger)
    }

    /// The channel the capture trigger notifies on every captured write.
    public static let outboxChannel = "starling_outbox"

    /// Asks `run()` to return (within one long-poll wait).
    public func stop() {
        shared.withLock { $0.stopped = true }
        wake.signal()
    }

    public var progress: Progress {
        var progress = shared.withLock { $0.progress }
        progress.captureQueuePeak = captureQueue.peak
        return progress
    }

    /// Ends the agent's tasks so that ``run()`` starts them again from the confirmed position (the WAL decoder failed,
    /// the synced tables changed, verdicts of an ended session were not saved); the pull task is woken to notice.
    func restartTasks() {
        restartDue.withLock { $0 = true }
        wake.signal()
    }

    /// True when stopped, or while the tasks wind down for a restart (``restartDue``).
    var isStopped: Bool { shared.withLock { $0.stopped } || restartDue.withLock { $0 } }

    private var isStopRequested: Bool { shared.withLock { $0.stopped } }

    /// Runs until stopped. Throws only what an operator must fix: a shape the hub refuses, a synced table
    /// that is missing or has no primary key, a hub config for another region.
    public func run() async throws(AgentError) {
        defer { shared.withLock { $0.progress.isRunning = false } }
        shared.withLock { $0.progress.isRunning = true }
        do {
            var backoff = RetryBackoff(configuration.tuning.backoff)
            while true {
                try await start()
                logger.info("agent started")
                let began = ContinuousClock.now
                // Cancelling the task that runs the agent stops it: a cancelled task's `Task.sleep` returns at
                // once, so otherwise every wait loop spun until `stop()` (a test whose body threw before calling
                // `stop()` left its agent burning both cores forever).
                await withTaskCancellationHandler {
                    await runTasks()
                } onCancel: {
                    stop()
                }
                if isStopRequested { break }
                // The WAL decoder failed, or the synced tables changed (Agent+Tables): everything starts again
                // from the confirmed position.
                captureQueue.reset()
                restartDue.withLock { $0 = false }
                // A run that lasted was a success: a decoder failure once a day does not wait as after many in a row.
                if ContinuousClock.now - began > .seconds(60) { backoff.reset() }
                await sleep(ms: backoff.nextMs())
            }
        } catch {
            await shutdownWorkers()
            throw error
        }
        await shutdownWorkers()
        logger.info("agent stopped")
    }

    private func shutdownWorkers() async {
        await walWorker.shutdown()
        await listener.shutdown()
        await statusDatabase.shutdown()
        await database.shutdown()
        for worker in applyWorkers { await worker.shutdown() }
        await reconcile.shutdown()
    }

    /// The loop beside the LISTEN, status and reconciliation tasks, until stopped.
    private func runTasks() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listen() }
            group.addTask { await self.reportUntilStopped() }
            group.addTask { await self.reconcile.run { self.isStopped } }
            group.addTask { await self.pushUntilStopped() }
            group.addTask { await self.watchTablesUntilStopped() }
            if capture.withLock({ $0.mode }) == .wal { group.addTask { await self.decodeUntilStopped() } }
            // On the database thread: the pull loop mostly waits for its fetches and its applies, and resumed on
            // Swift's pool each wait woke a pool thread and the apply another hop to the database thread (in W2 at
            // R=8, 2026-12-07, ten context switches per apply per agent, a quarter of the agents' CPU in the kernel's
            // task switch).
            await withTaskExecutorPreference(database.taskExecutor) { await self.pullUntilStopped() }
            // The pull task ends when the agent stops or restarts (``restartDue``); the others end with it.
            if restartDue.withLock({ $0 }) { wake.signal() } else { stop() }
            await group.waitForAll()
        }
    }

    /// Config, install, register; retried until they succeed or fail for good.
    private func start() async throws(AgentError) {
        var backoff = RetryBackoff(configuration.tuning.backoff)
        while !isStopped {
            do throws(AgentError) {
                try await takeCatchUpTarget()
                let config = try await hub.config()
                hubPushLimits.withLock { $0 = config.pushLimits }
                guard config.region == configuration.region else {
                    throw AgentError(
                        code: .invalidConfiguration,
                        message: "the token belongs to region \(config.region), not \(configuration.region)",
                        key: "region")
                }
                let schema = self.schema
                let choice = try await chooseCapture()
                let (shapes, drift) = try await db { connection in
                    let shapes = try config.tables.map { try TableShape.load(table: $0.name, connection: connection) }
                    let drift = try schema.install(
                        tables: shapes, captureTriggers: choice.captureTriggers, connection: connection)
                    return (shapes, drift)
                }
                try await prepareCapture(choice, shapes: shapes)
                if !(try await db { try schema.installSchemaCapture(connection: $0) }) {
                    let message =
                        "schema changes made in this region are not captured: creating the event trigger "
                        + "\(AgentSchema.schemaEventTrigger) needs a superuser. An ALTER TABLE of a synced table "
                        + "run here stops that table's stream; give schema changes to the hub (starling admin ddl)"
                    logger.warning("\(message)")
                }
                try await db { try TableLifecycle.markCaptureStart(connection: $0) }
                let regionID = config.regionID
                try await db { try NextID.store(regionID: regionID, connection: $0) }
                // A table altered while the agent was down keeps its old functions and registration; its stream
                // stays stopped until the shape is back (ShapeGuard).
                try await hub.register(shapes.filter { drift[$0.name] == nil })
                noteShapes(drift)
                try await loadLogHistory()
                // Entries a pull spilled before a restart are pulled again (AgentStore+Spill.swift).
                try await db { connection in try AgentStore.dropSpilled(through: nil, connection: connection) }
                let bootstrapper = makeBootstrapper()
                if try await bootstrapper.isNeeded() {
                    try Self.requireShapesInForce(shapes, hub: try await hub.config())
                    try await bootstrap(bootstrapper, tables: config.tables.map(\.name), isFresh: true)
                } else {
                    try await runJoined(bootstrapper, drift: drift)
                }
                clearError("start")
                return
            } catch where error.isRetryable {
                note(error, during: "start")
                await sleep(ms: backoff.nextMs())
            }
        }
    }

    /// A region that bootstraps takes the hub's rows as they are now, and tails the log from there: a schema change
    /// sequenced before would never reach it. So each table must have the shape in force (the hub's `/v1/config`)
    /// before its bootstrap; otherwise the agent stops, naming both column lists.
    static func requireShapesInForce(_ shapes: [TableShape], hub config: HubConfig) throws(AgentError) {
        for shape in shapes {
            guard let inForce = config.tables.first(where: { $0.name == shape.name })?.shape else { continue }
            guard !TableShape.sameColumns(shape.columns, inForce.columns) else { continue }
            func list(_ columns: [TableShape.Column]) -> String {
                columns.map { "\($0.name) \($0.type)" }.joined(separator: ", ")
            }
            throw AgentError(
                code: .schemaMismatch,
                message: "table \(shape.name) here has columns (\(list(shape.columns))), but the hub's shape in force "
                    + "is (\(list(inForce.columns))) after schema changes this region would not see (it bootstraps "
                    + "from the rows as they are now): create the table with the columns in force",
                key: shape.name)
        }
    }

    /// Keeps a `LISTEN` open on the listener connection and turns every notification into a wake-up, until
    /// stopped; reconnects with backoff when the connection breaks (a missed notification only delays a push
    /// to the next loop round).
    private func listen() async {
        var backoff = RetryBackoff(configuration.tuning.backoff)
        while !isStopped {
            do {
                try await listener.withConnection { [self] connection in
                    try connection.listen(channel: Self.outboxChannel)
                    wake.signal()
                    var quiet = 0
                    while !isStopped {
                        // A notification wakes the pusher; so does every fifth quiet wait (a safety net, ~1 s).
                        if !(try connection.waitForNotifications(timeout: .milliseconds(200))).isEmpty || quiet >= 4 {
                            wake.signal()
                            quiet = 0
                        } else {
                            quiet += 1
                        }
                    }
                    try connection.unlisten(channel: Self.outboxChannel)
                }
                backoff.reset()
            } catch {
                logger.debug("listen failed", metadata: [AgentLogKey.error: "\(error)"])
                await sleep(ms: backoff.nextMs())
            }
        }
    }

    /// Pushes the outbox as it fills, until stopped: woken by the capture trigger's NOTIFY (and at least once a
    /// second by the listener, a safety net for a lost notification). Never waits for a pull or an apply.
    private func pushUntilStopped() async {
        var backoff = RetryBackoff(configuration.tuning.backoff)
        while !isStopped {
            do throws(AgentError) {
                wake.clear()
                let isEmpty = try await pushPending()
                backoff.reset()
                clearError("push")
                if isEmpty { await wake.wait() }
            } catch {
                // The outbox keeps what was not pushed. A permanent failure (a revoked token) is reported and
                // logged until fixed.
                note(error, during: "push")
                await sleep(ms: backoff.nextMs())
            }
        }
    }

    /// Pulls and applies until stopped, one page ahead: the next page is fetched while one applies (DESIGN.md
    /// "Engine v2", Apply). Pushes run beside it on their own task; an entry that meets a local change still
    /// waiting for its verdict is deferred, not dropped (``AgentStore``), so the two never wait for each other.
    private func pullUntilStopped() async {
        var backoff = RetryBackoff(configuration.tuning.backoff)
        // Held entries of a table that is fine again are applied at the first round (left from an earlier run).
        heldResumeDue.withLock { $0 = true }
        while !isStopped {
            do throws(AgentError) {
                if heldResumeDue.withLock({ $0 }) { try await applyHeldEntries() }
                let store = self.store
                let (cursor, done) = try await db { connection in
                    let cursor = try store.state(connection: connection).cursor
                    return (cursor, try store.appliedParts(after: cursor, connection: connection))
                }
                partsDone.withLock { $0 = done.isEmpty ? nil : PartsDone(after: cursor, seqs: done) }
                shared.withLock { $0.progress.cursor = cursor }
                try await pullAndApply(from: cursor) { backoff.reset() }
            } catch where error.code == .logDiverged {
                // The hub's store was restored to an earlier point: rewind and re-assert (Agent+Rewind.swift).
                do throws(AgentError) {
                    try await rewind(after: error)
                    backoff.reset()
                } catch {
                    note(error, during: "pull")
                    await sleep(ms: backoff.nextMs())
                }
            } catch where error.code == .cursorPruned {
                // The hub pruned entries this region never pulled: reload the heads (keys with a pending local
                // change are skipped, so local writes survive and get their verdicts), then tail from there.
                do throws(AgentError) {
                    let tables = try await hub.config().tables.map(\.name)
                    try await bootstrap(makeBootstrapper(), tables: tables, isFresh: false)
                } catch {
                    note(error, during: "pull")
                    await sleep(ms: backoff.nextMs())
                }
            } catch {
                // The cursor keeps what was not applied: the pipeline restarts from it.
                note(error, during: "pull")
                await sleep(ms: backoff.nextMs())
            }
        }
    }

    /// The pipeline from `cursor`: a fetch in flight while the page before it applies (two, staggered, when
    /// caught up over a slow link: ``PullLanes``); returns when stopped or when a held table resumes (its held
    /// entries go first), throws the first failure (the fetches in flight are cancelled with it). `succeeded`
    /// runs after every applied page.
    private func pullAndApply(from cursor: Int64, succeeded: () -> Void) async throws(AgentError) {
        let waitMs = configuration.tuning.pull.waitMs
        var lanes = PullLanes(cursor: cursor)
        let latest = PullCursor(cursor)
        let outcome: Result<Void, AgentError> = await withTaskGroup(of: Result<Lane, AgentError>.self) { group in
            let first = lanes.start()
            group.addTask { await self.fetch(from: latest, waitMs: waitMs, delay: first) }
            while let result = await group.next() {
                let lane: Lane
                switch result {
                case .success(let value): lane = value
                case .failure(let error):
                    group.cancelAll()
                    return .failure(error)
                }
                if isStopped || heldResumeDue.withLock({ $0 }) {
                    group.cancelAll()
                    return .success(())
                }
                let (page, fetches) = lanes.arrived(lane.fetched, elapsed: lane.elapsed)
                latest.cursor = lanes.cursor
                for delay in fetches {
                    group.addTask { await self.fetch(from: latest, waitMs: waitMs, delay: delay) }
                }
                // Nil: the other pull brought this page already.
                guard let fetched = page else { continue }
                do throws(AgentError) {
                    guard let lag = try await applyFetched(fetched) else {
                        // The stored cursor is not where this page starts: restart from it.
                        group.cancelAll()
                        return .success(())
                    }
                    shared.withLock { $0.progress.applyLagSeconds = lag }
                    clearError("pull")
                    succeeded()
                } catch {
                    group.cancelAll()
                    return .failure(error)
                }
            }
            return .success(())
        }
        try outcome.get()
    }

    /// A fetched page and how long its fetch took (a round trip, or a long poll that waited).
    struct Lane: Sendable {
        var fetched: Fetched
        var elapsed: Duration
    }

    /// One fetch of the pipeline: after `delay` (a staggered second pull), from the newest cursor then.
    private func fetch(from latest: PullCursor, waitMs: Int, delay: Duration) async -> Result<Lane, AgentError> {
        // Cancelled while waiting: the fetch below ends at once with the cancellation, and nobody reads it.
        if delay > .zero { try? await Task.sleep(for: delay) }
        let started = ContinuousClock.now
        return await fetch(after: latest.cursor, waitMs: waitMs).map { Lane(fetched: $0, elapsed: .now - started) }
    }

    /// Pushes up to `maxBatches` batches; returns true when the outbox is empty.
    /// `tuning.batch` within what the hub takes in one push: a batch or chunk over the hub's `max_push_changes` or
    /// `max_body_bytes` would be refused (413) on every retry and stop the region's stream. Bytes: half the hub's
    /// body limit, as the body carries each change's envelope (ids, HLC, base) beside the image the batch counts.
    /// Under WAL capture, done switching: the outbox was found empty less than a second ago and no rewind (the
    /// only writer left) ran since.
    private func outboxKnownEmpty() -> Bool {
        guard let found = outboxFoundEmpty.withLock({ $0 }), ContinuousClock.now - found.at < .seconds(1),
            found.rewinds == rewinds.load(ordering: .acquiring)
        else { return false }
        return capture.withLock { $0.mode == .wal && !$0.switching }
    }

    var pushBatch: AgentConfiguration.Batch {
        var batch = configuration.tuning.batch
        if let limits = hubPushLimits.withLock({ $0 }) {
            batch.maxCount = max(1, min(batch.maxCount, limits.maxChanges))
            batch.maxBytes = max(1024, min(batch.maxBytes, limits.maxBodyBytes / 2))
        }
        return batch
    }

    private func pushPending(maxBatches: Int = 16) async throws(AgentError) -> Bool {
        let batch = pushBatch
        let store = self.store
        for _ in 0..<maxBatches {
            if isStopped { return false }
            if outboxKnownEmpty() { return try await pushCaptured(maxBatches: maxBatches) }
            let started = ContinuousClock.now
            let holding = Set(shared.withLock { $0.progress.stoppedTables.keys })
            let readAt = rewinds.load(ordering: .acquiring)
            let largeAt = configuration.tuning.largeTransactionChanges
            let (read, drift) = try await track("push", "reading the outbox") {
                () async throws(AgentError) in
                try await db { connection in
                    // Read, then check the shapes: a write made after an ALTER TABLE is only visible when the
                    // ALTER is (ShapeGuard), so a batch that holds one is read again without its table.
                    var page = try store.nextPage(
                        connection: connection, maxCount: batch.maxCount, maxBytes: batch.maxBytes, holding: holding,
                        largeAt: largeAt)
                    let drift = try ShapeGuard().check(connection: connection)
                    if page.tables.contains(where: { drift[$0] != nil }) {
                        page = try store.nextPage(
                            connection: connection, maxCount: batch.maxCount, maxBytes: batch.maxBytes,
                            holding: Set(drift.keys), largeAt: largeAt)
                    }
                    switch page {
                    case .large(let transaction):
                        return (OutboxRead.large(transaction), drift)
                    case .batch(let rows):
                        return (
                            OutboxRead.changes(
                                rows.isEmpty ? [] : try store.prepare(rows, connection: connection),
                                bytes: rows.reduce(0) { $0 + $1.approximateBytes }),
                            drift
                        )
                    }
                }
            }
            noteShapes(drift)
            let (changes, bytes): ([Change], Int)
            switch read {
            case .large(let transaction):
                guard try await pushOutboxTransaction(transaction, readAt: readAt) else { return false }
                continue
            case .changes(let read, let readBytes):
                (changes, bytes) = (read, readBytes)
            }
            if changes.isEmpty {
                guard capture.withLock({ $0.mode }) == .wal else { return true }
                outboxFoundEmpty.withLock { $0 = (started, readAt) }
                return try await pushCaptured(maxBatches: maxBatches)
            }
            let prepared = ContinuousClock.now
            let pushing = "push of \(changes.count) changes to the hub"
            guard
                let verdicts = try await track(
                    "push", pushing, { await pushUntilVerdicts(changes, approximateBytes: bytes, readAt: readAt) })
            else {
                return false
            }
            let pushed = ContinuousClock.now
            let outboxMarker = capture.withLock { $0.mode } == .wal
            let queue = captureQueue
            let summary = try await track("push", "applying the verdicts of \(changes.count) changes") {
                () async throws(AgentError) in
                try await db { [self] connection in
                    // Under WAL capture (while switching, or adopted rows) the versions go into a marker too, and
                    // into the capture queue's memory for the applies once the version rows are no more.
                    let summary = try store.handleVerdicts(
                        verdicts, for: changes,
                        wal: outboxMarker
                            ? WALVerdicts(handledThrough: nil, overwritten: [], stillPending: [], versionRows: true) : nil,
                        connection: connection)
                    queue.recordVersions(summary.versions)
                    // On the database thread, with the verdicts: the next apply sees the keys settled.
                    if changes.contains(where: { $0.reassert != nil }) {
                        let keys = changes.map { TableKey(table: $0.table, key: $0.key) }
                        reassertPending.withLock { $0.subtract(keys) }
                    }
                    return summary
                }
            }
            shared.withLock {
                $0.progress.pushedChanges += changes.count
                $0.progress.deadLetters += summary.deadLettered
            }
            await vacuumOutboxIfDue(removed: changes.count)
            logger.debug(
                "pushed",
                metadata: [
                    AgentLogKey.changes: "\(changes.count)", AgentLogKey.rejected: "\(summary.rejected)",
                    AgentLogKey.readMs: "\(Self.ms(prepared - started))", AgentLogKey.hubMs: "\(Self.ms(pushed - prepared))",
                    AgentLogKey.dbMs: "\(Self.ms(ContinuousClock.now - pushed))",
                ])
        }
        return false
    }

    /// Vacuums `starling.outbox` when ``OutboxVacuum`` says it is due. A failure is logged and not retried
    /// before the next interval: replication does not depend on it.
    func vacuumOutboxIfDue(removed: Int) async {
        guard outboxVacuum.withLock({ $0.removed(removed, now: .now) }) else { return }
        let started = ContinuousClock.now
        do throws(AgentError) {
            _ = try await db { connection in try connection.execute(OutboxVacuum.sql) }
            shared.withLock { $0.progress.outboxVacuums += 1 }
            logger.debug("outbox vacuumed", metadata: [AgentLogKey.dbMs: "\(Self.ms(ContinuousClock.now - started))"])
        } catch {
            logger.warning("outbox vacuum failed", metadata: [AgentLogKey.error: "\(error)"])
        }
        outboxVacuum.withLock { $0.vacuumed(at: .now) }
    }

    /// Pushes the same changes until the hub answers with verdicts; nil when stopped first, or when a rewind
    /// happened since the batch was read (`readAt`, the ``rewinds`` count then: its bases may name lost history,
    /// and the caller reads it again). `approximateBytes`: the batch's size as its reader measured it.
    /// `reimagesRefused`: a push the hub refuses with 400 marks its tables for ``reimagingMisfits(_:)`` and returns nil
    /// the first time, so the caller reads it again (WAL capture; Agent+Reimage.swift).
    func pushUntilVerdicts(_ changes: [Change], approximateBytes: Int, readAt: Int, reimagesRefused: Bool = false)
        async -> [Verdict]?
    {
        if let tx = chunkedTransaction(changes, approximateBytes: approximateBytes) {
            guard
                let verdicts = await pushChunked(
                    ChangesInMemory(all: changes), tx: tx, readAt: readAt, reimagesRefused: reimagesRefused)
            else {
                return nil
            }
            do {
                return try verdicts.expand(ids: changes.map(\.id))
            } catch {
                // The hub answered another transaction: its answer is not used; the push is read and tried again,
                // after a pause (a hub answering this way would otherwise get the transaction in a tight loop).
                note(
                    AgentError(code: .invalidResponse, message: "verdicts of transaction \(tx): \(error)", isRetryable: true),
                    during: "push")
                await sleep(ms: configuration.tuning.backoff.maxMs)
                return nil
            }
        }
        var backoff = RetryBackoff(configuration.tuning.backoff)
        while !isStopped, rewinds.load(ordering: .acquiring) == readAt {
            do throws(AgentError) {
                return try await hub.push(changes)
            } catch where error.code == .logDiverged {
                // The pull task rewinds, which lowers these changes' bases: read them again afterwards.
                note(error, during: "push")
                await sleep(ms: backoff.nextMs())
                return nil
            } catch where reimagesRefused && error.httpStatus == 400 && markForReimage(changes.map(\.table)) {
                note(error, during: "push")
                return nil
            } catch {
                note(error, during: "push")
                await sleep(ms: backoff.nextMs())
            }
        }
        return nil
    }

    /// One pulled, whole-transaction batch and where the cursor goes after it; `spill`: its first entries wait in
    /// `starling.spilled_entries` (AgentStore+Spill.swift).
    struct Fetched: Sendable {
        var batch: [LogEntry]
        var after: Int64
        var next: Int64
        var head: Int64
        var spill: AgentStore.Spill? = nil
    }

    /// Reads pages from `after` until they end on an origin-transaction boundary (long-polling `waitMs` for
    /// the first when nothing is new). A page is known to end on a boundary when the hub scanned fewer rows than asked
    /// (seq is gap-free, so `next - from` is the rows it scanned: it reached the end of the log, and pushes
    /// commit whole transactions) or reached its head; otherwise the last transaction may continue.
    private func fetch(after: Int64, waitMs: Int) async -> Result<Fetched, AgentError> {
        let limit = configuration.tuning.pull.limit
        let started = ContinuousClock.now
        do throws(AgentError) {
            var page = try await hub.pull(after: after, limit: limit, waitMs: waitMs)
            shared.withLock { $0.operations["pull"] = Operation(what: "pull after seq \(after)", started: .now) }
            defer { _ = shared.withLock { $0.operations.removeValue(forKey: "pull") } }
            var entries = page.entries
            var from = after
            var spill: AgentStore.Spill?
            let store = self.store
            func isComplete(_ page: PullPage, from: Int64) -> Bool { page.next - from < limit || page.next >= page.head }
            var count = PullAssembler.completePrefix(entries, isComplete: isComplete(page, from: from))
            while count == nil, !isStopped {
                // One origin transaction larger than a page: keep reading until it ends, past what memory should
                // hold through the spill table.
                if entries.count >= AgentStore.spillEntries {
                    let spilled = entries
                    try await db { connection in try store.spill(spilled, connection: connection) }
                    spill = spill ?? AgentStore.Spill()
                    spill?.spilled(spilled)
                    entries.removeAll(keepingCapacity: true)
                }
                from = page.next
                page = try await hub.pull(after: from, limit: limit, waitMs: 0)
                entries += page.entries
                count = PullAssembler.completePrefix(entries, isComplete: isComplete(page, from: from))
            }
            guard let count else { return .success(Fetched(batch: [], after: after, next: after, head: page.head)) }
            let batch = Array(entries.prefix(count))
            let next = count == entries.count ? page.next : batch.last?.seq ?? spill?.through ?? after
            logger.debug(
                "pulled",
                metadata: [
                    AgentLogKey.count: "\(batch.count)", "agent.spilled_through": "\(spill?.through ?? 0)",
                    AgentLogKey.hubMs: "\(Self.ms(ContinuousClock.now - started))",
                ])
            return .success(Fetched(batch: batch, after: after, next: next, head: page.head, spill: spill))
        } catch {
            return .failure(error)
        }
    }

    /// Applies a fetched page and moves the cursor in one local transaction; returns the apply lag, or nil when
    /// the stored cursor was not the page's start (nothing applied: the pipeline restarts from the cursor).
    private func applyFetched(_ fetched: Fetched) async throws(AgentError) -> Double? {
        var batch = fetched.batch
        let (after, next) = (fetched.after, fetched.next)
        // Parts of this page applied before a cursor move that did not happen (a crash, a failed part): skipped.
        let done = partsDone.withLock { done in done?.after == after ? done?.seqs : nil }
        if let done { batch.removeAll { done.contains($0.seq) } }
        if let index = batch.firstIndex(where: { $0.kind == .schema }) {
            // A schema change is applied alone, between the entries before it and those after it.
            let entry = batch[index]
            let before = Fetched(
                batch: Array(batch[..<index]), after: after, next: entry.seq - 1, head: fetched.head,
                spill: fetched.spill)
            guard try await applyFetched(before) != nil, try await applySchema(entry, after: entry.seq - 1) else {
                return nil
            }
            return try await applyFetched(
                Fetched(batch: Array(batch[(index + 1)...]), after: entry.seq, next: next, head: fetched.head))
        }
        guard next != after || !batch.isEmpty else { return 0 }
        var spill = fetched.spill
        let started = ContinuousClock.now
        let (isWAL, switching) = capture.withLock { ($0.mode == .wal, $0.switching) }
        let queue: CaptureQueue? = isWAL ? captureQueue : nil
        if isWAL { try await awaitDecoderCatchUp() }
        // Keys re-asserted after a rewind wait for their verdicts as pending local changes do; read on the database
        // thread, where verdict jobs remove them (an apply never defers an entry a verdict job just released).
        if let queue, spill != nil {
            spill?.wal = { [self] slice in
                let keys = slice.map { TableKey(table: $0.table, key: $0.key) }
                return WALApply(
                    pendingKeys: queue.pending(among: keys).union(reasserting(among: keys)),
                    versions: switching ? nil : queue.versions(of: keys, above: after))
            }
        }
        let (spilled, page) = (spill, batch)
        let summary = try await track("apply", "apply of \(batch.count) entries after seq \(after)") {
            () async throws(AgentError) -> ApplySummary in
            try await applyGate.run { () async throws(AgentError) -> ApplySummary in
                try await applyPage(
                    page, after: after, next: next, spill: spilled, queue: queue, switching: switching,
                    clearsParts: done != nil)
            }
        }
        if summary.isStale { return nil }
        if let done {
            // Records the cursor's move kept: seqs beyond `next` (the page came back shorter than the parts').
            let beyond = done.filter { $0 > next }
            partsDone.withLock { $0 = beyond.isEmpty ? nil : PartsDone(after: next, seqs: beyond) }
        }
        logger.debug(
            "applied",
            metadata: [
                AgentLogKey.count: "\(fetched.batch.count)", AgentLogKey.dbMs: "\(Self.ms(ContinuousClock.now - started))",
                AgentLogKey.fallbacks: "\(summary.batchFallbacks)", AgentLogKey.parts: "\(summary.parts)",
            ])
        shared.withLock {
            $0.progress.appliedEntries += summary.applied
            $0.progress.deadLetters += summary.deadLettered
            $0.progress.cursor = next
            $0.progress.heldEntries += summary.held
            $0.progress.resumedEntries += summary.resumed
        }
        noteShapes(summary.stoppedTables)
        if summary.deadLettered > 0 {
            logger.warning("entries dead-lettered", metadata: [AgentLogKey.count: "\(summary.deadLettered)"])
        }
        guard next < fetched.head, let last = fetched.batch.last else { return 0 }
        return Double(Self.nowMicros() - last.hlc) / 1_000_000
    }

    /// Applies a schema change from the log in its own transaction (AgentStore+Schema.swift); false when the
    /// stored cursor was not `after` (the pipeline restarts from the cursor).
    private func applySchema(_ entry: LogEntry, after: Int64) async throws(AgentError) -> Bool {
        let store = self.store
        let (isWAL, switching) = capture.withLock { ($0.mode == .wal, $0.switching) }
        if isWAL { try await awaitDecoderCatchUp() }
        let how = schemaApply(isWAL: isWAL, switching: switching)
        let outcome = try await track("apply", "schema change of \(entry.table) at seq \(entry.seq)") {
            () async throws(AgentError) in
            try await db { connection in try store.applySchema(entry, after: after, how: how, connection: connection) }
        }
        switch outcome {
        case .stale: return false
        case .notSynced: break
        case .applied(let shape, let executed):
            capture.withLock { active in
                if let at = active.shapes.firstIndex(where: { $0.name == shape.name }) { active.shapes[at] = shape }
            }
            logger.info(
                "schema change applied",
                metadata: [
                    AgentLogKey.table: "\(entry.table)", "seq": "\(entry.seq)",
                    "agent.executed": "\(executed)", "agent.columns": "\(shape.columns.map(\.name))",
                ])
        case .stopped(let reason):
            logger.error(
                "schema change not applied: table stream stopped",
                metadata: [AgentLogKey.table: "\(entry.table)", "seq": "\(entry.seq)", AgentLogKey.error: "\(reason)"])
            // Waiting for the answer to a change made here is no dead letter (yet).
            if !how.awaitingAnswer.contains(entry.table) { shared.withLock { $0.progress.deadLetters += 1 } }
        }
        shared.withLock { $0.progress.cursor = entry.seq }
        return true
    }

    /// Sends a status report every `status_interval_ms` until stopped, on its own task and connection: a
    /// report never waits for the loop to come round (an apply of minutes shows as `busy` meanwhile).
    private func reportUntilStopped() async {
        while !isStopped {
            await report()
            await sleep(ms: configuration.tuning.statusIntervalMs)
            // A table stopped by a schema change it could not apply tries it again each interval (held-entries round).
            if !shared.withLock({ $0.progress.stoppedTables.isEmpty }) {
                heldResumeDue.withLock { $0 = true }
                wake.signal()
            }
        }
    }

    /// Sends outbox depth, apply lag, the last error and the longest operation running past ``stuckAfter``,
    /// then unreported dead letters. Failures are logged only: reporting must not stop the stream.
    private func report() async {
        let store = self.store
        let (lastError, lag, busy) = shared.withLock { state in
            // A stopped table is reported until it resumes, even when every round succeeds.
            let error = state.progress.lastError
                ?? state.progress.stoppedTables.sorted { $0.key < $1.key }.first.map { $0.value }
            return (error, state.progress.applyLagSeconds, longestOperation(&state.operations))
        }
        do {
            let queued = captureQueue.depth
            shared.withLock { $0.progress.captureQueued = queued }
            let active = capture.withLock { $0 }
            let slot = active.mode == .wal ? active.setup?.name : nil
            let (depth, letters, retained) = try await statusDatabase.run(during: "status") { connection in
                try CatalogCache.compact(connection: connection)
                return (try store.outboxDepth(connection: connection) + queued,
                 try store.unreportedDeadLetters(limit: 100, connection: connection),
                 try slot.flatMap { name throws in try connection.replicationSlot(named: name)?.retainedWALBytes })
            }
            var status = AgentStatus(outboxDepth: depth, applyLagSeconds: lag, lastError: lastError, busy: busy)
            status.capture = AgentStatus.Capture(
                mode: active.mode.rawValue, reason: active.reason, retainedWALBytes: retained)
            try await hub.reportStatus(status)
            if !letters.isEmpty {
                try await hub.reportDeadLetters(letters)
                let ids = letters.map(\.id)
                try await statusDatabase.run(during: "status") { connection in
                    try store.markReported(ids, connection: connection)
                }
            }
        } catch {
            logger.debug("status report failed", metadata: [AgentLogKey.error: "\(error)"])
        }
    }

    /// The operation running longest, once past ``stuckAfter``; logs a warning the first time each one is.
    private func longestOperation(_ operations: inout [String: Operation]) -> AgentStatus.Busy? {
        let now = ContinuousClock.now
        guard let (slot, operation) = operations.min(by: { $0.value.started < $1.value.started }),
            now - operation.started >= Self.stuckAfter
        else { return nil }
        let seconds = Double((now - operation.started).components.seconds)
            + Double((now - operation.started).components.attoseconds) / 1e18
        if !operation.isWarned {
            operations[slot]?.isWarned = true
            logger.warning(
                "operation running long", metadata: ["agent.operation": "\(operation.what)", "agent.seconds": "\(Int(seconds))"])
        }
        return AgentStatus.Busy(what: operation.what, seconds: seconds)
    }

    /// Runs `body` as the loop's operation in `slot` (``Operation``), for the status report.
    func track<T>(_ slot: String, _ what: String, _ body: () async throws(AgentError) -> T)
        async throws(AgentError) -> T
    {
        shared.withLock { $0.operations[slot] = Operation(what: what, started: .now) }
        defer { _ = shared.withLock { $0.operations.removeValue(forKey: slot) } }
        return try await body()
    }

    func makeBootstrapper() -> Bootstrapper {
        Bootstrapper(
            region: configuration.region, hub: hub, database: database, store: store,
            replaceLocal: configuration.bootstrap.replaceLocal, pageLimit: configuration.tuning.pull.limit)
    }

    /// Runs a bootstrap (Bootstrapper.swift) and publishes the new cursor.
    private func bootstrap(_ bootstrapper: Bootstrapper, tables: [String], isFresh: Bool) async throws(AgentError) {
        logger.info("bootstrapping from the hub's snapshot", metadata: ["agent.fresh": "\(isFresh)"])
        let isWAL = capture.withLock { $0.mode } == .wal
        let (cursor, applied, versions) = try await bootstrapper.run(
            tables: tables, isFresh: isFresh, marksVersions: isWAL)
        captureQueue.recordVersions(versions)
        outboxFoundEmpty.withLock { $0 = nil }  // local rows may have gone into the outbox (adopted as inserts)
        shared.withLock { $0.progress.cursor = cursor }
        // The cursor jumped to the snapshot's seq: the terms crossed before say nothing of it.
        try await resetLogHistory(LogHistory.Position(known: cursor))
        logger.info("bootstrapped", metadata: ["seq": "\(cursor)", AgentLogKey.count: "\(applied)"])
    }

    /// How this region applies a schema change now: capture triggers with the new functions under trigger capture (or
    /// while switching from it), the new columns announced to the decoder under WAL capture, and the tables whose
    /// change made here awaits the hub's answer (read after ``awaitDecoderCatchUp()``).
    private func schemaApply(isWAL: Bool, switching: Bool) -> AgentStore.SchemaApply {
        AgentStore.SchemaApply(
            captureTriggers: !isWAL || switching, announce: isWAL,
            awaitingAnswer: isWAL ? captureQueue.schemaTablesAwaitingAnswer : [])
    }

    /// Applies the held entries of tables whose shape is back (``AgentStore/applyHeldEntries(connection:)``).
    private func applyHeldEntries() async throws(AgentError) {
        let store = self.store
        let (isWAL, switching) = capture.withLock { ($0.mode == .wal, $0.switching) }
        // Cleared first: a wake-up while the round runs (the hub's answer to a schema change made here) runs it again.
        heldResumeDue.withLock { $0 = false }
        let summary: ApplySummary
        do throws(AgentError) {
            // The schema changes made here that the hub has not answered are in the capture queue only once the
            // decoder has read up to where this process started (after a restart the queue starts empty): before,
            // a held entry waiting for such an answer would become a dead letter.
            if isWAL { try await awaitDecoderCatchUp() }
            let how = schemaApply(isWAL: isWAL, switching: switching)
            summary = try await db { connection in
                try store.applyHeldEntries(inMemory: isWAL && !switching, how: how, connection: connection)
            }
        } catch {
            heldResumeDue.withLock { $0 = true }
            throw error
        }
        shared.withLock {
            $0.progress.appliedEntries += summary.applied
            $0.progress.resumedEntries += summary.resumed
            $0.progress.deadLetters += summary.deadLettered
        }
        if summary.resumed > 0 {
            logger.info("held entries applied", metadata: [AgentLogKey.count: "\(summary.resumed)"])
        }
        noteShapes(summary.stoppedTables)
    }

    /// Publishes the tables whose stream is stopped: an error log when one stops (an operator must act), an
    /// info log when one resumes, whose held entries are then applied at the next round.
    private func noteShapes(_ drift: ShapeGuard.Drift) {
        let previous = shared.withLock { state in
            let previous = state.progress.stoppedTables
            state.progress.stoppedTables = drift
            return previous
        }
        guard previous != drift else { return }
        for (table, reason) in drift.sorted(by: { $0.key < $1.key }) where previous[table] != reason {
            logger.error("table stream stopped", metadata: [AgentLogKey.table: "\(table)", AgentLogKey.error: "\(reason)"])
        }
        for table in previous.keys.sorted() where drift[table] == nil {
            logger.info("table stream resumed", metadata: [AgentLogKey.table: "\(table)"])
            heldResumeDue.withLock { $0 = true }
            wake.signal()
        }
    }

    /// Records a retryable failure of one task (`push`, `pull`, `start`) as the last error.
    func note(_ error: AgentError, during task: String = "start") {
        shared.withLock { state in
            state.errors[task] = error.description
            state.progress.lastError = error.description
        }
        logger.warning("retrying after error", metadata: [AgentLogKey.error: "\(error)", "agent.task": "\(task)"])
    }

    /// Forgets `task`'s failure once it succeeded; the last error is then another task's, if any.
    func clearError(_ task: String) {
        shared.withLock { state in
            guard state.errors.removeValue(forKey: task) != nil || state.progress.lastError != nil else { return }
            state.progress.lastError = state.errors.sorted { $0.key < $1.key }.first?.value
        }
    }

    /// Sleeps in slices so `stop()` is noticed quickly.
    func sleep(ms: Int) async {
        var remaining = ms
        while remaining > 0 && !isStopped {
            let slice = min(remaining, 50)
            try? await Task.sleep(for: .milliseconds(slice))
            remaining -= slice
        }
    }

    /// Runs `body` on the database thread (see `PostgresWorker.run(during:_:)`).
    func db<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> T) async throws(AgentError)
        -> T
    {
        try await database.run(during: "database", body)
    }

    /// Whole milliseconds of `duration` (for debug logs).
    static func ms(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    static func nowMicros() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000
    }
}

/// Logger metadata keys of this module.
enum AgentLogKey {
    static let region = "region"
    static let changes = "agent.changes"
    static let rejected = "agent.rejected"
    static let count = "agent.count"
    static let fallbacks = "agent.fallbacks"
    static let parts = "agent.parts"
    static let reason = "agent.reason"
    static let readMs = "agent.read_ms"
    static let hubMs = "agent.hub_ms"
    static let dbMs = "agent.db_ms"
    static let error = "error"
    static let table = "table"
}
