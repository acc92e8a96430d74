import Logging
import StarlingCore
import StarlingIO
import StarlingPostgres
import Synchronization

/// The hub's one writer: every accepted change gets its `seq` here, in commit order, gap-free.
///
/// Pushes and manual resolutions queue up in a bounded queue (``HubError/Code/overloaded`` when full). One job
/// on the dedicated ``PostgresWorker`` thread drains the queue: it takes everything waiting (up to
/// `maxBatchChanges`), decides all of it in one transaction (``SequencerBatch``), commits, and only then
/// resumes the callers with their verdicts (group commit). While it commits, new work piles up for the next
/// round. A session-level advisory lock held by the worker's connection makes this the only sequencer of the
/// database: a standby hub polls for it (``tryAcquire()``), and every batch runs on the lock-holding session
/// (``SequencerWriter/verifyHeld(_:)``), so a hub that lost its session cannot commit (see `Sequencer+Failover`).
/// Work is admitted only while ``role`` is active.
///
/// Threads: ``submit(region:changes:)`` and ``resolve(conflictID:pick:actor:)`` from any task; the drain
/// loop and ``writer`` only on the worker thread.
final class Sequencer: Sendable {
    /// A queued unit of work.
    enum Item: Sendable {
        case push(
            region: String, changes: [Change], texts: PushTexts,
            continuation: CheckedContinuation<[Verdict], any Error>?)
        case resolve(
            conflictID: Int64, pick: ManualPick, actor: String,
            continuation: CheckedContinuation<ResolveOutcome, any Error>)
        /// Dead letters reported by a region's agent, recorded as open conflicts for an operator to resolve.
        case deadLetters(
            region: String, letters: [DeadLetterReport], continuation: CheckedContinuation<[Int64], any Error>)
        /// Repair entries for one region (``SequencerWriter/repair(_:state:connection:nowMicros:)``).
        case repair(RepairRequest, continuation: CheckedContinuation<[Int64], any Error>)
        /// A schema change (SequencerWriter+Schema.swift).
        case schema(SchemaRequest, continuation: CheckedContinuation<SchemaOutcome, any Error>)
        /// A staged (chunked) transaction of `total` changes, sequenced alone in its batch from its chunks slice
        /// by slice (SequencerWriter+Staging.swift).
        case staged(
            region: String, key: StagedKey, total: Int, continuation: CheckedContinuation<TransactionVerdicts, any Error>)

        var changeCount: Int {
            switch self {
            case .push(_, let changes, _, _): changes.count
            case .resolve: 1
            case .deadLetters(_, let letters, _): letters.count
            case .repair(let request, _): request.keys.count
            case .schema: 1
            case .staged(_, _, let total, _): total
            }
        }

        /// Sequenced alone in its batch: a staged transaction (written slice by slice) or a schema change (it
        /// rewrites its table's heads, so no change of the table may be decided beside it).
        var isAlone: Bool {
            switch self {
            case .staged, .schema: true
            default: false
            }
        }
    }

    /// The canonical texts of a push's changes, in order: what the log and heads store.
    struct PushTexts: Sendable {
        /// Each change's key (the head's identity).
        var keys: [String]
        /// Each change's image (nil for a delete): the stored row of an accepted change.
        var images: [String?]

        init(_ changes: [Change]) {
            keys = changes.map { HubJSON.text($0.key) }
            images = changes.map { $0.image.map(HubJSON.text) }
        }
    }

    /// A staged (chunked) origin transaction (``ChunkStaging``).
    struct StagedKey: Sendable, Hashable {
        var origin: String
        var tx: String
    }

    /// What a manual resolution produced.
    struct ResolveOutcome: Sendable {
        var record: ConflictRecord
        var entry: LogEntry
    }

    struct State {
        var items: [Item] = []
        var queuedChanges = 0
        var isDraining = false
        var isClosed = false
        /// Changes of the batch the worker is deciding and committing now (0 between batches): the lock watch
        /// allows a long batch (a staged transaction) more time (``lockCheckAllowance(runningChanges:)``).
        var runningChanges = 0
    }

    let worker: PostgresWorker
    private let settings: HubSettings
    let state = Mutex(State())
    /// The active hub's lock watch (`Sequencer+Failover`).
    let lockCheck = Mutex(LockCheck())
    /// Confined to the worker thread.
    let writer: SequencerWriter
    let notifier: CommitNotifier
    /// Filled after every committed batch, emptied when the lock is lost.
    let logCache: LogCache
    /// The shapes pushes are checked against: a committed schema change replaces its table's here.
    let shapes: ShapeCache
    private let metrics: HubMetrics
    let logger: Logger
    /// The hub's role: work is queued only while it is active; a lost lock session steps it down.
    let role: HubRole
    /// Where the writer reads the time (HLC input of the batch, durations).
    let clock: TimeSource
    /// The log's terms as of this hub's last takeover (the newest is its own): what pulls and pushes are
    /// checked against (``LogTerms``). Only the active hub answers regions, and only a takeover opens a term.
    let terms = Mutex(LogTerms())

    init(
        settings: HubSettings, notifier: CommitNotifier, logCache: LogCache, shapes: ShapeCache, metrics: HubMetrics,
        role: HubRole, clock: TimeSource, logger: Logger
    ) {
        self.shapes = shapes
        self.clock = clock
        self.logCache = logCache
        self.role = role
        self.settings = settings
        self.notifier = notifier
        self.metrics = metrics
        self.logger = logger
        self.worker = PostgresWorker(
            url: settings.database, applicationName: "starling-hub-sequencer", maxQueuedJobs: 4,
            threadName: "starling-seq", logger: logger)
        self.writer = SequencerWriter(settings: settings)
    }

    /// Queues a validated push and returns its verdicts once they are committed. The texts the batch stores
    /// are serialized here, on the caller's task, so concurrent pushes share that work out.
    func submit(region: String, changes: [Change]) async throws -> [Verdict] {
        let texts = PushTexts(changes)
        return try await withCheckedThrowingContinuation { continuation in
            enqueue(.push(region: region, changes: changes, texts: texts, continuation: continuation))
        }
    }

    /// Queues the staged transaction `key` of `total` changes (every chunk stored, checked by the caller);
    /// returns its verdicts, compacted, once it is logged and its chunks deleted.
    func submitStaged(region: String, key: StagedKey, total: Int) async throws -> TransactionVerdicts {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.staged(region: region, key: key, total: total, continuation: continuation))
        }
    }

    /// Queues a manual resolution of conflict `conflictID`; returns the resolved record and emitted entry.
    func resolve(conflictID: Int64, pick: ManualPick, actor: String) async throws -> ResolveOutcome {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.resolve(conflictID: conflictID, pick: pick, actor: actor, continuation: continuation))
        }
    }

    /// Queues dead letters of `region`; returns the conflict id of each, in order (the existing one when the
    /// letter was reported before).
    func recordDeadLetters(region: String, letters: [DeadLetterReport]) async throws -> [Int64] {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.deadLetters(region: region, letters: letters, continuation: continuation))
        }
    }

    /// Queues repair entries re-asserting the current heads of `request.keys` for `request.region` only;
    /// returns their seqs once committed.
    func repair(_ request: RepairRequest) async throws -> [Int64] {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.repair(request, continuation: continuation))
        }
    }

    /// Queues a schema change; returns the version it made (or found in force) once committed. The shape cache
    /// holds the new shape before the entry is published, so no image after it is checked against the old one.
    func schema(_ request: SchemaRequest) async throws -> SchemaOutcome {
        try await withCheckedThrowingContinuation { continuation in
            enqueue(.schema(request, continuation: continuation))
        }
    }

    /// Fails queued work and new submissions, then stops the worker after its running batch.
    func shutdown() async {
        let pending = state.withLock { state in
            state.isClosed = true
            defer { state.items.removeAll() }
            return state.items
        }
        for item in pending { Self.fail(item, HubError(code: .shuttingDown, message: "the hub is shutting down")) }
        await worker.shutdown()
    }

    private func enqueue(_ item: Item) {
        enum Admission {
            case rejected(HubError)
            case queued, startDrain
        }
        let limit = settings.limits.maxQueuedChanges
        let admission: Admission = state.withLock { state in
            if state.isClosed { return .rejected(HubError(code: .shuttingDown, message: "the hub is shutting down")) }
            if !role.isActive { return .rejected(Self.standbyError) }
            if state.queuedChanges > 0 && state.queuedChanges + item.changeCount > limit {
                return .rejected(
                    HubError(code: .overloaded, message: "the sequencer queue is full (\(limit) changes); retry"))
            }
            state.items.append(item)
            state.queuedChanges += item.changeCount
            if state.isDraining { return .queued }
            state.isDraining = true
            return .startDrain
        }
        switch admission {
        case .rejected(let error): Self.fail(item, error)
        case .queued: break
        case .startDrain:
            do {
                try worker.submit { [self] connection in drain(connection) }
            } catch {
                let pending = state.withLock { state in
                    state.isDraining = false
                    defer {
                        state.items.removeAll()
                        state.queuedChanges = 0
                    }
                    return state.items
                }
                for item in pending { Self.fail(item, HubError(code: .shuttingDown, message: "\(error)")) }
            }
        }
    }

    /// The drain loop, on the worker thread: batches until the queue is empty.
    private func drain(_ connection: Result<PostgresConnection, PostgresError>) {
        let maxBatch = settings.limits.maxBatchChanges
        while true {
            let batch: [Item]? = state.withLock { state in
                guard !state.items.isEmpty else {
                    state.isDraining = false
                    return nil
                }
                var count = 0
                var taken = 0
                // A staged transaction goes alone: it is written slice by slice (SequencerWriter+Staging.swift).
                while taken < state.items.count
                    && (taken == 0
                        || (count + state.items[taken].changeCount <= maxBatch && !state.items[taken].isAlone
                            && !state.items[0].isAlone))
                {
                    count += state.items[taken].changeCount
                    taken += 1
                }
                let batch = Array(state.items[..<taken])
                state.items.removeFirst(taken)
                state.queuedChanges -= count
                state.runningChanges = count
                return batch
            }
            guard let batch else { return }
            batchStarted(changes: state.withLock { $0.runningChanges })
            switch connection {
            case .success(let connection): commit(batch, connection)
            case .failure(let error):
                logger.error("sequencer has no database connection", metadata: ["error": "\(error)"])
                for item in batch { Self.fail(item, HubError(code: .storageFailed, message: "\(error.message)")) }
            }
            state.withLock { $0.runningChanges = 0 }
        }
    }

    /// One group commit: decide and store the batch, then answer every item.
    private func commit(_ batch: [Item], _ connection: PostgresConnection) {
        let started = clock.monotonicNanos()
        let outcome: SequencerWriter.BatchOutcome
        do {
            try writer.verifyHeld(connection)
            outcome = try writer.apply(batch, connection: connection, nowMicros: clock.wallClockMicros())
        } catch let error as HubError where error.code == .standby {
            for item in batch { Self.fail(item, error) }
            lockLost()
            return
        } catch {
            writer.invalidate()
            logger.error("sequencer batch failed", metadata: ["error": "\(error)", "batch.items": "\(batch.count)"])
            let failure = HubError(code: .storageFailed, message: "storing the batch failed: \(error)")
            for item in batch { Self.fail(item, failure) }
            return
        }
        for case .schema(let schema) in outcome.results where schema.isNew { shapes.set(schema.entry) }
        // Cached before the head is published, so the pulls it wakes find their entries in memory.
        logCache.append(outcome.logged, through: outcome.head)
        notifier.publish(head: outcome.head)
        metrics.recordBatch(
            outcome, changes: batch.reduce(0) { $0 + $1.changeCount },
            seconds: Double(clock.monotonicNanos() - started) / 1e9)
        for (item, result) in zip(batch, outcome.results) {
            switch (item, result) {
            case (.push(_, _, _, let continuation), .verdicts(let verdicts)): continuation?.resume(returning: verdicts)
            case (.resolve(_, _, _, let continuation), .resolved(let resolved)):
                continuation.resume(returning: resolved)
            case (.deadLetters(_, _, let continuation), .recorded(let ids)): continuation.resume(returning: ids)
            case (.repair(_, let continuation), .recorded(let seqs)): continuation.resume(returning: seqs)
            case (.schema(_, let continuation), .schema(let schema)): continuation.resume(returning: schema)
            case (.staged(_, _, _, let continuation), .transaction(let verdicts)):
                continuation.resume(returning: verdicts)
            case (_, .failed(let error)): Self.fail(item, error)
            // ``SequencerWriter/checkAnswers(_:to:)`` asserted each result's kind before the batch was answered.
            default: preconditionFailure("a sequencer result of the wrong kind for its batch item")
            }
        }
    }

    static func fail(_ item: Item, _ error: HubError) {
        switch item {
        case .push(_, _, _, let continuation): continuation?.resume(throwing: error)
        case .resolve(_, _, _, let continuation): continuation.resume(throwing: error)
        case .deadLetters(_, _, let continuation): continuation.resume(throwing: error)
        case .repair(_, let continuation): continuation.resume(throwing: error)
        case .schema(_, let continuation): continuation.resume(throwing: error)
        case .staged(_, _, _, let continuation): continuation.resume(throwing: error)
        }
    }
}
