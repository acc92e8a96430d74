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
/// only when a batch commits) and the backend PID that holds the lock: a reconnected session must take the
/// lock again and reload, because another hub may have written meanwhile.
final class SequencerWriter: @unchecked Sendable {
    /// The answer for one queued item.
    enum ItemResult: Sendable {
        case verdicts([Verdict])
        case resolved(Sequencer.ResolveOutcome)
        /// Conflict ids of recorded dead letters.
        case recorded([Int64])
        case failed(HubError)
    }

    /// What a committed batch produced, for answers and metrics.
    struct BatchOutcome: Sendable {
        var results: [ItemResult] = []
        var head: Int64 = 0
        /// (region, outcome) → changes; outcome is accepted, merged, rejected or duplicate.
        var ingested: [Pair: Int] = [:]
        /// (table, policy, outcome) → conflicts recorded.
        var conflicts: [Triple: Int] = [:]
    }

    struct Pair: Hashable, Sendable {
        var a: String
        var b: String
    }
    struct Triple: Hashable, Sendable {
        var a: String
        var b: String
        var c: String
    }

    /// A decided change as stored in `starling_hub.decisions`.
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

    private let settings: HubSettings
    private var nextSeq: Int64 = 1
    private var nextConflictID: Int64 = 1
    private var lockedBackendPID: Int32 = 0
    private var isLoaded = false

    init(settings: HubSettings) {
        self.settings = settings
    }

    /// The last assigned (committed) seq.
    var head: Int64 { nextSeq - 1 }

    /// Takes the advisory lock on this session if it does not hold it (blocks while another hub does), and
    /// (re)loads the counters when needed.
    func ensureLocked(_ connection: PostgresConnection) throws {
        if lockedBackendPID != connection.backendPID || lockedBackendPID == 0 {
            isLoaded = false
            try connection.execute(
                "SELECT pg_advisory_lock($1::int4, $2::int4)", [.int32(Self.lockClass), .int32(Self.lockID)],
                name: "sequencer.lock")
            lockedBackendPID = connection.backendPID
        }
        guard !isLoaded else { return }
        let result = try connection.query(
            "SELECT (SELECT coalesce(max(seq), 0) FROM starling_hub.log) AS seq, "
                + "(SELECT coalesce(max(id), 0) FROM starling_hub.conflicts) AS conflict",
            name: "sequencer.counters")
        nextSeq = try result[0].int64("seq") + 1
        nextConflictID = try result[0].int64("conflict") + 1
        isLoaded = true
    }

    /// Forces a reload of the counters before the next batch (after a failed one).
    func invalidate() {
        isLoaded = false
    }

    /// Decides and stores one batch in one transaction; the counters advance only if it commits.
    func apply(_ batch: [Sequencer.Item], connection: PostgresConnection, nowMicros: Int64) throws -> BatchOutcome {
        var state = BatchState(nextSeq: nextSeq, nextConflictID: nextConflictID)
        let outcome = try connection.transaction(name: "sequencer.batch") { connection in
            try load(batch, into: &state, connection: connection)
            var outcome = BatchOutcome()
            for item in batch {
                switch item {
                case .push(let region, let changes, _):
                    outcome.results.append(.verdicts(decide(changes, region: region, state: &state, outcome: &outcome)))
                case .resolve(let conflictID, let pick, let actor, _):
                    outcome.results.append(
                        resolve(conflictID, pick: pick, actor: actor, nowMicros: nowMicros, state: &state))
                case .deadLetters(let region, let letters, _):
                    outcome.results.append(
                        try recordDeadLetters(letters, region: region, state: &state, connection: connection))
                }
            }
            try store(state, connection: connection)
            return outcome
        }
        nextSeq = state.nextSeq
        nextConflictID = state.nextConflictID
        var result = outcome
        result.head = head
        return result
    }
}

/// The working set of one batch: heads and decisions loaded in bulk, then updated in memory as the batch's
/// changes are decided in order (so changes to one key in one batch see each other), plus the rows to write.
struct BatchState {
    var nextSeq: Int64
    var nextConflictID: Int64
    var heads: [TableKey: Head] = [:]
    var decisions: [String: SequencerWriter.StoredDecision] = [:]
    var records: [Int64: ConflictRecord] = [:]
    var dirtyHeads: [TableKey] = []
    var dirtyHeadSet: Set<TableKey> = []
    var logRows: [[PostgresValue]] = []
    var decisionRows: [[PostgresValue]] = []
    var conflictRows: [[PostgresValue]] = []
    /// (id, winner, resolution JSON, resolution seq, actor)
    var resolutions: [(Int64, String, String, Int64, String)] = []

    mutating func setHead(_ head: Head, for tableKey: TableKey) {
        heads[tableKey] = head
        if dirtyHeadSet.insert(tableKey).inserted { dirtyHeads.append(tableKey) }
    }
}

extension SequencerWriter {
    /// Loads, in bulk, the prior decisions of every change id and the heads of every key the batch touches.
    private func load(_ batch: [Sequencer.Item], into state: inout BatchState, connection: PostgresConnection) throws {
        var ids: [String?] = []
        var keySet = Set<TableKey>()
        var conflictIDs: [Int64?] = []
        for item in batch {
            switch item {
            case .push(_, let changes, _):
                for change in changes {
                    ids.append(change.id)
                    keySet.insert(TableKey(table: change.table, key: HubJSON.text(change.key)))
                }
            case .resolve(let conflictID, _, _, _):
                conflictIDs.append(conflictID)
            case .deadLetters:
                break
            }
        }
        if !conflictIDs.isEmpty {
            let rows = try connection.query(
                "SELECT \(HubStore.conflictColumns) FROM starling_hub.conflicts WHERE id = ANY($1::bigint[])",
                [.int64Array(conflictIDs)], name: "sequencer.loadConflicts")
            for row in rows {
                let record = try HubStore.conflictRecord(row)
                guard let id = record.id else { continue }
                state.records[id] = record
                keySet.insert(TableKey(table: record.table, key: HubJSON.text(record.key)))
            }
        }
        if !ids.isEmpty {
            let rows = try connection.query(
                "SELECT change_id, table_name, key, status, seq, conflict_id, row FROM starling_hub.decisions "
                    + "WHERE change_id = ANY($1::text[])", [.textArray(ids)], name: "sequencer.loadDecisions")
            for row in rows {
                state.decisions[try row.string(0)] = StoredDecision(
                    status: try row.string(3), seq: try row.optionalInt64(4), conflictID: try row.optionalInt64(5),
                    row: try HubJSON.optionalObject(row.optionalString(6)),
                    tableKey: TableKey(table: try row.string(1), key: try row.string(2)))
            }
        }
        // One index lookup per table (`key = ANY(…)` probes the primary key; a join against unnest() can
        // make the planner scan every head).
        var keysByTable: [String: [String?]] = [:]
        for tableKey in keySet { keysByTable[tableKey.table, default: []].append(tableKey.key) }
        for (table, keys) in keysByTable {
            let rows = try connection.query(
                "SELECT key, seq, origin, hlc, row, op, prev_foreign_seq FROM starling_hub.heads "
                    + "WHERE table_name = $1 AND key = ANY($2::text[])",
                [.text(table), .textArray(keys)], name: "sequencer.loadHeads")
            for row in rows {
                let head = Head(
                    seq: try row.int64(1), origin: try row.string(2), hlc: try row.int64(3),
                    image: try HubJSON.optionalObject(row.optionalString(4)), prevForeignSeq: try row.int64(6),
                    op: ChangeOperation(rawValue: try row.string(5)))
                state.heads[TableKey(table: table, key: try row.string(0))] = head
            }
        }
    }

    /// Decides every change of one push in order.
    private func decide(
        _ changes: [Change], region: String, state: inout BatchState, outcome: inout BatchOutcome
    ) -> [Verdict] {
        var verdicts: [Verdict] = []
        verdicts.reserveCapacity(changes.count)
        for change in changes {
            let keyText = HubJSON.text(change.key)
            let tableKey = TableKey(table: change.table, key: keyText)
            if let stored = state.decisions[change.id] {
                verdicts.append(Self.verdict(id: change.id, stored: stored, head: state.heads[stored.tableKey]))
                outcome.ingested[Pair(a: region, b: "duplicate"), default: 0] += 1
                continue
            }
            let policy = settings.tablesByName[change.table]?.policy ?? .lww
            let decision = ConflictResolver.decide(
                change: change, head: state.heads[tableKey], policy: policy, priorities: settings.priorities)
            var seq: Int64?
            var conflictID: Int64?
            var rowText: String?
            if let entry = decision.logEntry(seq: state.nextSeq), let head = decision.newHead(seq: state.nextSeq) {
                seq = state.nextSeq
                state.nextSeq += 1
                rowText = entry.row.map(HubJSON.text)
                state.logRows.append(Self.logRow(entry, keyText: keyText, rowText: rowText))
                state.setHead(head, for: tableKey)
            }
            if var record = decision.conflict {
                conflictID = state.nextConflictID
                record.id = state.nextConflictID
                state.nextConflictID += 1
                state.conflictRows.append(Self.conflictRow(record, keyText: keyText))
                state.records[record.id ?? 0] = record
                outcome.conflicts[
                    Triple(a: change.table, b: policy.name, c: record.status.rawValue + "_" + record.winner.rawValue),
                    default: 0] += 1
            }
            let verdict = decision.verdict(seq: seq, conflictID: conflictID)
            var mergedRow: JSONObject?
            if case .merged(_, let row) = verdict.outcome { mergedRow = row }
            let stored = StoredDecision(
                status: verdict.status, seq: seq, conflictID: conflictID, row: mergedRow, tableKey: tableKey)
            state.decisions[change.id] = stored
            state.decisionRows.append([
                .text(change.id), .text(change.table), .text(keyText), .text(verdict.status),
                seq.map(PostgresValue.int64) ?? .null, conflictID.map(PostgresValue.int64) ?? .null,
                mergedRow.map { .text(HubJSON.text($0)) } ?? .null,
            ])
            outcome.ingested[Pair(a: region, b: verdict.status), default: 0] += 1
            verdicts.append(verdict)
        }
        return verdicts
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
        let keyText = HubJSON.text(record.key)
        let tableKey = TableKey(table: record.table, key: keyText)
        let resolution: ManualResolution
        do {
            resolution = try ConflictResolver.resolveManually(
                record: record, head: state.heads[tableKey], pick: pick, seq: state.nextSeq, hlc: nowMicros)
        } catch {
            return .failed(HubError(code: .invalidRequest, message: error.message, key: error.field))
        }
        state.nextSeq += 1
        let rowText = resolution.entry.row.map(HubJSON.text)
        state.logRows.append(Self.logRow(resolution.entry, keyText: keyText, rowText: rowText))
        state.setHead(resolution.head, for: tableKey)
        state.records[conflictID] = resolution.record
        state.resolutions.append(
            (conflictID, resolution.record.winner.rawValue, HubJSON.text(pick.json), resolution.entry.seq, actor))
        return .resolved(Sequencer.ResolveOutcome(record: resolution.record, entry: resolution.entry))
    }

    /// Writes the batch: log, decisions and conflicts by COPY, heads by one upsert over arrays.
    private func store(_ state: BatchState, connection: PostgresConnection) throws {
        if !state.logRows.isEmpty {
            try connection.copyIn(
                table: "starling_hub.log",
                columns: [
                    "seq", "origin", "change_id", "tx", "table_name", "op", "key", "row", "hlc", "kind",
                    "rewritten",
                ], rows: state.logRows, name: "sequencer.copyLog")
        }
        if !state.decisionRows.isEmpty {
            try connection.copyIn(
                table: "starling_hub.decisions",
                columns: ["change_id", "table_name", "key", "status", "seq", "conflict_id", "row"],
                rows: state.decisionRows, name: "sequencer.copyDecisions")
        }
        if !state.conflictRows.isEmpty {
            try connection.copyIn(
                table: "starling_hub.conflicts",
                columns: [
                    "id", "table_name", "key", "policy", "provisional", "status", "winner", "current_seq",
                    "current_origin", "current_op", "current_row", "incoming_id", "incoming_origin",
                    "incoming_op", "incoming_base", "incoming_row",
                ],
                rows: state.conflictRows, name: "sequencer.copyConflicts")
        }
        try storeHeads(state, connection: connection)
        for (id, winner, resolution, seq, actor) in state.resolutions {
            try connection.execute(
                "UPDATE starling_hub.conflicts SET status = 'resolved', winner = $2, resolved_at = now(), "
                    + "resolution = $3, resolution_seq = $4 WHERE id = $1",
                [.int64(id), .text(winner), .text(resolution), .int64(seq)], name: "sequencer.resolveConflict")
            try connection.execute(
                "INSERT INTO starling_hub.audit (actor, action, target, detail) "
                    + "VALUES ($1, 'resolve_conflict', $2, $3)",
                [.text(actor), .text(String(id)), .text(resolution)], name: "sequencer.audit")
        }
    }

    private func storeHeads(_ state: BatchState, connection: PostgresConnection) throws {
        guard !state.dirtyHeads.isEmpty else { return }
        var tables: [String?] = []
        var keys: [String?] = []
        var seqs: [Int64?] = []
        var origins: [String?] = []
        var hlcs: [Int64?] = []
        var rows: [String?] = []
        var ops: [String?] = []
        var foreign: [Int64?] = []
        for tableKey in state.dirtyHeads {
            guard let head = state.heads[tableKey] else { continue }
            tables.append(tableKey.table)
            keys.append(tableKey.key)
            seqs.append(head.seq)
            origins.append(head.origin)
            hlcs.append(head.hlc)
            rows.append(head.image.map(HubJSON.text))
            ops.append(head.op.rawValue)
            foreign.append(head.prevForeignSeq)
        }
        try connection.execute(
            "INSERT INTO starling_hub.heads (table_name, key, seq, origin, hlc, row, op, prev_foreign_seq) "
                + "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], "
                + "$7::text[], $8::bigint[]) ON CONFLICT (table_name, key) DO UPDATE SET seq = EXCLUDED.seq, "
                + "origin = EXCLUDED.origin, hlc = EXCLUDED.hlc, row = EXCLUDED.row, op = EXCLUDED.op, "
                + "prev_foreign_seq = EXCLUDED.prev_foreign_seq",
            [
                .textArray(tables), .textArray(keys), .int64Array(seqs), .textArray(origins), .int64Array(hlcs),
                .textArray(rows), .textArray(ops), .int64Array(foreign),
            ], name: "sequencer.upsertHeads")
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
