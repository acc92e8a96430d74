import StarlingCore
import StarlingPostgres

/// A key of a synced table: the table name and the canonical JSON text of the key object.
struct TableKey: Hashable, Sendable {
    var table: String
    var key: String
}

/// The sequencer's state and batch logic, confined to the sequencer's worker thread (hence `@unchecked
/// Sendable`: only ``Sequencer``'s drain job touches it, one batch at a time).
///
/// Holds the next `seq` and conflict id (loaded from the database when the advisory lock is taken, advanced
/// only when a batch commits) and the connection that holds the lock: a reconnected session is not the lock
/// holder, so the hub steps down to standby and must win the lock again and reload, because another hub may
/// have written meanwhile (``verifyHeld(_:)``).
final class SequencerWriter: @unchecked Sendable {
    /// The answer for one queued item.
    enum ItemResult: Sendable {
        case verdicts([Verdict])
        case resolved(Sequencer.ResolveOutcome)
        /// Conflict ids of recorded dead letters.
        case recorded([Int64])
        /// The compacted verdicts of a staged transaction.
        case transaction(TransactionVerdicts)
        case schema(SchemaOutcome)
        case failed(HubError)
    }

    /// What a committed batch produced, for answers and metrics.
    struct BatchOutcome: Sendable {
        var results: [ItemResult] = []
        var head: Int64 = 0
        /// Changes decided, per region and outcome.
        var ingested: [IngestedLabels: Int] = [:]
        /// Conflicts recorded, per table, policy and outcome.
        var conflicts: [ConflictLabels: Int] = [:]
        /// The entries the batch logged through its rows (not repairs), for the log cache.
        var logged: [LogCache.Logged] = []
    }

    /// The labels of the count of decided changes (`starling_hub_changes_ingested_total`; bounded: configured regions).
    struct IngestedLabels: Hashable, Sendable {
        var region: String
        /// `accepted`, `merged`, `rejected` or `duplicate` (a re-push answered from its stored verdict).
        var outcome: String
    }

    /// The labels of the count of recorded conflicts (`starling_hub_conflicts_total`; bounded: configured tables).
    struct ConflictLabels: Hashable, Sendable {
        var table: String
        var policy: String
        /// The record's status and winner, `<status>_<winner>`.
        var outcome: String
    }

    /// A decided change: found in the log (accepted: kind `change`, merged: kind `merge`) or in
    /// `starling_hub.decisions` (rejected), or decided earlier in the same batch.
    struct StoredDecision {
        var status: String
        var seq: Int64?
        var conflictID: Int64?
        var row: JSONObject?
        var tableKey: TableKey
    }

    /// The advisory lock `(class, id)` that makes one sequencer per database.
    static let lockClass: Int32 = 0x5354
    static let lockID: Int32 = 1

    let settings: HubSettings
    var nextSeq: Int64 = 1
    var nextConflictID: Int64 = 1
    /// The session that holds the advisory lock; kept alive here so its identity is never reused.
    private var lockedConnection: PostgresConnection?
    private var isLoaded = false
    /// Origin → the largest local id of any change decided so far (`starling_hub.origin_marks`, migration 6):
    /// a pushed id above its origin's mark has no stored verdict, so its idempotency probes are skipped.
    var originMarks: [String: Int64] = [:]
    /// Each table's shape, version and image rules as the log is now (SequencerWriter+Schema.swift): every pushed
    /// image is read under the shape in force before it is decided on.
    var shapeRules: [String: ShapeCache.Entry] = [:]
    /// Creates log partitions ahead of ``nextSeq``, so an insert never finds no partition (LogRetention.swift).
    var partitioner: LogPartitioner
    /// Table → delta column → kind, read from the registered shapes (SequencerWriter+Delta.swift).
    var deltaKinds: [String: [String: DeltaColumn.Kind]] = [:]

    init(settings: HubSettings) {
        self.settings = settings
        partitioner = LogPartitioner(partitionEntries: settings.retention.partitionEntries)
    }

    /// The last assigned (committed) seq.
    var head: Int64 { nextSeq - 1 }

    /// Tries to take the advisory lock on `connection` without waiting; on success (or when this session
    /// already holds it) loads the counters and returns true. False: another hub's session holds it.
    ///
    /// A poll instead of a blocking `pg_advisory_lock`: the worker thread stays free for shutdown and the
    /// standby can answer `/v1/status` meanwhile; the cost is up to one poll interval of takeover time.
    func tryLock(_ connection: PostgresConnection) throws -> Bool {
        if lockedConnection !== connection {
            isLoaded = false
            let result = try connection.query(
                "SELECT pg_try_advisory_lock($1::int4, $2::int4)", [.int32(Self.lockClass), .int32(Self.lockID)],
                name: "sequencer.tryLock")
            guard try result[0].bool(0) else { return false }
            try connection.execute(Self.sessionSettings, name: "sequencer.settings")
            try loadCountersIfNeeded(connection)
            // Only a hub whose term is committed holds the lock for this code (a read-only member grants the
            // advisory lock but refuses the insert: the next attempt tries again).
            terms = try Self.openTerm(connection, first: nextSeq)
            lockedConnection = connection
        }
        try loadCountersIfNeeded(connection)
        return true
    }

    /// The log's terms, oldest first, the newest opened by this hub when it took the lock (``LogTerms``).
    private(set) var terms = LogTerms()

    /// Opens a term at `first` (a random id, committed before any seq of it is handed out) and reads them all.
    static func openTerm(_ connection: PostgresConnection, first: Int64) throws -> LogTerms {
        try connection.execute(
            "INSERT INTO starling_hub.log_terms (id, first_seq) VALUES (gen_random_uuid()::text, $1)",
            [.int64(first)], name: "sequencer.openTerm")
        let rows = try connection.query(
            "SELECT id, first_seq, number FROM starling_hub.log_terms ORDER BY number", name: "sequencer.terms")
        return LogTerms(
            try rows.map { row throws in
                LogTerm(id: try row.string(0), first: try row.int64(1), number: try row.int64(2))
            })
    }

    /// Throws `standby` unless `connection` is the very session that took the lock; reloads the counters after
    /// a failed batch. This is the fence: a batch only ever runs on the lock-holding session, and the lock
    /// cannot leave a live session (this code never unlocks), so if the session died (Postgres restart,
    /// network, `pg_terminate_backend`) the worker's fresh connection fails here and nothing commits; another
    /// hub may have written meanwhile, so in-memory counters are stale and the hub steps down.
    /// The connection object is compared, not the backend PID: PIDs are reused.
    func verifyHeld(_ connection: PostgresConnection) throws {
        guard let lockedConnection, lockedConnection === connection else {
            throw Sequencer.lockLostError
        }
        try loadCountersIfNeeded(connection)
    }

    /// Asks the server whether this session still holds the lock (a round trip: a dead or unreachable session
    /// fails here). False when `connection` is not the lock session or the lock is not granted to it.
    func isHolding(_ connection: PostgresConnection) throws -> Bool {
        guard let lockedConnection, lockedConnection === connection else { return false }
        let result = try connection.query(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = \(Self.lockClass) "
                + "AND objid = \(Self.lockID) AND objsubid = 2 AND pid = pg_backend_pid() AND granted",
            name: "sequencer.checkLock")
        return try result[0].int64(0) == 1
    }

    /// Forgets the lock session (after it was lost): the next ``tryLock(_:)`` must take the lock anew.
    func forgetLock() {
        lockedConnection = nil
        isLoaded = false
    }

    private func loadCountersIfNeeded(_ connection: PostgresConnection) throws {
        guard !isLoaded else { return }
        let result = try connection.query(
            "SELECT greatest((SELECT coalesce(max(seq), 0) FROM starling_hub.log), "
                + "(SELECT pruned_through FROM starling_hub.retention)) AS seq, "
                + "(SELECT coalesce(max(id), 0) FROM starling_hub.conflicts) AS conflict",
            name: "sequencer.counters")
        nextSeq = try result[0].int64("seq") + 1
        nextConflictID = try result[0].int64("conflict") + 1
        var marks: [String: Int64] = [:]
        for row in try connection.query(
            "SELECT origin, max_local_id FROM starling_hub.origin_marks", name: "sequencer.originMarks")
        {
            marks[try row.string(0)] = try row.int64(1)
        }
        originMarks = marks
        shapeRules = try HubStore.loadShapeEntries(connection)
        try partitioner.load(connection: connection)
        isLoaded = true
    }

    /// Forces a reload of the counters before the next batch (after a failed one).
    func invalidate() {
        isLoaded = false
    }

    /// Decides and stores one batch in one transaction; the counters advance only if it commits.
    func apply(_ batch: [Sequencer.Item], connection: PostgresConnection, nowMicros: Int64) throws -> BatchOutcome {
        if batch.count == 1, case .staged(let region, let key, let total, _) = batch[0] {
            return try applyStaged(region: region, key: key, total: total, connection: connection)
        }
        var state = BatchState(nextSeq: nextSeq, nextConflictID: nextConflictID)
        try partitioner.ensure(through: nextSeq + Int64(batch.reduce(0) { $0 + $1.changeCount }), connection: connection)
        // Two round trips: the BEGIN goes with the first load, the COMMIT with the writes' pipeline.
        let outcome = try connection.transaction(name: "sequencer.batch", deferBegin: true) { connection in
            try load(batch, into: &state, connection: connection)
            try loadDeltaKinds(batch, connection: connection)
            try loadReasserted(batch, into: &state, connection: connection)
            var outcome = BatchOutcome()
            for item in batch {
                switch item {
                case .push(let region, let changes, let texts, _):
                    let (changes, texts) = conformed(changes, texts: texts)
                    outcome.results.append(
                        .verdicts(decide(changes, texts: texts, region: region, state: &state, outcome: &outcome)))
                case .resolve(let conflictID, let pick, let actor, _):
                    outcome.results.append(
                        resolve(conflictID, pick: pick, actor: actor, nowMicros: nowMicros, state: &state))
                case .deadLetters(let region, let letters, _):
                    outcome.results.append(
                        try recordDeadLetters(letters, region: region, state: &state, connection: connection))
                case .repair(let request, _):
                    outcome.results.append(
                        try repair(request, state: &state, connection: connection, nowMicros: nowMicros))
                case .schema(let request, _):
                    outcome.results.append(
                        try schema(request, state: &state, connection: connection, nowMicros: nowMicros))
                case .staged:
                    // The drain loop batches a staged transaction alone (``applyStaged``).
                    outcome.results.append(
                        .failed(HubError(code: .storageFailed, message: "a staged transaction batched with others")))
                }
            }
            try connection.commit(pipelining: try store(state, connection: connection))
            outcome.logged = state.logged
            return outcome
        }
        // Invariants (programmer errors, never input): every seq taken was written once, so the log stays
        // gap-free across batches, and every item got its own answer, in request order.
        let written = state.logged.count + state.repairRowCount
        precondition(
            state.nextSeq - nextSeq == Int64(written),
            "the batch took \(state.nextSeq - nextSeq) seqs but wrote \(written) log rows")
        Self.checkAnswers(outcome.results, to: batch)
        nextSeq = state.nextSeq
        nextConflictID = state.nextConflictID
        originMarks.merge(state.raisedMarks) { max($0, $1) }
        for case .schema(let schema) in outcome.results where schema.isNew { shapeRules[schema.entry.shape.name] = schema.entry }
        var result = outcome
        result.head = head
        return result
    }
}

/// The working set of one batch: heads and decisions loaded in bulk, then updated in memory as the batch's
/// changes are decided in order (so changes to one key in one batch see each other), plus the rows to write.
struct BatchState {
    /// The seq the next log row of this batch gets; only ``takeSeq(_:)`` advances it.
    private(set) var nextSeq: Int64
    var nextConflictID: Int64
    /// Repair rows written by their own COPY (not in ``logged``), counted for the seq check at commit.
    var repairRowCount = 0
    /// The canonical key text of every change, per batch item (empty for a resolution): serialized once.
    var keyTexts: [[String]] = []
    var heads: [TableKey: Head] = [:]
    /// Keys that have a row in `starling_hub.heads` (so their new head is an UPDATE, the others a COPY).
    var storedHeads: Set<TableKey> = []
    /// The image text of every dirty head (the same text as its log row: serialized once).
    var headRowTexts: [TableKey: String?] = [:]
    var decisions: [String: SequencerWriter.StoredDecision] = [:]
    /// Origin → the largest local id pushed in this batch, where above the origin's stored mark.
    var raisedMarks: [String: Int64] = [:]
    var records: [Int64: ConflictRecord] = [:]
    /// Keys whose head changed, in first-change order (``headRowTexts`` doubles as the membership test).
    var dirtyHeads: [TableKey] = []
    /// The batch's log entries with their key and row texts: written by COPY, then kept by the log cache.
    var logged: [LogCache.Logged] = []
    /// Rejected changes only: accepted and merged ones are recorded by their log row.
    var decisionRows: [[PostgresValue]] = []
    var conflictRows: [[PostgresValue]] = []
    var resolutions: [Resolution] = []
    /// Keys whose head is a re-assertion (SequencerWriter+Reassert.swift): loaded for the batch's re-asserted
    /// keys, and set by the re-assertions it accepts.
    var reasserted: [TableKey: Reasserted] = [:]

    /// A manual resolution decided in this batch: the conflict record's update and its audit row.
    struct Resolution {
        var conflictID: Int64
        /// `current` or `incoming`, as stored in `starling_hub.conflicts.winner`.
        var winner: String
        /// The operator's pick as canonical JSON, stored as the resolution and in the audit detail.
        var pickText: String
        /// The seq of the `resolution` entry that carries the outcome.
        var seq: Int64
        var actor: String
    }

    init(nextSeq: Int64, nextConflictID: Int64) {
        self.nextSeq = nextSeq
        self.nextConflictID = nextConflictID
    }

    /// Takes `seq` for a log row, which must be ``nextSeq``: seqs are handed out one at a time, in batch order,
    /// none skipped and none twice (gap-free). A different `seq` is a bug in the sequencer or the resolver that
    /// built the entry, never bad input, hence a precondition.
    @discardableResult
    mutating func takeSeq(_ seq: Int64) -> Int64 {
        precondition(seq == nextSeq, "log entry built at seq \(seq), but the next seq is \(nextSeq)")
        nextSeq += 1
        return seq
    }

    mutating func setHead(_ head: Head, rowText: String?, for tableKey: TableKey) {
        heads[tableKey] = head
        if headRowTexts.updateValue(rowText, forKey: tableKey) == nil { dirtyHeads.append(tableKey) }
    }

    /// Sizes the per-change tables once for `changes` changes (rehashing while growing showed in profiles).
    mutating func reserve(changes: Int) {
        heads.reserveCapacity(changes)
        storedHeads.reserveCapacity(changes)
        headRowTexts.reserveCapacity(changes)
        decisions.reserveCapacity(changes)
        dirtyHeads.reserveCapacity(changes)
        logged.reserveCapacity(changes)
    }
}

extension SequencerWriter {
    /// Planner settings of the sequencer's session. Every statement it runs is a key lookup or a write by key
    /// over a batch of at most `maxBatchChanges` keys against tables that only grow, but for thousands of keys
    /// the planner picks sequential, bitmap or whole-index scans, or hash joins against `unnest`, which cost
    /// the whole table per batch (measured: ingest fell from 29k to 6k changes/s as the tables grew to 1M).
    /// Without `enable_material`, a join on a fresh (never analyzed) heads table materialized every head and
    /// filtered it once per key. The disabled plan types add a huge constant to every estimate, so Postgres
    /// JIT-compiled each batch statement: `jit` off (measured: a quarter of the load phase, ingest +25%).
    /// These only steer plans; durability settings are the operator's.
    static let sessionSettings =
        "SELECT set_config('enable_seqscan', 'off', false), set_config('enable_bitmapscan', 'off', false), "
        + "set_config('enable_hashjoin', 'off', false), set_config('enable_mergejoin', 'off', false), "
        + "set_config('enable_material', 'off', false), set_config('enable_memoize', 'off', false), "
        + "set_config('jit', 'off', false)"

    /// Loads, in bulk, the heads of every key the batch touches and the prior decisions of its change ids.
    func load(_ batch: [Sequencer.Item], into state: inout BatchState, connection: PostgresConnection) throws {
        let changeCount = batch.reduce(0) { $0 + $1.changeCount }
        state.reserve(changes: changeCount)
        var keySet = Set<TableKey>(minimumCapacity: changeCount)
        var conflictIDs: [Int64?] = []
        state.keyTexts.reserveCapacity(batch.count)
        for item in batch {
            switch item {
            case .push(_, let changes, let texts, _):
                for (change, text) in zip(changes, texts.keys) {
                    keySet.insert(TableKey(table: change.table, key: text))
                }
                state.keyTexts.append(texts.keys)
            case .resolve(let conflictID, _, _, _):
                state.keyTexts.append([])
                conflictIDs.append(conflictID)
            case .deadLetters, .repair, .staged, .schema:
                // Keeps keyTexts indexed by batch position for the pushes after this item.
                state.keyTexts.append([])
            }
        }
        if !conflictIDs.isEmpty {
            let rows = try connection.query(
                "SELECT \(HubStore.conflictColumns) FROM starling_hub.conflicts WHERE id = ANY($1::bigint[])",
                [.int64Array(conflictIDs)], name: "sequencer.loadConflicts", prepared: true)
            for row in rows {
                let record = try HubStore.conflictRecord(row)
                guard let id = record.id else { continue }
                state.records[id] = record
                keySet.insert(TableKey(table: record.table, key: HubJSON.text(record.key)))
            }
        }
        try loadHeads(keySet, into: &state, connection: connection)
        try loadDecisions(batch, into: &state, connection: connection)
    }

    /// One primary-key probe per key: `unnest` drives a LATERAL subquery fenced by `OFFSET 0`, so the plan is
    /// a nested loop with the keys outside whatever the statistics say (`key = ANY(…)` let the planner scan
    /// every head of the table, and a plain join put a freshly created heads table on the outside).
    private func loadHeads(_ keySet: Set<TableKey>, into state: inout BatchState, connection: PostgresConnection)
        throws
    {
        var keysByTable: [String: [String?]] = [:]
        for tableKey in keySet { keysByTable[tableKey.table, default: []].append(tableKey.key) }
        for (table, keys) in keysByTable {
            let rows = try connection.query(
                "SELECT h.key, h.seq, h.origin, h.hlc, h.row, h.op, h.prev_foreign_seq FROM unnest($2::text[]) AS u(k) "
                    + "CROSS JOIN LATERAL (SELECT * FROM starling_hub.heads WHERE table_name = $1 AND key = u.k "
                    + "OFFSET 0) AS h",
                [.text(table), .textArray(keys)], name: "sequencer.loadHeads", prepared: true)
            for row in rows {
                let head = Head(
                    seq: try row.int64(1), origin: try row.string(2), hlc: try row.int64(3),
                    image: try HubJSON.optionalObject(row.optionalString(4)), prevForeignSeq: try row.int64(6),
                    op: ChangeOperation(rawValue: try row.string(5)))
                let tableKey = TableKey(table: table, key: try row.string(0))
                state.heads[tableKey] = head
                state.storedHeads.insert(tableKey)
            }
        }
    }

    /// Prior verdicts of the batch's change ids that may have one: accepted and merged ones from the log's
    /// change_id index, rejected ones from `starling_hub.decisions`. An id above its origin's mark (or of an
    /// origin without one) has no stored verdict and is not looked up; an id whose number does not parse always
    /// is. The same pass records in `state.raisedMarks` each origin whose largest id here is above its mark.
    private func loadDecisions(
        _ batch: [Sequencer.Item], into state: inout BatchState, connection: PostgresConnection
    ) throws {
        var ids: [String?] = []
        ids.reserveCapacity(state.decisions.capacity)
        for item in batch {
            guard case .push(_, let changes, _, _) = item else { continue }
            for change in changes {
                guard let parsed = ChangeID(change.id) else {
                    ids.append(change.id)
                    continue
                }
                let (name, localID) = (parsed.origin, parsed.number)
                let mark = originMarks[name]
                if let mark, localID <= mark { ids.append(change.id) }
                if localID > max(mark ?? .min, state.raisedMarks[name] ?? .min) { state.raisedMarks[name] = localID }
            }
        }
        // Fresh ids are above every pruned watermark too (they are at most their origin's mark).
        guard !ids.isEmpty else { return }
        let logged = try connection.query(
            "SELECT l.change_id, l.seq, l.kind, l.row FROM unnest($1::text[]) AS u(id) CROSS JOIN LATERAL "
                + "(SELECT * FROM starling_hub.log WHERE change_id = u.id AND kind IN ('change', 'merge') OFFSET 0) AS l",
            [.textArray(ids)], name: "sequencer.loadLogged", prepared: true)
        // Re-pushes are rare: the id → key map is built only when the log knows some of the ids.
        var tableKeys: [String: TableKey] = [:]
        if logged.rowCount > 0 {
            for (index, item) in batch.enumerated() {
                guard case .push(_, let changes, _, _) = item else { continue }
                for (change, keyText) in zip(changes, state.keyTexts[index]) {
                    tableKeys[change.id] = TableKey(table: change.table, key: keyText)
                }
            }
        }
        for row in logged {
            let id = try row.string(0)
            let isMerge = try row.string(2) == "merge"
            state.decisions[id] = StoredDecision(
                status: isMerge ? "merged" : "accepted", seq: try row.int64(1), conflictID: nil,
                row: isMerge ? try HubJSON.optionalObject(row.optionalString(3)) : nil,
                tableKey: tableKeys[id] ?? TableKey(table: "", key: ""))
        }
        let rejected = try connection.query(
            "SELECT d.change_id, d.table_name, d.key, d.conflict_id FROM unnest($1::text[]) AS u(id) CROSS JOIN "
                + "LATERAL (SELECT * FROM starling_hub.decisions WHERE change_id = u.id OFFSET 0) AS d", [.textArray(ids)],
            name: "sequencer.loadRejected", prepared: true)
        for row in rejected {
            state.decisions[try row.string(0)] = StoredDecision(
                status: "rejected", seq: nil, conflictID: try row.int64(3), row: nil,
                tableKey: TableKey(table: try row.string(1), key: try row.string(2)))
        }
        try loadPrunedDecisions(batch, into: &state, connection: connection)
    }

    /// Ids no longer in the log because retention dropped their entry: at or below their origin's watermark,
    /// answered `accepted` with the watermark's seq (LogRetention.swift says why that is safe).
    private func loadPrunedDecisions(
        _ batch: [Sequencer.Item], into state: inout BatchState, connection: PostgresConnection
    ) throws {
        let watermarks = try PrunedChanges.load(connection: connection)
        guard !watermarks.isEmpty else { return }
        for (index, item) in batch.enumerated() {
            guard case .push(_, let changes, _, _) = item else { continue }
            for (change, keyText) in zip(changes, state.keyTexts[index]) where state.decisions[change.id] == nil {
                guard let parsed = ChangeID(change.id), let mark = watermarks[parsed.origin],
                    parsed.number <= mark.localID
                else { continue }
                state.decisions[change.id] = StoredDecision(
                    status: "accepted", seq: mark.seq, conflictID: nil, row: nil,
                    tableKey: TableKey(table: change.table, key: keyText))
            }
        }
    }

    /// Decides every change of one push in order.
    func decide(
        _ changes: [Change], texts: Sequencer.PushTexts, region: String, state: inout BatchState,
        outcome: inout BatchOutcome
    ) -> [Verdict] {
        var verdicts: [Verdict] = []
        verdicts.reserveCapacity(changes.count)
        for (index, change) in changes.enumerated() {
            let keyText = texts.keys[index]
            let tableKey = TableKey(table: change.table, key: keyText)
            if let stored = state.decisions[change.id] {
                verdicts.append(Self.verdict(id: change.id, stored: stored, head: state.heads[stored.tableKey]))
                outcome.ingested[IngestedLabels(region: region, outcome: "duplicate"), default: 0] += 1
                continue
            }
            let policy = settings.tablesByName[change.table]?.policy ?? .lww
            let decision: Decision
            var reassertPriority: Int64?
            if change.reassert != nil {
                let reassert = decideReassert(change, tableKey: tableKey, policy: policy, state: state)
                (decision, reassertPriority) = (reassert.decision, reassert.priority)
            } else {
                decision = ConflictResolver.decide(
                    change: change, head: state.heads[tableKey], policy: policy, priorities: settings.priorities,
                    deltaColumns: deltaKinds[change.table] ?? [:])
            }
            var seq: Int64?
            var conflictID: Int64?
            if let entry = decision.logEntry(seq: state.nextSeq), let head = decision.newHead(seq: state.nextSeq) {
                precondition(head.seq == entry.seq, "head at seq \(head.seq) for an entry at \(entry.seq)")
                seq = state.takeSeq(entry.seq)
                // An accepted change stores its own image, serialized by the push's task; a merge its merged row.
                let rowText: String?
                if case .accept = decision.outcome {
                    rowText = texts.images[index]
                } else {
                    rowText = entry.row.map(HubJSON.text)
                }
                state.logged.append(LogCache.Logged(entry: entry, keyText: keyText, rowText: rowText))
                state.setHead(head, rowText: rowText, for: tableKey)
                if let reassertPriority {
                    state.reasserted[tableKey] = BatchState.Reasserted(
                        seq: entry.seq, priority: reassertPriority, isNew: true)
                }
            }
            if var record = decision.conflict {
                conflictID = state.nextConflictID
                record.id = state.nextConflictID
                state.nextConflictID += 1
                state.conflictRows.append(Self.conflictRow(record, keyText: keyText))
                state.records[record.id ?? 0] = record
                let labels = ConflictLabels(
                    table: change.table, policy: policy.name,
                    outcome: record.status.rawValue + "_" + record.winner.rawValue)
                outcome.conflicts[labels, default: 0] += 1
            }
            if case .unchanged = decision.outcome, let reassertPriority, let head = state.heads[tableKey] {
                // The head stands; a re-assertion that confirms it raises its priority.
                state.reasserted[tableKey] = BatchState.Reasserted(seq: head.seq, priority: reassertPriority, isNew: true)
            }
            let verdict = decision.verdict(seq: seq, conflictID: conflictID)
            var mergedRow: JSONObject?
            if case .merged(_, let row) = verdict.outcome { mergedRow = row }
            state.decisions[change.id] = StoredDecision(
                status: verdict.status, seq: seq ?? (decision.appendsEntry || conflictID != nil ? nil : verdict.version),
                conflictID: conflictID, row: mergedRow, tableKey: tableKey)
            if let conflictID, seq == nil {
                state.decisionRows.append([.text(change.id), .text(change.table), .text(keyText), .int64(conflictID)])
            }
            outcome.ingested[IngestedLabels(region: region, outcome: verdict.status), default: 0] += 1
            verdicts.append(verdict)
        }
        return verdicts
    }

    /// Asserts that `results` answer `batch` item by item, in request order: one result per item of the
    /// matching kind (or a failure), one verdict per pushed change carrying that change's id, one conflict id
    /// per dead letter and one seq per repaired key. The callers are resumed by position, so a mismatch would
    /// hand one request another's answer: a programmer error, checked with preconditions.
    static func checkAnswers(_ results: [ItemResult], to batch: [Sequencer.Item]) {
        precondition(results.count == batch.count, "\(results.count) results for \(batch.count) batch items")
        for (item, result) in zip(batch, results) {
            switch (item, result) {
            case (_, .failed): continue
            case (.push(_, let changes, _, _), .verdicts(let verdicts)):
                precondition(verdicts.count == changes.count, "\(verdicts.count) verdicts for \(changes.count) changes")
                for (change, verdict) in zip(changes, verdicts) {
                    precondition(verdict.id == change.id, "verdict for \(verdict.id) answers change \(change.id)")
                }
            case (.resolve, .resolved), (.schema, .schema): continue
            case (.deadLetters(_, let letters, _), .recorded(let ids)):
                precondition(ids.count == letters.count, "\(ids.count) conflict ids for \(letters.count) dead letters")
            case (.repair(let request, _), .recorded(let seqs)):
                precondition(seqs.count == request.keys.count, "\(seqs.count) seqs for \(request.keys.count) keys")
            case (.staged(_, _, let total, _), .transaction(let verdicts)):
                precondition(verdicts.count == total, "\(verdicts.count) verdicts for \(total) staged changes")
            default:
                preconditionFailure("a sequencer result of the wrong kind for its batch item")
            }
        }
    }

    /// A manual resolution: a `resolution` entry from the hub, the new head, the record marked resolved.
    private func resolve(
        _ conflictID: Int64, pick: ManualPick, actor: String, nowMicros: Int64, state: inout BatchState
    ) -> ItemResult {
        guard let record = state.records[conflictID] else {
            return .failed(HubError(code: .notFound, message: "no conflict \(conflictID)"))
        }
        guard record.status != .resolved else {
            return .failed(HubError(code: .alreadyResolved, message: "conflict \(conflictID) is already resolved"))
        }
        // Only a schema change a region could not apply has no key (every row has one): there is no row to pick.
        guard !record.key.isEmpty else {
            return .failed(
                HubError(
                    code: .invalidRequest,
                    message: "conflict \(conflictID) is a schema change of \(record.table) that region "
                        + "\(record.incoming.origin) could not apply: there is no row to pick. Make the change possible "
                        + "in that region (its agent tries it again at every apply) or apply it there by hand"))
        }
        let keyText = HubJSON.text(record.key)
        let tableKey = TableKey(table: record.table, key: keyText)
        let resolution: ManualResolution
        do {
            resolution = try ConflictResolver.resolveManually(
                record: record, head: state.heads[tableKey], pick: pick, seq: state.nextSeq, hlc: nowMicros)
        } catch {
            return .failed(HubError(code: .invalidRequest, message: error.message, key: error.field))
        }
        precondition(resolution.head.seq == resolution.entry.seq, "a resolution's head and entry disagree on seq")
        state.takeSeq(resolution.entry.seq)
        let rowText = resolution.entry.row.map(HubJSON.text)
        state.logged.append(LogCache.Logged(entry: resolution.entry, keyText: keyText, rowText: rowText))
        state.setHead(resolution.head, rowText: rowText, for: tableKey)
        state.records[conflictID] = resolution.record
        state.resolutions.append(
            BatchState.Resolution(
                conflictID: conflictID, winner: resolution.record.winner.rawValue, pickText: HubJSON.text(pick.json),
                seq: resolution.entry.seq, actor: actor))
        return .resolved(Sequencer.ResolveOutcome(record: resolution.record, entry: resolution.entry))
    }

    static let logColumns: [(name: String, type: PostgresArrayType)] = [
        ("seq", .int64), ("origin", .text), ("change_id", .text), ("tx", .text), ("table_name", .text), ("op", .text),
        ("key", .text), ("row", .text), ("hlc", .int64), ("kind", .text), ("rewritten", .bool),
    ]
    static let headColumns: [(name: String, type: PostgresArrayType)] = [
        ("table_name", .text), ("key", .text), ("seq", .int64), ("origin", .text), ("hlc", .int64), ("row", .text),
        ("op", .text), ("prev_foreign_seq", .int64),
    ]
    static let decisionColumns: [(name: String, type: PostgresArrayType)] = [
        ("change_id", .text), ("table_name", .text), ("key", .text), ("conflict_id", .int64),
    ]
    static let conflictColumns: [(name: String, type: PostgresArrayType)] = [
        ("id", .int64), ("table_name", .text), ("key", .text), ("policy", .text), ("provisional", .text),
        ("status", .text), ("winner", .text), ("current_seq", .int64), ("current_origin", .text),
        ("current_op", .text), ("current_row", .text), ("incoming_id", .text), ("incoming_origin", .text),
        ("incoming_op", .text), ("incoming_base", .int64), ("incoming_row", .text),
    ]

    /// A batch writing at most this many rows writes them with `INSERT … unnest` in one pipeline with its other
    /// writes: one round trip instead of about six (each COPY is two), which at light load is most of a push's
    /// time at the hub. Larger batches write by COPY, cheaper per row.
    static let pipelinedRows = 256

    /// Writes the batch: log, rejections, conflicts and new heads by COPY when the batch is large; returns the
    /// statements for the rest, to run in one pipeline (with the COMMIT): those rows when the batch is small, the
    /// origin marks, the changed heads (one UPDATE), any resolutions and the re-asserted heads' priorities.
    func store(_ state: BatchState, connection: PostgresConnection) throws -> [PostgresStatement] {
        let rowCount = state.logged.count + state.decisionRows.count + state.conflictRows.count + state.dirtyHeads.count
        let isSmall = rowCount <= Self.pipelinedRows
        var statements: [PostgresStatement] = []
        func write(_ table: String, _ columns: [(name: String, type: PostgresArrayType)], _ rows: [[PostgresValue]],
                   name: String) throws {
            guard !rows.isEmpty else { return }
            if isSmall {
                var insert = try PostgresStatement.unnestInsert(into: table, columns: columns, rows: rows, name: name)
                insert.prepared = true
                statements.append(insert)
            } else {
                try connection.copyIn(table: table, columns: columns.map(\.name), rows: rows, name: name)
            }
        }
        try write(
            "starling_hub.log", Self.logColumns,
            state.logged.map { Self.logRow($0.entry, keyText: $0.keyText, rowText: $0.rowText) }, name: "sequencer.copyLog")
        try write("starling_hub.decisions", Self.decisionColumns, state.decisionRows, name: "sequencer.copyRejected")
        try write("starling_hub.conflicts", Self.conflictColumns, state.conflictRows, name: "sequencer.copyConflicts")
        // The marks commit with the verdicts they cover (``loadDecisions(_:into:connection:)`` relies on them).
        if !state.raisedMarks.isEmpty {
            statements.append(
                PostgresStatement(
                    "INSERT INTO starling_hub.origin_marks (origin, max_local_id) SELECT * FROM unnest($1::text[], "
                        + "$2::bigint[]) ON CONFLICT (origin) DO UPDATE SET max_local_id = "
                        + "greatest(starling_hub.origin_marks.max_local_id, EXCLUDED.max_local_id)",
                    [.textArray(Array(state.raisedMarks.keys)), .int64Array(Array(state.raisedMarks.values))],
                    name: "sequencer.originMarks", prepared: true))
        }
        let (inserted, updated) = Self.headRows(state)
        try write("starling_hub.heads", Self.headColumns, inserted, name: "sequencer.copyHeads")
        if let update = Self.updateHeads(updated) { statements.append(update) }
        for resolution in state.resolutions {
            statements.append(
                PostgresStatement(
                    "UPDATE starling_hub.conflicts SET status = 'resolved', winner = $2, resolved_at = now(), "
                        + "resolution = $3, resolution_seq = $4 WHERE id = $1",
                    [
                        .int64(resolution.conflictID), .text(resolution.winner), .text(resolution.pickText),
                        .int64(resolution.seq),
                    ], name: "sequencer.resolveConflict"))
            statements.append(
                PostgresStatement(
                    "INSERT INTO starling_hub.audit (actor, action, target, detail) "
                        + "VALUES ($1, 'resolve_conflict', $2, $3)",
                    [.text(resolution.actor), .text(String(resolution.conflictID)), .text(resolution.pickText)],
                    name: "sequencer.audit"))
        }
        if let reasserted = storeReasserted(state) { statements.append(reasserted) }
        return statements
    }

    /// The dirty heads as rows: keys seen for the first time (inserted) and the others (updated). The split is
    /// exact because this session is the only writer of heads while it holds the advisory lock.
    private static func headRows(_ state: BatchState) -> (inserted: [[PostgresValue]], updated: [[PostgresValue]]) {
        var inserted: [[PostgresValue]] = []
        var updated: [[PostgresValue]] = []
        for tableKey in state.dirtyHeads {
            guard let head = state.heads[tableKey] else { continue }
            let rowText = state.headRowTexts[tableKey] ?? head.image.map(HubJSON.text)
            let row: [PostgresValue] = [
                .text(tableKey.table), .text(tableKey.key), .int64(head.seq), .text(head.origin), .int64(head.hlc),
                rowText.map(PostgresValue.text) ?? .null, .text(head.op.rawValue), .int64(head.prevForeignSeq),
            ]
            if state.storedHeads.contains(tableKey) { updated.append(row) } else { inserted.append(row) }
        }
        return (inserted, updated)
    }

    /// One UPDATE of the changed heads that finds each row by a primary-key probe (LATERAL, as in ``loadHeads``)
    /// and updates it by ctid; nil when none changed.
    private static func updateHeads(_ updated: [[PostgresValue]]) -> PostgresStatement? {
        guard !updated.isEmpty else { return nil }
        return PostgresStatement(
            "UPDATE starling_hub.heads AS h SET seq = v.seq, origin = v.origin, hlc = v.hlc, row = v.row, op = v.op, "
                + "prev_foreign_seq = v.pfs FROM (SELECT u.*, x.c FROM unnest($1::text[], $2::text[], $3::bigint[], "
                + "$4::text[], $5::bigint[], $6::text[], $7::text[], $8::bigint[]) AS u(t, k, seq, origin, hlc, row, "
                + "op, pfs) CROSS JOIN LATERAL (SELECT ctid AS c FROM starling_hub.heads WHERE table_name = u.t "
                + "AND key = u.k OFFSET 0) AS x) AS v WHERE h.ctid = v.c",
            [
                .textArray(updated.map { $0[0].textValue }), .textArray(updated.map { $0[1].textValue }),
                .int64Array(updated.map { $0[2].int64Value }), .textArray(updated.map { $0[3].textValue }),
                .int64Array(updated.map { $0[4].int64Value }), .textArray(updated.map { $0[5].textValue }),
                .textArray(updated.map { $0[6].textValue }), .int64Array(updated.map { $0[7].int64Value }),
            ], name: "sequencer.updateHeads", prepared: true)
    }

    static func logRow(_ entry: LogEntry, keyText: String, rowText: String?) -> [PostgresValue] {
        [
            .int64(entry.seq), .text(entry.origin), .text(entry.id), .text(entry.tx), .text(entry.table),
            .text(entry.op.rawValue), .text(keyText), rowText.map(PostgresValue.text) ?? .null, .int64(entry.hlc),
            .text(entry.kind.rawValue), .bool(entry.rewritten),
        ]
    }

    static func conflictRow(_ record: ConflictRecord, keyText: String) -> [PostgresValue] {
        var provisional: PostgresValue = .null
        if case .manual(let mode) = record.policy { provisional = .text(mode.rawValue) }
        return [
            .int64(record.id ?? 0), .text(record.table), .text(keyText), .text(record.policy.name), provisional,
            .text(record.status.rawValue), .text(record.winner.rawValue), .int64(record.current.seq),
            .text(record.current.origin), .text(record.current.op.rawValue),
            record.current.row.map { .text(HubJSON.text($0)) } ?? .null, .text(record.incoming.id),
            .text(record.incoming.origin), .text(record.incoming.op.rawValue), .int64(record.incoming.base),
            record.incoming.row.map { .text(HubJSON.text($0)) } ?? .null,
        ]
    }

    /// The stored verdict of a re-pushed change, with the *current* head as a rejected change's winner.
    static func verdict(id: String, stored: StoredDecision, head: Head?) -> Verdict {
        switch stored.status {
        case "merged":
            return Verdict(id: id, outcome: .merged(seq: stored.seq ?? 0, row: stored.row ?? [:]))
        case "rejected":
            let winner = head.map(Verdict.Winner.init(head:)) ?? Verdict.Winner(seq: 0, origin: "", row: nil)
            return Verdict(id: id, outcome: .rejected(conflict: stored.conflictID ?? 0, winner: winner))
        default:
            return Verdict(id: id, outcome: .accepted(seq: stored.seq ?? 0))
        }
    }
}
