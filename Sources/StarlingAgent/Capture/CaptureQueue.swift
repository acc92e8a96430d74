import StarlingCore
import StarlingPostgres
import Synchronization

/// WAL capture's changes between the decoder and the hub: decoded in commit order, pushed in that order, gone
/// once their verdicts are handled (the outbox of trigger capture, in memory: the slot keeps the WAL until
/// the position is confirmed, so nothing here needs to be durable). Also what the apply asks — which keys have
/// a local change waiting for its verdict — and where the slot may confirm. Shared by the decoder thread, the
/// push task and the apply (a `Mutex`).
final class CaptureQueue: Sendable {
    /// One decoded local change.
    struct Captured: Sendable {
        var change: Change
        var position: StreamPosition
        var key: TableKey
        /// The commit's end: the slot may confirm it once this transaction's verdicts are handled.
        var commitEnd: LSN
        /// An agent transaction wrote the key after this change and before its verdict (``CaptureLedger``): an
        /// `accepted` verdict writes this change's image again.
        var isOverwritten = false
        var approximateBytes: Int
    }

    /// A schema change made in this region (an `ALTER TABLE` the event trigger announced in the WAL): pushed alone,
    /// before the row changes of its transaction (README "Schema changes").
    struct CapturedSchema: Sendable {
        /// A change id from its WAL position, stable when decoded again.
        var id: String
        var table: String
        var statement: String
        /// The table's columns as the hub had them before (the recorded signature, or the previous change's).
        var previous: [SchemaChange.CatalogColumn]
        var columns: [SchemaChange.CatalogColumn]
        var position: StreamPosition
        var commitEnd: LSN

        /// The change as the hub takes it.
        var change: SchemaChange {
            SchemaChange(table: table, actions: SchemaChange.actions(from: previous, to: columns), statement: statement)
        }
    }

    /// A ledger copy taken at a transaction boundary, saved and confirmed once every change before it is handled.
    struct Checkpoint: Sendable {
        var resume: LSN
        var ledger: CaptureLedger
        var switching: Bool
        /// The decoder's clock there.
        var hlc: Int64
        /// The newest change decoded before it (nil: none since the queue started).
        var through: StreamPosition?
    }

    /// A queued item: one change, or a whole transaction too large for memory (``SpilledTransaction``).
    enum Entry: Sendable {
        case change(Captured)
        case spilled(Spilled)
        case schema(CapturedSchema)
        /// Handled, before `head` (dropped when the array is compacted; a spilled file is freed at once).
        case handled

        var count: Int {
            switch self {
            case .change: 1
            case .spilled(let spilled): spilled.transaction.count
            case .schema: 1
            case .handled: 0
            }
        }
    }

    /// A spilled transaction in the queue, with what happened to it since it was decoded.
    struct Spilled: Sendable {
        let transaction: SpilledTransaction
        /// Positions of its changes an agent transaction overwrote (``markOverwritten(_:)``).
        var overwritten: Set<StreamPosition> = []
        /// A rewind lowered the bases to at most this (``rewind(to:)``); applied as its changes are read back.
        var baseCeiling: Int64?
    }

    /// What ``nextBatch(maxCount:maxBytes:)`` hands the push.
    enum Batch: Sendable {
        /// Whole transactions, in order.
        case changes([Captured])
        /// One spilled transaction, alone.
        case spilled(Spilled)
        /// One schema change, alone.
        case schema(CapturedSchema)
    }

    private struct State {
        var entries: [Entry] = []
        var head = 0
        /// Entries from `head` that are in a push whose verdicts are not handled yet.
        var inFlight = 0
        /// Changes in entries from `head` (``depth``).
        var queued = 0
        /// The most `queued` has been in this process (kept by ``reset()``).
        var peak = 0
        var indexByPosition: [StreamPosition: Int] = [:]
        /// The entry of each spilled transaction, by its commit LSN.
        var spilledByCommit: [UInt64: Int] = [:]
        var pendingKeys: [TableKey: Int] = [:]
        var handledThrough: StreamPosition?
        /// The database session of the verdict transactions handled since the last save (``handled(session:)``), and
        /// whether they were more than one: they commit asynchronously, so the save's synchronous commit makes them
        /// durable only on the session they committed on (``verdictsDurable(savingOn:)``).
        var verdictSession: UInt64?
        var verdictSessionsDiffer = false
        var newest: StreamPosition?
        /// Commit end of the last decoded transaction, and the server's WAL end when idle.
        var decodedThrough = LSN.invalid
        var checkpoint: Checkpoint?
        var isCheckpointWanted = true
        /// The position the slot may confirm (saved with its ledger), for the decoder to send.
        var confirmable = LSN.invalid
        /// Keys the agent's own transactions wrote, with a WAL position at or after their commit, until the
        /// decoder has passed it (``awaitOwnWrites(of:)``): the writes of `ownWriteLog` before `ownWritesMapped`.
        var ownWrites: [TableKey: LSN] = [:]
        /// Every ``wrote(_:at:)`` call in order, from `ownWriteLogHead` on: what ``pruneOwnWrites()`` drops once
        /// the decoder passes it.
        var ownWriteLog: [(lsn: LSN, keys: [TableKey])] = []
        var ownWriteLogHead = 0
        /// How far `ownWriteLog` is in `ownWrites` (``mapOwnWrites()``): a write goes into the map only when someone
        /// asks, since most are passed by the decoder before anyone does. Putting every applied key into the map as
        /// it was written was 6 % of an agent's CPU in W1 R=8 (2026-12-06), where nobody asks once the origins'
        /// writes are pushed.
        var ownWritesMapped = 0
        /// Versions verdicts gave keys (``recordVersions(_:)``), kept while above the pull cursor.
        var versions: [TableKey: Int64] = [:]
        var versionsPrunedAt = 0
        /// The apply waits until the decoder has passed this position (``isCaughtUp``); nil: not set yet.
        var catchUp: LSN?
        /// The decoder passed `catchUp` once in this process (kept by ``reset()``).
        var hasCaughtUp = false
        /// How far the decoder had read before the last ``reset()``: applies wait until it has read that far again
        /// (``isCaughtUp``), so every local change it had decoded is pending again before an apply asks which keys
        /// are (kept by ``reset()``).
        var redecodeThrough = LSN.invalid
        /// The positions tasks wait for the decoder to pass, one per waiting task (``wantDecoder(through:)``).
        var decoderWaiters: [LSN] = []

        /// Drops the own writes the decoder has passed, oldest first: each key once, as its write is passed (a key
        /// written again later keeps its newer position). Filtering the whole map instead, when it grew past a size,
        /// copied it on every call once the decoder lagged that many keys behind (W1 R=8: a fifth of an agent's CPU).
        mutating func pruneOwnWrites() {
            while ownWriteLogHead < ownWriteLog.count, ownWriteLog[ownWriteLogHead].lsn <= decodedThrough {
                if ownWriteLogHead < ownWritesMapped {
                    let (lsn, keys) = ownWriteLog[ownWriteLogHead]
                    for key in keys where ownWrites[key] == lsn { ownWrites[key] = nil }
                }
                ownWriteLogHead += 1
            }
            ownWritesMapped = max(ownWritesMapped, ownWriteLogHead)
            if ownWriteLogHead > 256 && ownWriteLogHead * 2 > ownWriteLog.count {
                ownWriteLog.removeFirst(ownWriteLogHead)
                ownWritesMapped -= ownWriteLogHead
                ownWriteLogHead = 0
            }
        }

        /// Puts the own writes the decoder has not passed into `ownWrites` (each key at its newest write).
        mutating func mapOwnWrites() {
            pruneOwnWrites()
            while ownWritesMapped < ownWriteLog.count {
                let (lsn, keys) = ownWriteLog[ownWritesMapped]
                for key in keys { ownWrites[key] = lsn }
                ownWritesMapped += 1
            }
        }
    }

    private let state = Mutex(State())
    /// Signalled when changes arrive (the push task waits on it).
    let arrived: WakeUp

    init(arrived: WakeUp) {
        self.arrived = arrived
    }

    /// Forgets everything (the decoder starts again from the last confirmed position) but the catch-up target, and
    /// the versions above the cursor once the decoder has caught up in this process: from then on every verdict
    /// transaction recorded its versions here as it committed, so a restart of the agent's tasks (a decoder
    /// failure) needs no new catch-up for them. The target stays the process's first: every verdict since it
    /// recorded its versions here too, so a later one would only make the decoder read further past the queue's
    /// bound.
    ///
    /// The pending keys are another matter: the changes decoded before the reset whose verdicts were not handled
    /// (a push whose answer was lost) are pending again only once decoded again, and an apply that wrote such a
    /// key before would overwrite the change with an entry the hub sequenced after it; the accepted verdict then
    /// wrote the change's older image back over it, and the region kept it (CI, 2026-12-07: a fault run's region
    /// whose Postgres restarted held its own change of a key the hub had seen changed 11 times since). So applies
    /// wait until the decoder has read as far as before the reset (``isCaughtUp``).
    func reset() {
        state.withLock { state in
            let (versions, caughtUp, target, waiters, peak) =
                (state.versions, state.hasCaughtUp, state.catchUp, state.decoderWaiters, state.peak)
            let redecode = max(state.decodedThrough, state.redecodeThrough)
            state = State()
            state.decoderWaiters = waiters
            state.catchUp = target
            state.peak = peak
            state.redecodeThrough = redecode
            if caughtUp {
                state.versions = versions
                state.hasCaughtUp = true
            }
        }
    }

    // MARK: - Decoder side

    /// Appends one transaction's changes (in order) decoded up to `commitEnd`.
    func append(_ changes: [Captured], commitEnd: LSN) {
        state.withLock { state in
            for change in changes {
                state.indexByPosition[change.position] = state.entries.count
                state.entries.append(.change(change))
                state.pendingKeys[change.key, default: 0] += 1
                state.newest = change.position
            }
            state.queued += changes.count
            state.peak = max(state.peak, state.queued)
            state.decodedThrough = max(state.decodedThrough, commitEnd)
        }
        if !changes.isEmpty { arrived.signal() }
    }

    /// Appends a transaction's schema changes (before its row changes).
    func append(schemaChanges: [CapturedSchema]) {
        guard !schemaChanges.isEmpty else { return }
        state.withLock { state in
            for schema in schemaChanges {
                state.entries.append(.schema(schema))
                state.newest = schema.position
            }
            state.queued += schemaChanges.count
            state.peak = max(state.peak, state.queued)
        }
        arrived.signal()
    }

    /// The tables of the schema changes made here that the hub has not answered yet (queued or in flight).
    var schemaTablesAwaitingAnswer: Set<String> {
        state.withLock { state in
            var tables = Set<String>()
            for index in state.head..<state.entries.count {
                if case .schema(let schema) = state.entries[index] { tables.insert(schema.table) }
            }
            return tables
        }
    }

    /// Appends one spilled transaction: each of its keys counts once as pending.
    func append(spilled transaction: SpilledTransaction) {
        state.withLock { state in
            state.spilledByCommit[transaction.commitLSN] = state.entries.count
            state.entries.append(.spilled(Spilled(transaction: transaction)))
            for key in transaction.lastOrdinal.keys { state.pendingKeys[key, default: 0] += 1 }
            state.newest = transaction.last
            state.queued += transaction.count
            state.peak = max(state.peak, state.queued)
            state.decodedThrough = max(state.decodedThrough, transaction.commitEnd)
        }
        arrived.signal()
    }

    /// The region rewound to `point` (``CaptureLedger/Marker/rewind``): changes not yet handled lower their
    /// bases to it, and versions above it are forgotten (they named log history the hub lost).
    func rewind(to point: Int64) {
        state.withLock { state in
            for index in state.head..<state.entries.count {
                switch state.entries[index] {
                case .change(var captured):
                    captured.change = captured.change.rebased(atMost: point)
                    state.entries[index] = .change(captured)
                case .spilled(var spilled):
                    spilled.baseCeiling = min(spilled.baseCeiling ?? point, point)
                    state.entries[index] = .spilled(spilled)
                case .schema, .handled:
                    break
                }
            }
            state.versions = state.versions.filter { $0.value <= point }
        }
    }

    /// What a rewind must know (AgentStore+Rewind.swift): the keys with a local change waiting for its verdict,
    /// and the versions above the cursor.
    func rewindState() -> AgentStore.RewindWAL {
        state.withLock { state in
            AgentStore.RewindWAL(pendingKeys: Set(state.pendingKeys.keys), versions: state.versions)
        }
    }

    /// Marks changes an agent transaction overwrote.
    func markOverwritten(_ positions: [StreamPosition]) {
        guard !positions.isEmpty else { return }
        state.withLock { state in
            for position in positions {
                if let index = state.indexByPosition[position], index >= state.head,
                    case .change(var captured) = state.entries[index]
                {
                    captured.isOverwritten = true
                    state.entries[index] = .change(captured)
                } else if let index = state.spilledByCommit[position.commitLSN], index >= state.head,
                    case .spilled(var spilled) = state.entries[index]
                {
                    spilled.overwritten.insert(position)
                    state.entries[index] = .spilled(spilled)
                }
            }
        }
    }

    /// The decoder has seen everything before `lsn` (a commit's end, or the server's WAL end when idle).
    func decoded(through lsn: LSN) {
        state.withLock { $0.decodedThrough = max($0.decodedThrough, lsn) }
    }

    var decodedThrough: LSN { state.withLock { $0.decodedThrough } }

    /// True when the decoder should hand in a checkpoint at the next transaction boundary.
    var wantsCheckpoint: Bool { state.withLock { $0.isCheckpointWanted && $0.checkpoint == nil } }

    /// The decoder's ledger at a transaction boundary `resume` (a commit's end).
    func offer(resume: LSN, ledger: CaptureLedger, switching: Bool, hlc: Int64) {
        state.withLock { state in
            state.checkpoint = Checkpoint(
                resume: resume, ledger: ledger, switching: switching, hlc: hlc, through: state.newest)
            state.isCheckpointWanted = false
        }
    }

    /// The position the slot may confirm now.
    var confirmable: LSN { state.withLock { $0.confirmable } }

    /// The agent committed a transaction that wrote `keys`; `lsn` is at or after its commit.
    func wrote(_ keys: [TableKey], at lsn: LSN) {
        state.withLock { state in
            state.pruneOwnWrites()
            state.ownWriteLog.append((lsn, keys))
        }
    }

    /// How many keys have an own write the decoder may not have passed yet (what ``wrote(_:at:)`` keeps).
    var ownWriteCount: Int {
        state.withLock { state in
            state.mapOwnWrites()
            return state.ownWrites.count
        }
    }

    /// The position the decoder must pass before the overwritten flags of changes of `keys` are known: the
    /// newest own write of one of them not decoded yet; nil when there is none.
    func undecodedOwnWrite(of keys: some Sequence<TableKey>) -> LSN? {
        state.withLock { state in
            state.mapOwnWrites()
            var newest: LSN?
            for key in keys {
                if let lsn = state.ownWrites[key], lsn > state.decodedThrough { newest = max(newest ?? lsn, lsn) }
            }
            return newest
        }
    }

    /// Whether each change of `batch` (by position) is marked overwritten now.
    func overwritten(in batch: [Captured]) -> Set<Int> {
        state.withLock { state in
            var indexes = Set<Int>()
            for (offset, captured) in batch.enumerated() {
                if let index = state.indexByPosition[captured.position], case .change(let queued) = state.entries[index],
                    queued.isOverwritten
                {
                    indexes.insert(offset)
                }
            }
            return indexes
        }
    }

    /// The positions of a spilled transaction's changes that are marked overwritten now.
    func overwritten(in transaction: SpilledTransaction) -> Set<StreamPosition> {
        state.withLock { state in
            guard let index = state.spilledByCommit[transaction.commitLSN], case .spilled(let spilled) = state.entries[index]
            else { return [] }
            return spilled.overwritten
        }
    }

    // MARK: - Push side

    /// The next push batch: whole transactions from the oldest change not yet in flight, within the bounds
    /// (at least one transaction), or a spilled transaction alone. Nil when nothing waits or a push is in flight.
    func nextBatch(maxCount: Int, maxBytes: Int) -> Batch? {
        state.withLock { state in
            guard state.inFlight == 0, state.head < state.entries.count else { return nil }
            if case .spilled(let spilled) = state.entries[state.head] {
                state.inFlight = 1
                return .spilled(spilled)
            }
            if case .schema(let schema) = state.entries[state.head] {
                state.inFlight = 1
                return .schema(schema)
            }
            var batch: [Captured] = []
            var end = state.head
            var bytes = 0
            while end < state.entries.count, case .change(let first) = state.entries[end] {
                // One transaction: the changes sharing its commit position.
                let commit = first.position.commitLSN
                var last = end
                var txBytes = 0
                while last < state.entries.count, case .change(let captured) = state.entries[last],
                    captured.position.commitLSN == commit
                {
                    txBytes += captured.approximateBytes
                    last += 1
                }
                if end > state.head && (last - state.head > maxCount || bytes + txBytes > maxBytes) { break }
                bytes += txBytes
                for index in end..<last {
                    if case .change(let captured) = state.entries[index] { batch.append(captured) }
                }
                end = last
            }
            state.inFlight = end - state.head
            return .changes(batch)
        }
    }

    /// The push of the in-flight batch failed before its verdicts were handled: it is offered again.
    func pushFailed() {
        state.withLock { $0.inFlight = 0 }
    }

    /// The keys of the in-flight spilled `transaction` that have a local change after it (queued behind it).
    func pendingBeyond(_ transaction: SpilledTransaction) -> Set<TableKey> {
        state.withLock { state in
            Set(transaction.lastOrdinal.keys.filter { (state.pendingKeys[$0] ?? 0) > 1 })
        }
    }

    /// Keys with a local change not handled yet, beyond the in-flight batch (for verdict handling: an image for
    /// such a key would overwrite a newer local change).
    func pendingBeyondInFlight(_ keys: Set<TableKey>) -> Set<TableKey> {
        state.withLock { state in
            var counts: [TableKey: Int] = [:]
            for index in state.head..<(state.head + state.inFlight) {
                switch state.entries[index] {
                case .change(let captured):
                    if keys.contains(captured.key) { counts[captured.key, default: 0] += 1 }
                case .spilled(let spilled):
                    for key in keys where spilled.transaction.lastOrdinal[key] != nil { counts[key, default: 0] += 1 }
                case .schema, .handled:
                    break
                }
            }
            return Set(keys.filter { (state.pendingKeys[$0] ?? 0) > (counts[$0] ?? 0) })
        }
    }

    /// The in-flight batch's verdicts are handled (committed): its changes leave the queue. `session`: the database
    /// session whose transaction committed them asynchronously (nil: nothing was written, or the commit was
    /// synchronous).
    func handled(session: UInt64?) {
        state.withLock { state in
            if let session {
                if let previous = state.verdictSession, previous != session { state.verdictSessionsDiffer = true }
                state.verdictSession = session
            }
            let end = state.head + state.inFlight
            func settle(_ key: TableKey) {
                if let count = state.pendingKeys[key], count > 1 {
                    state.pendingKeys[key] = count - 1
                } else {
                    state.pendingKeys[key] = nil
                }
            }
            for index in state.head..<end {
                switch state.entries[index] {
                case .change(let captured):
                    state.indexByPosition[captured.position] = nil
                    settle(captured.key)
                    state.handledThrough = captured.position
                case .spilled(let spilled):
                    state.spilledByCommit[spilled.transaction.commitLSN] = nil
                    for key in spilled.transaction.lastOrdinal.keys { settle(key) }
                    state.handledThrough = spilled.transaction.last
                case .schema(let schema):
                    state.handledThrough = schema.position
                case .handled:
                    break
                }
                state.queued -= state.entries[index].count
                // A handled spilled transaction's file is freed with its last reference.
                state.entries[index] = .handled
            }
            state.head = end
            state.inFlight = 0
            if state.head > 4096 && state.head * 2 > state.entries.count {
                state.entries.removeFirst(state.head)
                state.indexByPosition = state.indexByPosition.mapValues { $0 - state.head }
                state.spilledByCommit = state.spilledByCommit.mapValues { $0 - state.head }
                state.head = 0
            }
        }
    }

    /// The checkpoint whose changes are all handled, if any: save it, then ``confirmed(_:)``.
    func completedCheckpoint() -> Checkpoint? {
        state.withLock { state in
            guard let checkpoint = state.checkpoint else { return nil }
            if let through = checkpoint.through {
                guard let handled = state.handledThrough, handled >= through else { return nil }
            }
            return checkpoint
        }
    }

    /// Whether a save's synchronous commit on database session `session` makes every verdict handled since the last
    /// save durable: they all committed on that session. A verdict transaction commits asynchronously; a later
    /// synchronous commit flushes it with its own WAL, but only while the server that took it runs: a crash (or an
    /// immediate stop) between them loses it, ends its session, and the save on a new session would confirm a
    /// position past changes whose verdicts are gone (a fault run, 2026-12-07: a region whose Postgres was stopped
    /// with `-m immediate` had no record of one push batch's verdicts, never pushed again). False: the agent's tasks
    /// start again from the last saved position instead (the hub answers the changes from the verdicts it stored).
    func verdictsDurable(savingOn session: UInt64) -> Bool {
        state.withLock { state in
            !state.verdictSessionsDiffer && (state.verdictSession == nil || state.verdictSession == session)
        }
    }

    /// The checkpoint at `resume` is saved: the slot may confirm it, and the decoder takes the next one. Every verdict
    /// handled before the save is durable with it.
    func confirmed(_ resume: LSN) {
        state.withLock { state in
            state.confirmable = max(state.confirmable, resume)
            state.checkpoint = nil
            state.isCheckpointWanted = true
            state.verdictSession = nil
            state.verdictSessionsDiffer = false
        }
    }

    // MARK: - Apply side

    /// The keys of `keys` with a local change waiting for its verdict.
    func pending(among keys: some Sequence<TableKey>) -> Set<TableKey> {
        pendingSnapshot(among: keys).keys
    }

    /// ``pending(among:)`` with the newest decoded position at that moment: every change decoded up to it that is
    /// still pending has its key in the set (``CaptureLedger/Marker/deferredThrough``); nil when none was decoded.
    func pendingSnapshot(among keys: some Sequence<TableKey>) -> (keys: Set<TableKey>, through: StreamPosition?) {
        state.withLock { state in
            guard !state.pendingKeys.isEmpty else { return ([], state.newest) }
            return (Set(keys.filter { state.pendingKeys[$0] != nil }), state.newest)
        }
    }

    // MARK: - Versions above the cursor

    /// Records versions verdicts gave keys: from the agent's verdict transactions as they commit, and from their
    /// markers as the decoder reads them (after a restart, the ones since the last checkpoint; the checkpoint's
    /// ledger brings the older ones). The larger version of a key wins. These are the only versions an apply
    /// needs under WAL capture: every other version a key holds is at most the cursor, and every pulled entry
    /// is above it.
    func recordVersions(_ versions: [TableKey: Int64]) {
        guard !versions.isEmpty else { return }
        state.withLock { state in
            for (key, version) in versions { state.versions[key] = max(state.versions[key] ?? 0, version) }
        }
    }

    /// The recorded versions of `keys` above `cursor`; forgets the ones at or below it once the map doubled since
    /// the last time (amortised O(1)).
    func versions(of keys: some Sequence<TableKey>, above cursor: Int64) -> [TableKey: Int64] {
        state.withLock { state in
            if state.versions.count > 2 * state.versionsPrunedAt + 1024 {
                state.versions = state.versions.filter { $0.value > cursor }
                state.versionsPrunedAt = state.versions.count
            }
            guard !state.versions.isEmpty else { return [:] }
            var found: [TableKey: Int64] = [:]
            for key in keys {
                if let version = state.versions[key], version > cursor { found[key] = version }
            }
            return found
        }
    }

    /// Sets the position the decoder must pass before applies may rely on the recorded versions, once per process
    /// (a second call keeps the first): the end of the WAL when the process starts, before any verdict of this
    /// process commits, so every marker committed before is read again (``Agent/takeCatchUpTarget()``).
    func awaitCatchUp(to lsn: LSN) {
        state.withLock { state in
            if !state.hasCaughtUp && state.catchUp == nil { state.catchUp = lsn }
        }
    }

    /// Whether a catch-up position must still be set (``awaitCatchUp(to:)``): not yet in this process.
    var needsCatchUpTarget: Bool { state.withLock { !$0.hasCaughtUp && $0.catchUp == nil } }

    /// Whether the decoder has passed the ``awaitCatchUp(to:)`` position (once in this process is enough) and, after
    /// a ``reset()``, the position it had read before.
    var isCaughtUp: Bool {
        state.withLock { state in
            if !state.hasCaughtUp, let target = state.catchUp, state.decodedThrough >= target { state.hasCaughtUp = true }
            return state.hasCaughtUp && state.decodedThrough >= state.redecodeThrough
        }
    }

    /// Changes decoded and not handled yet (the outbox depth of WAL capture), a spilled transaction's included:
    /// its keys are in memory, so it counts against `tuning.capture_queue_max_changes` like the others.
    var depth: Int { state.withLock { $0.queued } }

    /// The most changes the queue has held in this process.
    var peak: Int { state.withLock { $0.peak } }

    /// A task starts waiting for the decoder to pass `lsn`: a paused decoder reads on until it has, past the
    /// queue's bound, so a push waiting for it cannot wait on a queue only that push drains. Until `lsn` only: a
    /// waiter that polls late (a loaded machine) no longer lets the decoder read every transaction after it into the
    /// queue (CI, 2026-12-06: 3,000 queued against a bound of 1,000 while a first apply's catch-up was waited for).
    /// Ended by ``stopWantingDecoder(through:)``.
    func wantDecoder(through lsn: LSN) {
        state.withLock { $0.decoderWaiters.append(lsn) }
    }

    /// Ends one ``wantDecoder(through:)`` of `lsn`.
    func stopWantingDecoder(through lsn: LSN) {
        state.withLock { state in
            if let index = state.decoderWaiters.firstIndex(of: lsn) { state.decoderWaiters.remove(at: index) }
        }
    }

    /// Lowers the position the decoder must read again after a ``reset()`` to `end`, the end of the database's WAL
    /// now (a database restored to an earlier point has no WAL as far as the decoder read before).
    func limitRedecode(to end: LSN) {
        state.withLock { state in state.redecodeThrough = min(state.redecodeThrough, end) }
    }

    /// The position ``isCaughtUp`` waits for the decoder to pass: the ``awaitCatchUp(to:)`` one (nil before it is
    /// set) or, after a ``reset()``, the one the decoder had read before if further.
    var catchUpTarget: LSN? {
        state.withLock { state in state.catchUp.map { max($0, state.redecodeThrough) } }
    }

    /// Whether some task waits for the decoder to pass a position it has not passed (``wantDecoder(through:)``).
    var isDecoderWanted: Bool {
        state.withLock { state in state.decoderWaiters.contains { $0 > state.decodedThrough } }
    }
}
