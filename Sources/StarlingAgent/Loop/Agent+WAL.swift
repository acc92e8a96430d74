import Logging
import StarlingCore
import StarlingIO
import StarlingPostgres
import Synchronization

/// The replication origin the agent's database connection marks its transactions with under WAL capture, so
/// the decoder tells them from the application's. Set once the capture is chosen; the connection's session
/// setup (``PostgresWorker``) applies it to every new connection, and ``setUp(_:)`` to the open one.
final class OriginSetting: Sendable {
    private let name = Mutex<String?>(nil)

    func set(_ value: String?) {
        name.withLock { $0 = value }
    }

    /// Marks `connection`'s session with the origin, when one is set and the session has none yet, and makes each
    /// of its transactions reset the origin's commit timestamp: PostgreSQL keeps a session's first commit time as
    /// the origin timestamp and records it as the commit time of every later transaction of the session
    /// (`track_commit_timestamp` then dates every applied row at the session's first apply). Without the right
    /// to call `pg_replication_origin_xact_reset()` they stay so (README "WAL capture" lists the grant).
    func setUp(_ connection: PostgresConnection) throws {
        guard let name = name.withLock({ $0 }) else {
            connection.transactionPrologue = nil
            return
        }
        try connection.query(
            "SELECT pg_replication_origin_session_setup($1)::text AS done WHERE NOT pg_replication_origin_session_is_setup()",
            [.text(name)], name: "agent.wal.originSetup")
        let resets = try connection.query(
            "SELECT has_function_privilege('pg_replication_origin_xact_reset()', 'EXECUTE') AS ok",
            name: "agent.wal.originReset")[0].bool("ok")
        connection.transactionPrologue = resets ? "SELECT pg_replication_origin_xact_reset()" : nil
    }
}

/// The capture a run of the agent uses.
struct ActiveCapture: Sendable {
    var mode = CaptureMode.trigger
    /// Why (`capture: wal`, or what WAL capture lacks under `auto`).
    var reason = ""
    /// The synced tables' shapes, for the decoder.
    var shapes: [TableShape] = []
    /// Slot, publication and origin (WAL mode).
    var setup: WALSetup?
    /// Application changes still go through the capture triggers until the outbox drains (WAL mode).
    var switching = false
    /// Connections parallel apply may use, the agent's own among them: each holds a replication origin slot.
    var applyWorkers = 1
}

/// What ``Agent/chooseCapture()`` decided, before install.
struct CaptureChoice: Sendable {
    var mode: CaptureMode
    var reason: String
    var setup: WALSetup
    /// Whether install keeps (or creates) capture triggers: trigger capture, or WAL capture still switching.
    var captureTriggers: Bool
}

extension Agent {
    /// Chooses trigger or WAL capture from `capture:` and what the database allows; throws (for good) when
    /// `capture: wal` cannot run, naming each missing setting or grant.
    func chooseCapture() async throws(AgentError) -> CaptureChoice {
        let requested = configuration.capture
        let region = configuration.region
        let (setup, missing, state, hasTriggers) = try await db { connection in
            let setup = WALSetup(region: region, database: try WALSetup.databaseName(connection: connection))
            return (setup, try setup.missingPrerequisites(connection: connection),
                    try WALSetup.load(connection: connection, name: setup.name),
                    try WALSetup.hasCaptureTriggers(connection: connection))
        }
        if requested == .trigger || (requested == .auto && !missing.isEmpty) {
            if state != nil {
                throw AgentError(
                    code: .invalidConfiguration,
                    message: "this region captures from the WAL (slot \(setup.name)); going back to capture triggers "
                        + "is not supported: set capture: wal, or uninstall the agent and bootstrap the region again",
                    key: "capture")
            }
            let reason = requested == .trigger
                ? "capture: trigger" : "WAL capture unavailable: " + missing.joined(separator: "; ")
            return CaptureChoice(mode: .trigger, reason: reason, setup: setup, captureTriggers: true)
        }
        if !missing.isEmpty {
            throw AgentError(
                code: .capture, message: "capture: wal cannot run: " + missing.joined(separator: "; "), key: "capture")
        }
        // A region that captured with triggers keeps them until its outbox has drained (``pushCaptured``).
        let switching = state?.switching ?? hasTriggers
        return CaptureChoice(
            mode: .wal, reason: requested == .wal ? "capture: wal" : "capture: auto, the database allows WAL capture",
            setup: setup, captureTriggers: switching)
    }

    /// Sets up what the chosen capture needs after install (the publication, the slot, the origin) and
    /// publishes it; logs the mode and why.
    func prepareCapture(_ choice: CaptureChoice, shapes: [TableShape]) async throws(AgentError) {
        var active = ActiveCapture(mode: choice.mode, reason: choice.reason, shapes: shapes)
        if choice.mode == .wal {
            // Refused now rather than at the first large transaction, hours later.
            let directory = configuration.tuning.spillDirectory
            do {
                _ = try AnonymousFile(directory: directory)
            } catch {
                throw AgentError(
                    code: .invalidConfiguration,
                    message: "tuning.spill_directory \(directory) cannot hold WAL capture's scratch files: \(error); "
                        + "name an existing directory the agent may write to",
                    key: "tuning.spill_directory")
            }
            let setup = choice.setup
            active.setup = setup
            let wanted = applyOrigins.count + 1
            let capture = walCapture
            let store = self.store
            let plugin = configuration.outputPlugin
            let (state, workers, slot) = try await db { connection in
                let workers = setup.usableWorkers(wanted, connection: connection)
                setup.dropWorkerOrigins(from: workers, connection: connection)
                let state = try setup.prepare(
                    tables: shapes, switching: choice.captureTriggers, workers: workers, connection: connection)
                let slot = try capture.ensureSlot(name: setup.name, plugin: plugin, connection: connection)
                if let point = slot.created {
                    // Decoding starts at the slot's consistent point with the clock as it is now: a restart
                    // before the first checkpoint decodes the same stamps again.
                    // Versions trigger capture's verdicts gave keys above the cursor are in version rows only; from
                    // here on the ledger (bases) and the applies (skips) know them from the stream.
                    let agentState = try store.state(connection: connection)
                    let versions = try AgentStore.versions(above: agentState.cursor, connection: connection)
                    try WALSetup.save(
                        resume: point, ledger: CaptureLedger(cursor: agentState.cursor, versions: versions),
                        switching: state.switching, hlc: agentState.lastHLC, connection: connection)
                }
                return (state, workers, slot)
            }
            // Under starling_pgoutput the applies list their keys, and their rows stay out of the stream.
            store.writtenKeys.set(slot.plugin == OutputPlugin.starlingPgoutput.rawValue)
            active.reason += "; " + slot.reason
            if workers < wanted {
                logger.warning(
                    """
                    fewer apply workers than tuning.apply.workers: the cluster's replication origin slots \
                    (max_replication_slots) are taken
                    """,
                    metadata: ["agent.workers": "\(workers)", "agent.wanted": "\(wanted)"])
            }
            active.applyWorkers = workers
            origin.set(setup.originName)
            for (index, worker) in applyOrigins.enumerated() { worker.set(setup.originName(worker: index + 1)) }
            let origin = self.origin
            try await db { connection in try origin.setUp(connection) }
            active.switching = state.switching
        } else {
            origin.set(nil)
            for worker in applyOrigins { worker.set(nil) }
        }
        capture.withLock { $0 = active }
        logger.info(
            "capture chosen",
            metadata: ["agent.capture": "\(choice.mode)", "agent.reason": "\(choice.reason)", "agent.switching": "\(active.switching)"])
    }

    /// Runs the WAL decoder on its own thread until stopped; a failure is noted and restarts the agent's
    /// tasks (the queue starts again from the confirmed position, so nothing is pushed twice out of order).
    func decodeUntilStopped() async {
        let store = self.store
        let capture = walCapture
        let (shapes, setup) = self.capture.withLock { ($0.shapes, $0.setup) }
        guard let name = setup?.name, let originName = setup?.originName else { return }
        let maxQueued = configuration.tuning.captureQueueMaxChanges
        let spill = WALDecoder.Spill(
            directory: configuration.tuning.spillDirectory, threshold: configuration.tuning.largeTransactionChanges)
        do throws(AgentError) {
            try await walWorker.run(during: "WAL capture") { [self] connection in
                guard let state = try WALSetup.load(connection: connection, name: name) else {
                    throw AgentError(code: .capture, message: "starling.wal_state is missing")
                }
                let agentState = try store.state(connection: connection)
                let ledger = state.ledger ?? CaptureLedger(cursor: agentState.cursor)
                let schemas = try WALSchemas.load(connection: connection)
                try capture.stream(
                    name: name, originName: originName, start: state, ledger: ledger, lastHLC: state.hlc ?? agentState.lastHLC, clockOffsetMicros: store.clockOffsetMicros,
                    shapes: shapes, schemas: schemas, spill: spill, maxQueued: maxQueued, isStopped: { self.isStopped })
            }
        } catch {
            if isStopped { return }
            note(error, during: "capture")
            restartTasks()
        }
    }

    /// Pushes WAL-captured changes, up to `maxBatches` batches; returns true when the queue is empty. While
    /// switching from trigger capture, first ends it (the outbox is empty when this runs).
    func pushCaptured(maxBatches: Int) async throws(AgentError) -> Bool {
        if capture.withLock({ $0.switching }), let setup = capture.withLock({ $0.setup }) {
            let tables = capture.withLock { $0.shapes.map(\.name) }
            guard try await db({ connection in try setup.finishSwitch(tables: tables, connection: connection) }) else {
                return false
            }
            capture.withLock { $0.switching = false }
            logger.info("trigger capture ended: the region's changes are read from the WAL")
        }
        for _ in 0..<maxBatches {
            if isStopped { return false }
            if let pause = pushPacing.withLock({ $0.pause(queued: captureQueue.depth, now: .now) }) {
                try? await Task.sleep(for: pause)
                if isStopped { return false }
            }
            let readAt = rewinds.load(ordering: .acquiring)
            let started = ContinuousClock.now
            switch captureQueue.nextBatch(maxCount: pushBatch.maxCount, maxBytes: pushBatch.maxBytes) {
            case nil:
                try await saveCheckpoint()
                return true
            case .changes(let captured):
                guard try await pushCaptured(captured, readAt: readAt) else { return false }
                pushPacing.withLock { $0.pushed(captured.count, startedAt: started, endedAt: .now) }
            case .spilled(let spilled):
                guard try await pushSpilled(spilled, readAt: readAt) else { return false }
            case .schema(let schema):
                try await pushSchema(schema)
            }
            // After the verdicts, not before the push: the save waits for its WAL flush (the slot may confirm the
            // position only once it is durable), and a change decoded meanwhile should not wait behind it.
            try await saveCheckpoint()
        }
        return false
    }

    /// Pushes a schema change made in this region (README "Schema changes") and, once the hub has it (a new
    /// version, or the same change in force already), generates the table's functions for its new shape. A change
    /// of no column (`ADD COLUMN IF NOT EXISTS` of one that exists) is only marked handled. A refusal (another
    /// region changed the table differently first: 409 `schema_conflict`) is thrown: the push retries and reports
    /// it until the table here matches the hub's shape.
    private func pushSchema(_ schema: CaptureQueue.CapturedSchema) async throws(AgentError) {
        let queue = captureQueue
        let store = self.store
        let change = schema.change
        guard !change.actions.isEmpty else {
            queue.handled(session: nil)
            return
        }
        do throws(AgentError) {
            let columns = schema.columns.map { TableShape.Column(name: $0.name, type: $0.type) }
            let answer = try await track("push", "push of a schema change of \(schema.table)") {
                () async throws(AgentError) in
                try await hub.pushSchema(id: schema.id, change: change, columns: columns)
            }
            let shape = try await db { connection in
                // A change the log had already (pushed before a restart, or made in another region first) records
                // no renames from here: decoded again, its actions may be computed from a later shape; the renames
                // come with the log's own entry.
                let shape = try store.acceptedSchema(
                    change, seq: answer.seq, recordsRenames: answer.isNew, connection: connection)
                queue.handled(session: nil)
                return shape
            }
            if let shape {
                capture.withLock { active in
                    if let at = active.shapes.firstIndex(where: { $0.name == shape.name }) { active.shapes[at] = shape }
                }
            }
            // Rows after this change were captured under the shape it made, which the hub has now.
            _ = reimageTables.withLock { $0.remove(schema.table) }
            // A log entry of the table stopped while this answer was awaited is tried again now.
            heldResumeDue.withLock { $0 = true }
            wake.signal()
            logger.info(
                "schema change made here is in the log",
                metadata: [
                    AgentLogKey.table: "\(schema.table)", "seq": "\(answer.seq)", "agent.new": "\(answer.isNew)",
                    "agent.statement": "\(schema.statement)",
                ])
        } catch where error.httpStatus == 409 {
            // The hub has another shape (another region changed the table differently first). Once the table here
            // has the hub's shape (the operator made it so), this capture is obsolete: the table follows the log.
            let inForce = try? await hub.config().tables.first { $0.name == schema.table }?.shape
            let here = try? await db { try TableShape.load(table: schema.table, connection: $0) }
            if let inForce, let here, TableShape.sameColumns(here.columns, inForce.columns) {
                try await db { connection in
                    _ = try store.acceptedSchema(change, recordsRenames: false, connection: connection)
                    queue.handled(session: nil)
                }
                logger.warning(
                    "schema change made here was refused, and the table has the hub's shape now: dropped",
                    metadata: [AgentLogKey.table: "\(schema.table)", AgentLogKey.error: "\(error)"])
                // Rows written here meanwhile were captured under the refused shape.
                _ = markForReimage([schema.table])
                return
            }
            queue.pushFailed()
            throw error
        } catch {
            queue.pushFailed()
            throw error
        }
    }

    /// Pushes one batch of captured changes and handles their verdicts; false when the push did not complete (the
    /// batch is offered again).
    private func pushCaptured(_ captured: [CaptureQueue.Captured], readAt: Int) async throws(AgentError) -> Bool {
        let store = self.store
        let queue = captureQueue
        let journal = configuration.journal
        guard let last = captured.last else { return true }
        var decoded = captured.map(\.change)
        if !shared.withLock({ $0.progress.stoppedTables.isEmpty }) {
            // A stopped table's pulled entries wait unapplied while the cursor moves on: a local change of it knew
            // only what came before the first of them, and says so (the hub finds the conflicts it then meets).
            let floors = try await db { try AgentStore.heldFloors(connection: $0) }
            decoded = decoded.map { change in floors[change.table].map { change.rebased(atMost: $0 - 1) } ?? change }
        }
        let changes = try await reimagingMisfits(decoded)
        let bytes = captured.reduce(0) { $0 + $1.approximateBytes }
        let pushing = "push of \(changes.count) changes to the hub"
        let started = ContinuousClock.now
        guard
            let verdicts = try await track(
                "push", pushing,
                { await pushUntilVerdicts(changes, approximateBytes: bytes, readAt: readAt, reimagesRefused: true) })
        else {
            queue.pushFailed()
            return false
        }
        let answered = ContinuousClock.now
        let summary: VerdictSummary
        do throws(AgentError) {
            // Inside: whatever fails from here offers the batch again (the queue would otherwise keep it in flight).
            summary = try await applyGate.run { () async throws(AgentError) -> VerdictSummary in
                try await awaitOwnWrites(of: captured.map(\.key), verdicts: verdicts)
                let overwritten = queue.overwritten(in: captured)
                let stillPending = queue.pendingBeyondInFlight(Set(captured.map(\.key)))
                return try await track("push", "applying the verdicts of \(changes.count) changes") {
                    () async throws(AgentError) in
                    try await db { connection in
                        let summary = try store.handleVerdicts(
                            verdicts, for: changes,
                            wal: WALVerdicts(
                                handledThrough: last.position, overwritten: overwritten, stillPending: stillPending,
                                journal: journal),
                            connection: connection)
                        // On the database thread, before its next job: an apply must not defer an entry on a key
                        // whose verdict just settled (nothing would release it), and must know the versions the
                        // verdicts gave.
                        queue.recordVersions(summary.versions)
                        queue.handled(session: connection.session)
                        if summary.imagesApplied > 0 {
                            let position = try AgentStore.walInsertPosition(connection: connection)
                            queue.wrote(captured.map(\.key), at: position)
                        }
                        return summary
                    }
                }
            }
        } catch {
            queue.pushFailed()
            throw error
        }
        counted(pushed: changes.count, summary, hub: answered - started, db: ContinuousClock.now - answered)
        return true
    }

    /// Pushes one spilled transaction in chunks read back from its scratch file and handles its verdicts a slice
    /// at a time (``AgentStore/handleSpilledVerdicts(_:for:overwritten:stillPending:journal:connection:)``); false
    /// when the push did not complete.
    private func pushSpilled(_ spilled: CaptureQueue.Spilled, readAt: Int) async throws(AgentError) -> Bool {
        let store = self.store
        let queue = captureQueue
        let journal = configuration.journal
        let transaction = spilled.transaction
        let source = SpilledChanges(transaction: transaction, baseCeiling: spilled.baseCeiling)
        let pushing = "push of a large transaction (\(transaction.count) changes, from a scratch file) to the hub"
        let started = ContinuousClock.now
        guard let verdicts = try await track("push", pushing, {
            await pushChunked(source, tx: transaction.tx, readAt: readAt, reimagesRefused: true)
        })
        else {
            queue.pushFailed()
            return false
        }
        let pushed = ContinuousClock.now
        let summary: VerdictSummary
        do throws(AgentError) {
            // Inside: whatever fails from here offers the transaction again.
            summary = try await applyGate.run { () async throws(AgentError) -> VerdictSummary in
                if let target = queue.undecodedOwnWrite(of: transaction.lastOrdinal.keys) {
                    try await awaitDecoder(
                        through: target, what: "the agent's own write of a pushed key", within: .seconds(30))
                }
                let overwritten = queue.overwritten(in: transaction)
                let stillPending = queue.pendingBeyond(transaction)
                return try await track("push", "applying the verdicts of \(transaction.count) changes") {
                    () async throws(AgentError) in
                    try await db { connection in
                        let summary = try store.handleSpilledVerdicts(
                            verdicts, for: source, overwritten: overwritten, stillPending: stillPending,
                            journal: journal, connection: connection)
                        queue.recordVersions(summary.versions)
                        queue.handled(session: connection.session)
                        if summary.imagesApplied > 0 {
                            let position = try AgentStore.walInsertPosition(connection: connection)
                            queue.wrote(Array(transaction.lastOrdinal.keys), at: position)
                        }
                        return summary
                    }
                }
            }
        } catch {
            queue.pushFailed()
            throw error
        }
        countedLarge(transaction.count, summary, from: "a scratch file", started: started, answered: pushed)
        return true
    }

    /// Counts a handled push in the agent's progress and logs it.
    private func counted(pushed: Int, _ summary: VerdictSummary, hub: Duration? = nil, db: Duration? = nil) {
        shared.withLock {
            $0.progress.pushedChanges += pushed
            $0.progress.deadLetters += summary.deadLettered
        }
        var metadata: Logger.Metadata = [AgentLogKey.changes: "\(pushed)", AgentLogKey.rejected: "\(summary.rejected)"]
        // Where a push's time went: the hub's answer, then the verdicts' transaction (behind the applies on the
        // agent's one database connection).
        if let hub { metadata[AgentLogKey.hubMs] = "\(Self.ms(hub))" }
        if let db { metadata[AgentLogKey.dbMs] = "\(Self.ms(db))" }
        logger.debug("pushed", metadata: metadata)
    }

    /// Waits until the decoder has passed every own transaction that wrote the key of an accepted change in
    /// `keys` (the batch's, in order, beside their verdicts), so its overwritten flag is known (usually at once:
    /// such writes are rare).
    private func awaitOwnWrites(of keys: [TableKey], verdicts: [Verdict]) async throws(AgentError) {
        let accepted = zip(keys, verdicts).compactMap { key, verdict -> TableKey? in
            if case .accepted = verdict.outcome { return key }
            return nil
        }
        guard let target = captureQueue.undecodedOwnWrite(of: accepted) else { return }
        try await awaitDecoder(through: target, what: "the agent's own write of a pushed key", within: .seconds(30))
    }

    /// Waits until the WAL decoder has read the stream up to `lsn` (`what` it holds, for the error) or the agent
    /// stops; a retryable `capture` error after `limit`.
    func awaitDecoder(through lsn: LSN, what: String, within limit: Duration) async throws(AgentError) {
        let deadline = ContinuousClock.now + limit
        // A decoder paused on a full queue reads on while someone waits for it: the queue may be full of the very
        // changes whose handling waits here.
        captureQueue.wantDecoder(through: lsn)
        defer { captureQueue.stopWantingDecoder(through: lsn) }
        while captureQueue.decodedThrough < lsn, !isStopped {
            guard ContinuousClock.now < deadline, !Task.isCancelled else {
                throw AgentError(
                    code: .capture, message: "the WAL decoder did not reach \(what) (\(lsn)) within \(limit)",
                    isRetryable: true)
            }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Waits until the WAL decoder has read every marker committed before the agent process started (the end of the
    /// WAL then, taken by ``takeCatchUpTarget()``), so the versions above the cursor that verdicts
    /// before it gave keys are in the capture queue's memory (``CaptureQueue/recordVersions(_:)``): applies skip by
    /// them. Pushes and verdicts go on meanwhile (a decoder paused on a full queue reads on while this waits). Once
    /// per process: every verdict since the start records its versions as it commits, also across a restart of the
    /// tasks.
    ///
    /// After a restart of the agent's tasks, also until the decoder has read again as far as before it, so that
    /// every local change it had decoded is pending again (``CaptureQueue/reset()``). Throws (retryable) when the
    /// agent stops or restarts first: an apply must not go on without them.
    func awaitDecoderCatchUp() async throws(AgentError) {
        let queue = captureQueue
        // Taken at start(); here too, so that an apply never relies on versions it may lack.
        try await takeCatchUpTarget()
        guard !queue.isCaughtUp else { return }
        // A region whose database went back to an earlier point (restored from a backup) has no WAL as far as the
        // decoder read before: the target comes down to the end of the WAL there is.
        let end = try await db { connection in try AgentStore.walInsertPosition(connection: connection) }
        queue.limitRedecode(to: end)
        guard !queue.isCaughtUp, let target = queue.catchUpTarget else { return }
        try await track("apply", "waiting for the WAL decoder to read the agent's markers again") {
            () async throws(AgentError) in
            queue.wantDecoder(through: target)
            defer { queue.stopWantingDecoder(through: target) }
            while !queue.isCaughtUp, !isStopped { try? await Task.sleep(for: .milliseconds(5)) }
        }
        guard queue.isCaughtUp else {
            throw AgentError(
                code: .capture, message: "the agent stopped or restarted before the WAL decoder read its markers again",
                isRetryable: true)
        }
    }

    /// Takes the position ``awaitDecoderCatchUp()`` waits for, once per process, before anything else of the
    /// process's start: before the hub is asked (an agent starting while the hub is unreachable captures nothing
    /// until it answers, and its region's writes go on meanwhile) and before any verdict of this process commits.
    /// Taken later, at the first apply as it was, a first pull that came late made the decoder read every local
    /// write up to then into the capture queue, past `tuning.capture_queue_max_changes`. Any capture mode: the
    /// mode is chosen after the hub answers.
    func takeCatchUpTarget() async throws(AgentError) {
        guard captureQueue.needsCatchUpTarget else { return }
        let start = try await db { connection in try AgentStore.walInsertPosition(connection: connection) }
        captureQueue.awaitCatchUp(to: start)
    }

    /// Saves the decoder's checkpoint once every change before it is handled, then lets the slot confirm it. When the
    /// verdicts it covers committed on another database session than the save's
    /// (``CaptureQueue/verdictsDurable(savingOn:)``: a crash of the server may have lost them), nothing is saved and
    /// the agent's tasks start again from the last saved position.
    func saveCheckpoint() async throws(AgentError) {
        let queue = captureQueue
        guard let checkpoint = queue.completedCheckpoint() else { return }
        let saved = try await db { connection in
            guard queue.verdictsDurable(savingOn: connection.session) else { return false }
            try WALSetup.save(
                resume: checkpoint.resume, ledger: checkpoint.ledger, switching: checkpoint.switching,
                hlc: checkpoint.hlc, connection: connection)
            return true
        }
        guard saved else {
            logger.warning(
                """
                verdicts were handled on a database session that has ended since (a crash of the server loses its \
                unflushed commits): capture starts again from the last saved position
                """)
            restartTasks()
            throw AgentError(
                code: .capture, message: "verdicts handled on a database session that has ended are not saved",
                isRetryable: true)
        }
        queue.confirmed(checkpoint.resume)
    }
}

