import Foundation
import StarlingCore
import StarlingHTTP2
import StarlingPostgres
import StarlingTestSupport
import Testing

@testable import StarlingHub

/// Eight regions push conflicting changes to the same keys at the same moment, over eight HTTP/2 connections,
/// so that the hub decides them inside one group commit; every verdict, log entry, head and conflict must be
/// what a replay of the same changes, one by one in the hub's order, through the pure `ConflictResolver` gives.
@Suite(.timeLimit(.minutes(3)))
struct GroupCommitRaceTests {
    static let policies = ["lww", "priority", "merge", "manual", "reject"]

    @Test(arguments: policies)
    func eightRegionsRacingInOneGroupCommitAreDecidedAsTheReplay(policy: String) async throws {
        // Proves concurrent conflicting pushes decided in one group commit (and then freely interleaved with
        // commits) get the replay's verdicts, seqs 1...n without a gap, one decision per change id, the replay's
        // log, heads and conflicts, and the same verdicts again when all of them are re-pushed at once.
        let table = try #require(HubHarness.defaultTables.first { $0.policy == policy }).name
        try await HubHarness.with { hub in
            let clients = try HubHarness.regionNames.map { _ in try Self.client(hub) }
            defer { for client in clients { client.shutdown() } }
            var workload = RaceWorkload(table: table)
            var replay = try Replay(hub: hub, table: table)
            var pushes: [(region: String, changes: [JSONValue])] = []

            // The keys' first versions, from r1.
            let prelude = workload.prelude()
            try Self.expectReplayed(try await hub.push("r1", prelude), prelude, &replay)
            replay.preludeHeads = replay.heads
            pushes.append(("r1", prelude))

            // Round 1: the sequencer is held inside the blocker's batch until all eight pushes are queued, so
            // the eight are decided in one transaction; then r2's push again, as an agent retries after a timeout
            // while its first attempt still waits, queued last of the same batch.
            let blocker = [workload.marker("r1", round: 0, index: 0)]
            let round1 = HubHarness.regionNames.enumerated().map { index, region in
                (region, workload.racingPush(region, index: index, round: 1, seen: replay.preludeHeads))
            }
            let (blockedPush, racedPushes) = try await SequencerGate.holding(hub.database.url) {
                let blocked = Task { try await hub.push("r1", blocker) }
                try await SequencerGate.waitUntilBlocked(hub)
                #expect(SequencerGate.queued(hub).items == 0)
                let raced = Task { try await Self.pushAll(round1, hub: hub, clients: clients) }
                let changes = round1.reduce(0) { $0 + $1.1.count }
                try await SequencerGate.waitUntilQueued(hub, changes: changes)
                #expect(SequencerGate.queued(hub).items == 8)
                let retry = Task { try await hub.push("r2", round1[1].1, client: clients[1]) }
                try await SequencerGate.waitUntilQueued(hub, changes: changes + round1[1].1.count)
                return (blocked, (raced, retry))
            }
            let blocked = try await blockedPush.value
            let raced = try await racedPushes.0.value
            let retried = try await racedPushes.1.value
            try Self.expectReplayed(blocked, blocker, &replay)
            pushes.append(("r1", blocker))
            let transactions = try await Self.transactions(hub, ids: round1.flatMap { Self.ids($0.1) })
            #expect(transactions.count == 1, "round 1 was decided in \(transactions.count) transactions")
            try Self.expectReplayed(raced, round1, &replay)
            try Self.expectReplayed(retried, round1[1].1, &replay)  // the stored verdicts, winners as of then
            pushes += round1

            // Round 2, freely: the same keys again; even regions saw round 1, odd ones still only the prelude.
            let round2 = HubHarness.regionNames.enumerated().map { index, region in
                (
                    region,
                    workload.racingPush(
                        region, index: index, round: 2, seen: index % 2 == 0 ? replay.heads : replay.preludeHeads)
                )
            }
            let raced2 = try await Self.pushAll(round2, hub: hub, clients: clients)
            let transactions2 = try await Self.transactions(hub, ids: round2.flatMap { Self.ids($0.1) })
            print("GroupCommitRaceTests[\(policy)]: free round 2 took \(transactions2.count) group commits")
            try Self.expectReplayed(raced2, round2, &replay)
            pushes += round2

            // Round 3: resolutions in the same group commit as pushes on their key, in a known queue order.
            pushes += try await Self.resolutionsRacePushes(hub, &workload, &replay)

            try await Self.expectStored(hub, replay: replay, pushedIDs: pushes.flatMap { Self.ids($0.changes) })
            #expect(replay.conflictCount >= 8, "the race produced only \(replay.conflictCount) conflicts")

            // Every push again, all at once: the stored verdicts (a rejected one with the current head), and
            // nothing stored twice.
            let before = try await hub.counts()
            let again = try await Self.pushAll(pushes.map { ($0.region, $0.changes) }, hub: hub, clients: clients)
            for ((_, changes), response) in zip(pushes, again) {
                #expect(response.status == 200)
                for (change, result) in zip(changes, response.json["results"]?.arrayValue ?? []) {
                    let id = try #require(change["id"]?.stringValue)
                    let expected = try #require(replay.verdicts[id])
                    let key = try #require(change["key"]?["id"]?.int64Value)
                    #expect(try Verdict(json: result) == expected.withCurrentWinner(replay.heads[key]), "\(id)")
                }
            }
            #expect(try await hub.counts() == before)
        }
    }

    /// Queues, while the sequencer is held: a push of r2 on key 1 (seen: the prelude), the resolution of the
    /// key's first conflict (`incoming`), a second resolution of it (`current`, must fail 409
    /// already_resolved), and a push of r3 on key 1 that saw the head before the resolution. The four items
    /// after the blocker commit in one transaction; the replay decides them in queue order. Returns the pushes.
    static func resolutionsRacePushes(
        _ hub: HubHarness, _ workload: inout RaceWorkload, _ replay: inout Replay
    ) async throws -> [(region: String, changes: [JSONValue])] {
        let conflict = try #require(replay.firstConflict(onKey: 1))
        let blocker = [workload.marker("r1", round: 3, index: 0)]
        let before = [workload.update("r2", key: 1, seen: replay.preludeHeads[1], set: ["a": 301], hlc: 9000)]
        let after = [workload.update("r3", key: 1, seen: replay.heads[1], set: ["b": 302], hlc: 9001)]
        let resolvePath = "/v1/conflicts/\(conflict)/resolve"
        let tasks = try await SequencerGate.holding(hub.database.url) {
            let blocked = Task { try await hub.push("r1", blocker) }
            try await SequencerGate.waitUntilBlocked(hub)
            let first = Task { try await hub.push("r2", before) }
            try await SequencerGate.waitUntilQueued(hub, changes: 1)
            let resolved = Task { try await hub.admin("POST", resolvePath, body: ["pick": "incoming"]) }
            try await SequencerGate.waitUntilQueued(hub, changes: 2)
            let again = Task { try await hub.admin("POST", resolvePath, body: ["pick": "current"]) }
            try await SequencerGate.waitUntilQueued(hub, changes: 3)
            let last = Task { try await hub.push("r3", after) }
            try await SequencerGate.waitUntilQueued(hub, changes: 4)
            return (blocked, first, resolved, again, last)
        }
        try expectReplayed(try await tasks.0.value, blocker, &replay)
        try expectReplayed(try await tasks.1.value, before, &replay)
        let resolved = try await tasks.2.value
        #expect(resolved.status == 200, "\(resolved.json)")
        let entry = try LogEntry(json: try #require(resolved.json["entry"]))
        #expect(try replay.resolve(conflict, pick: .incoming, hlc: entry.hlc) == entry)
        let record = resolved.json["conflict"]
        #expect(record?["status"] == "resolved" && record?["winner"] == "incoming", "\(resolved.json)")
        let again = try await tasks.3.value
        #expect(again.status == 409 && again.json["error"]?["code"] == "already_resolved", "\(again.json)")
        try expectReplayed(try await tasks.4.value, after, &replay)
        let ids = ids(before + after) + ["\(LogEntry.hubOrigin):\(entry.seq)"]
        let transactions = try await transactions(hub, ids: ids)
        #expect(transactions.count == 1, "round 3 was decided in \(transactions.count) transactions")
        return [("r1", blocker), ("r2", before), ("r3", after)]
    }

    // MARK: - Pushing

    static func client(_ hub: HubHarness) throws -> HTTP2Client {
        try HTTP2Client(
            configuration: HTTP2ClientConfiguration(baseURL: "http://127.0.0.1:\(hub.hub.localAddress?.port ?? 0)"))
    }

    /// Sends every push at once, each region on its own connection (`clients` in region order); answers in the
    /// pushes' order.
    static func pushAll(
        _ pushes: [(String, [JSONValue])], hub: HubHarness, clients: [HTTP2Client]
    ) async throws -> [(status: Int, json: JSONValue)] {
        let clientFor = pushes.map { clients[HubHarness.regionNames.firstIndex(of: $0.0) ?? 0] }
        return try await withThrowingTaskGroup(of: (Int, (status: Int, json: JSONValue)).self) { group in
            for (index, (region, changes)) in pushes.enumerated() {
                group.addTask { (index, try await hub.push(region, changes, client: clientFor[index])) }
            }
            var answers = [(status: Int, json: JSONValue)?](repeating: nil, count: pushes.count)
            for try await (index, answer) in group { answers[index] = answer }
            return answers.compactMap { $0 }
        }
    }

    static func ids(_ changes: [JSONValue]) -> [String] {
        changes.compactMap { $0["id"]?.stringValue }
    }

    // MARK: - Replay

    /// Checks one push's answer against the replay, in order.
    static func expectReplayed(
        _ response: (status: Int, json: JSONValue), _ changes: [JSONValue], _ replay: inout Replay
    ) throws {
        #expect(response.status == 200, "\(response.json)")
        let results = try #require(response.json["results"]?.arrayValue)
        #expect(results.count == changes.count)
        for (change, result) in zip(changes, results) {
            let expected = try replay.decide(change)
            #expect(try Verdict(json: result) == expected, "\(change["id"] ?? .null)")
        }
    }

    /// Checks concurrent pushes: each push's changes were decided together (their first change, a marker on a
    /// key of its own, is always accepted), so the order of the markers' seqs is the order the hub took the
    /// pushes in; the replay decides them in that order.
    static func expectReplayed(
        _ responses: [(status: Int, json: JSONValue)], _ pushes: [(String, [JSONValue])], _ replay: inout Replay
    ) throws {
        var order: [(seq: Int64, index: Int)] = []
        for (index, response) in responses.enumerated() {
            #expect(response.status == 200, "\(pushes[index].0): \(response.json)")
            let marker = try #require(response.json["results"]?[0], "\(pushes[index].0): \(response.json)")
            #expect(marker["status"] == "accepted", "marker of \(pushes[index].0): \(marker)")
            order.append((try #require(marker["seq"]?.int64Value), index))
        }
        for (_, index) in order.sorted(by: { $0.seq < $1.seq }) {
            try expectReplayed(responses[index], pushes[index].1, &replay)
        }
    }

    // MARK: - What the hub stored

    /// The distinct transactions (xmin) that wrote the log rows and rejections of `ids`.
    static func transactions(_ hub: HubHarness, ids: [String]) async throws -> Set<String> {
        try await query(hub) { connection in
            let rows = try connection.query(
                "SELECT xmin::text FROM starling_hub.log WHERE change_id = ANY($1::text[]) UNION "
                    + "SELECT xmin::text FROM starling_hub.decisions WHERE change_id = ANY($1::text[])",
                [.textArray(ids)])
            return Set(try rows.map { try $0.string(0) })
        }
    }

    static func query<T: Sendable>(
        _ hub: HubHarness, _ body: @escaping @Sendable (PostgresConnection) throws -> T
    ) async throws -> T {
        let url = hub.database.url
        return try await Task.detached {
            let connection = try PostgresConnection.connect(url: url)
            defer { connection.close() }
            return try body(connection)
        }.value
    }

    /// The log, heads, conflicts and rejections in the database are the replay's, the log's seqs are 1...n, and
    /// every pushed change id has exactly one decision: one log entry (accepted, merged) or one rejection.
    static func expectStored(_ hub: HubHarness, replay: Replay, pushedIDs: [String]) async throws {
        let stored = try await query(hub) { connection in try StoredState(connection) }
        #expect(stored.log.map(\.seq) == Array(1...Int64(stored.log.count)), "log seqs have a gap")
        #expect(hub.hub.head == Int64(stored.log.count))
        #expect(stored.log == replay.log)
        #expect(stored.heads == replay.heads)
        #expect(stored.conflicts.map(\.id) == Array(1...Int64(stored.conflicts.count)))
        #expect(stored.conflicts == replay.conflicts)
        #expect(stored.rejections == replay.rejections)
        var decisions: [String: Int] = [:]
        for entry in stored.log where entry.kind != .resolution { decisions[entry.id, default: 0] += 1 }
        for id in stored.rejections.keys { decisions[id, default: 0] += 1 }
        #expect(Set(decisions.keys) == Set(pushedIDs))
        #expect(decisions.values.allSatisfy { $0 == 1 }, "\(decisions.filter { $0.value != 1 })")
    }
}

/// The race's changes on one table, built as an agent would write them: keys 1–3 exist (from the prelude),
/// key 4 does not; a region's `base` is the seq of the head it saw, its `before` that head's image.
///
/// Per push: a marker insert on a key of the region's own (always accepted: it orders the pushes), an update of
/// key 1 (and, for every third region, a second update of it in the same push: a region racing with itself), an
/// update of key 2 changing overlapping column sets (merges), a delete of key 3 by two regions and an update by
/// the others (delete-vs-update), an insert of key 4 by all (insert-vs-insert). HLCs tie in groups of two, so
/// priorities and names break ties.
struct RaceWorkload {
    let table: String
    private var nextLocalID: [String: Int] = [:]

    init(table: String) {
        self.table = table
    }

    private mutating func localID(_ region: String) -> Int {
        let id = (nextLocalID[region] ?? 0) + 1
        nextLocalID[region] = id
        return id
    }

    mutating func prelude() -> [JSONValue] {
        (1...3).map { key in
            Changes.insert(
                "r1", localID("r1"), table: table, id: Int64(key), row: ["a": 0, "b": 0, "c": .integer(Int64(key))])
        }
    }

    mutating func marker(_ region: String, round: Int, index: Int) -> JSONValue {
        Changes.insert(
            region, localID(region), table: table, id: Int64(1000 + round * 10 + index), row: ["a": 1, "b": 1, "c": 1],
            hlc: 500)
    }

    /// One write of `key` by `region` that saw `seen` (see ``write``).
    mutating func update(_ region: String, key: Int64, seen: Head?, set: JSONObject, hlc: Int64) -> JSONValue {
        write(region, key: key, seen: seen, set: set, hlc: hlc)
    }

    mutating func racingPush(_ region: String, index: Int, round: Int, seen: [Int64: Head]) -> [JSONValue] {
        let hlc = Int64(5000 + round * 1000 + (index / 2) * 3 % 7)
        let value = { (column: Int) in JSONValue.integer(Int64(round * 100 + index * 10 + column)) }
        var changes = [marker(region, round: round, index: index)]
        var first: JSONObject = ["a": value(1)]
        if index % 3 == 0 { first["b"] = value(2) }
        changes.append(write(region, key: 1, seen: seen[1], set: first, hlc: hlc))
        if index % 3 == 0 {
            // The same region again, before any verdict: same base, its own first write as `before`.
            var mine = seen[1]
            mine?.image?.merge(first) { $1 }
            changes.append(
                write(region, key: 1, seen: mine, base: seen[1]?.seq ?? 0, set: ["c": value(3)], hlc: hlc + 1))
        }
        var columns: JSONObject = index % 2 == 0 ? ["a": value(1)] : ["b": value(2)]
        if index % 4 == 0 { columns["c"] = value(3) }
        changes.append(write(region, key: 2, seen: seen[2], set: columns, hlc: hlc))
        changes.append(
            write(region, key: 3, seen: seen[3], set: index == 2 || index == 5 ? nil : ["b": value(2)], hlc: hlc))
        let all: JSONObject = ["a": value(1), "b": value(2), "c": value(3)]
        changes.append(write(region, key: 4, seen: seen[4], set: all, hlc: hlc))
        return changes
    }

    /// A write of `key` by `region` that saw `seen`: an insert when it saw no row, else an update setting `set`
    /// (nil: a delete).
    private mutating func write(
        _ region: String, key: Int64, seen: Head?, base: Int64? = nil, set: JSONObject?, hlc: Int64
    ) -> JSONValue {
        let n = localID(region)
        let base = base ?? seen?.seq ?? 0
        guard let before = seen?.image else {
            var row: JSONObject = ["a": 0, "b": 0, "c": 0]
            row.merge(set ?? [:]) { $1 }
            row["id"] = nil
            return Changes.insert(region, n, table: table, id: key, row: row, base: base, hlc: hlc)
        }
        guard let set else {
            return Changes.delete(region, n, table: table, id: key, before: before, base: base, hlc: hlc)
        }
        return Changes.update(
            region, n, table: table, id: key, before: before, after: before.merging(set) { $1 }, base: base, hlc: hlc)
    }
}

/// The hub as a list of pure decisions: heads, log, conflicts and rejections built by `ConflictResolver` and
/// `Decision` alone, one change at a time in the hub's order.
struct Replay {
    let policy: ConflictPolicy
    let priorities: RegionPriorities
    var heads: [Int64: Head] = [:]
    /// The heads after the prelude (what a region that applied nothing since saw).
    var preludeHeads: [Int64: Head] = [:]
    var log: [LogEntry] = []
    var conflicts: [StoredState.Conflict] = []
    /// Rejected change id → conflict id.
    var rejections: [String: Int64] = [:]
    var verdicts: [String: Verdict] = [:]
    /// Conflict id → the record as the resolver made it (and a resolution changed it).
    var records: [Int64: ConflictRecord] = [:]
    var conflictCount: Int { conflicts.count }

    func firstConflict(onKey key: Int64) -> Int64? {
        records.filter { $0.value.key["id"]?.int64Value == key }.keys.min()
    }

    /// A manual resolution at the next seq with the hub's clock `hlc`: the entry it appends.
    mutating func resolve(_ id: Int64, pick: ManualPick, hlc: Int64) throws -> LogEntry {
        let record = try #require(records[id])
        let key = try #require(record.key["id"]?.int64Value)
        let resolution = try ConflictResolver.resolveManually(
            record: record, head: heads[key], pick: pick, seq: Int64(log.count + 1), hlc: hlc)
        log.append(resolution.entry)
        heads[key] = resolution.head
        records[id] = resolution.record
        conflicts[Int(id) - 1] = StoredState.Conflict(id: id, record: resolution.record)
        return resolution.entry
    }

    init(hub: HubHarness, table: String) throws {
        // Independent of the hub's settings: the policy and priorities HubHarness configured.
        policy = try ConflictPolicy(name: try #require(HubHarness.defaultTables.first { $0.name == table }).policy)
        priorities = RegionPriorities(
            Dictionary(uniqueKeysWithValues: HubHarness.regionNames.enumerated().map { ($1, 100 - $0 * 10) }))
    }

    /// The verdict of the next change; a change decided before gets its stored verdict with the current head
    /// as a rejected change's winner (DESIGN.md step 1) and changes nothing.
    mutating func decide(_ json: JSONValue) throws -> Verdict {
        let change = try Change(json: json)
        let key = try #require(change.key["id"]?.int64Value)
        if let stored = verdicts[change.id] { return stored.withCurrentWinner(heads[key]) }
        let decision = ConflictResolver.decide(
            change: change, head: heads[key], policy: policy, priorities: priorities)
        let seq = Int64(log.count + 1)
        var entrySeq: Int64?
        if let entry = decision.logEntry(seq: seq), let head = decision.newHead(seq: seq) {
            log.append(entry)
            heads[key] = head
            entrySeq = seq
        }
        var conflictID: Int64?
        if let record = decision.conflict {
            conflictID = Int64(conflicts.count + 1)
            conflicts.append(StoredState.Conflict(id: conflictID ?? 0, record: record))
            records[conflictID ?? 0] = record
            if entrySeq == nil { rejections[change.id] = conflictID }
        }
        let verdict = decision.verdict(seq: entrySeq, conflictID: conflictID)
        verdicts[change.id] = verdict
        return verdict
    }
}

/// The hub's tables, read back: log entries, heads by key id, conflicts and rejections.
struct StoredState: Sendable {
    /// The parts of a conflict row the replay predicts.
    struct Conflict: Sendable, Hashable {
        var id: Int64
        var policy: String
        var status: String
        var winner: String
        var current: ConflictRecord.Current
        var incoming: ConflictRecord.Incoming

        init(id: Int64, record: ConflictRecord) {
            self.id = id
            policy = record.policy.name
            status = record.status.rawValue
            winner = record.winner.rawValue
            current = record.current
            incoming = record.incoming
        }

        init(_ row: PostgresRow) throws {
            id = try row.int64("id")
            policy = try row.string("policy")
            status = try row.string("status")
            winner = try row.string("winner")
            current = ConflictRecord.Current(
                seq: try row.int64("current_seq"), origin: try row.string("current_origin"),
                op: try #require(ChangeOperation(rawValue: try row.string("current_op"))),
                row: try StoredState.object(row.optionalString("current_row")))
            incoming = ConflictRecord.Incoming(
                id: try row.string("incoming_id"), origin: try row.string("incoming_origin"),
                op: try #require(ChangeOperation(rawValue: try row.string("incoming_op"))),
                base: try row.int64("incoming_base"), row: try StoredState.object(row.optionalString("incoming_row")))
        }
    }

    var log: [LogEntry] = []
    var heads: [Int64: Head] = [:]
    var conflicts: [Conflict] = []
    var rejections: [String: Int64] = [:]

    init(_ connection: PostgresConnection) throws {
        for row in try connection.query(
            "SELECT seq, origin, change_id, tx, table_name, op, key, row, hlc, kind, rewritten FROM starling_hub.log "
                + "ORDER BY seq")
        {
            log.append(
                LogEntry(
                    seq: try row.int64("seq"), origin: try row.string("origin"), id: try row.string("change_id"),
                    tx: try row.string("tx"), table: try row.string("table_name"),
                    op: try #require(ChangeOperation(rawValue: try row.string("op"))),
                    key: try #require(try Self.object(row.string("key"))),
                    row: try Self.object(row.optionalString("row")),
                    hlc: try row.int64("hlc"), kind: try #require(LogEntryKind(rawValue: try row.string("kind"))),
                    rewritten: try row.bool("rewritten")))
        }
        for row in try connection.query(
            "SELECT key, seq, origin, hlc, row, op, prev_foreign_seq FROM starling_hub.heads")
        {
            let key = try #require(try Self.object(row.string("key"))?["id"]?.int64Value)
            heads[key] = Head(
                seq: try row.int64("seq"), origin: try row.string("origin"), hlc: try row.int64("hlc"),
                image: try Self.object(row.optionalString("row")), prevForeignSeq: try row.int64("prev_foreign_seq"),
                op: ChangeOperation(rawValue: try row.string("op")))
        }
        conflicts = try connection.query(
            "SELECT \(SequencerWriter.conflictColumns.map(\.name).joined(separator: ", ")) FROM starling_hub.conflicts ORDER BY id"
        ).map { try Conflict($0) }
        for row in try connection.query("SELECT change_id, conflict_id FROM starling_hub.decisions") {
            rejections[try row.string(0)] = try row.int64(1)
        }
    }

    static func object(_ text: String?) throws -> JSONObject? {
        guard let text else { return nil }
        let object = try #require(try JSONValue(parsing: text).objectValue, "not a JSON object: \(text)")
        return object
    }
}
