import StarlingCore
import Testing

/// The resolver, exhaustively: every policy × incoming op × head state × HLC order × priority order × race
/// kind, each checked against the rules of DESIGN.md written out independently below.
struct ConflictResolverTests {
    enum HeadState: String, CaseIterable { case none, live, tombstone }
    enum Order: String, CaseIterable { case less, equal, greater }
    /// How the incoming change relates to the head.
    enum Race: String, CaseIterable {
        /// Foreign head, and the writer had seen it (`base == head.seq`): no conflict.
        case seenForeign
        /// Own head, `prevForeignSeq <= base < head.seq`: the region raced only with itself; no conflict.
        case selfRace
        /// Own head, `base == prevForeignSeq`: the boundary of the self race; no conflict.
        case selfAtBoundary
        /// Own head but `base < prevForeignSeq`: a foreign write came between; conflict.
        case selfStale
        /// Foreign head not seen: conflict.
        case foreign

        var isOwnHead: Bool { self == .selfRace || self == .selfAtBoundary || self == .selfStale }
    }

    struct Scenario: CustomTestStringConvertible, Sendable {
        var op: ChangeOperation
        var head: HeadState
        var hlc: Order
        var priority: Order
        var race: Race
        var testDescription: String { "\(op) onto \(head) head, hlc \(hlc), priority \(priority), \(race)" }
    }

    static let incomingRegion = "eu-west"
    static let foreignRegion = "us-east"  // sorts after eu-west: eu-west wins full ties
    static let headImage: JSONObject = ["id": 1, "a": "h", "b": "x"]
    static let headSeq: Int64 = 50
    static let headPrevForeign: Int64 = 40
    static let headHLC: Int64 = 1_000

    static let scenarios: [Scenario] = {
        var all: [Scenario] = []
        for op in ChangeOperation.allCases {
            for head in HeadState.allCases {
                for hlc in Order.allCases {
                    for priority in Order.allCases {
                        // With no head the race is moot; with its own head the region's priority equals itself.
                        let races: [Race] = head == .none ? [.foreign] : Race.allCases
                        for race in races where priority == .equal || !race.isOwnHead {
                            all.append(Scenario(op: op, head: head, hlc: hlc, priority: priority, race: race))
                        }
                    }
                }
            }
        }
        return all
    }()

    static let policies: [ConflictPolicy] = [
        .lww, .priority, .merge, .manual(provisional: .keepHead), .manual(provisional: .lww), .reject,
    ]

    static func change(for scenario: Scenario) throws -> Change {
        let hlc = headHLC + (scenario.hlc == .less ? -1 : scenario.hlc == .equal ? 0 : 1)
        let base: Int64 =
            switch scenario.race {
            case .seenForeign: headSeq
            case .selfRace: 45
            case .selfAtBoundary: headPrevForeign
            case .selfStale, .foreign: 30
            }
        let before: JSONObject = ["id": 1, "a": "a0", "b": "x"]
        let after: JSONObject = ["id": 1, "a": "a0", "b": "y"]
        return try Change(
            id: "\(incomingRegion):7", tx: "\(incomingRegion):3", table: "public.items", op: scenario.op,
            key: ["id": 1], before: scenario.op == .insert ? nil : before,
            after: scenario.op == .delete ? nil : after, base: base, hlc: hlc)
    }

    static func head(for scenario: Scenario) -> Head? {
        let origin = scenario.race.isOwnHead ? incomingRegion : foreignRegion
        switch scenario.head {
        case .none: return nil
        case .live:
            return Head(
                seq: headSeq, origin: origin, hlc: headHLC, image: headImage, prevForeignSeq: headPrevForeign,
                op: .update)
        case .tombstone:
            return Head(seq: headSeq, origin: origin, hlc: headHLC, image: nil, prevForeignSeq: headPrevForeign)
        }
    }

    static func priorities(for scenario: Scenario) -> RegionPriorities {
        let theirs = scenario.priority == .less ? 15 : scenario.priority == .equal ? 10 : 5
        return [incomingRegion: 10, foreignRegion: theirs]
    }

    // Proves detection, outcome, winner, record, new head, entry and verdict for every combination.
    @Test(arguments: policies, scenarios)
    func decide(policy: ConflictPolicy, scenario: Scenario) throws {
        let change = try Self.change(for: scenario)
        let head = Self.head(for: scenario)
        let decision = ConflictResolver.decide(
            change: change, head: head, policy: policy, priorities: Self.priorities(for: scenario))

        let expectConflict = scenario.head != .none && (scenario.race == .foreign || scenario.race == .selfStale)
        #expect(decision.isConflict == expectConflict)
        #expect(decision.previousHead == head)
        guard expectConflict, let head else {
            try expectAccepted(decision, change: change, head: head)
            #expect(decision.conflict == nil)
            return
        }

        // The rules of DESIGN.md step 3, spelled out.
        let lwwIncoming: Bool =
            switch (scenario.hlc, scenario.priority) {
            case (.greater, _): true
            case (.less, _): false
            case (.equal, .greater): true
            case (.equal, .less): false
            case (.equal, .equal): scenario.race == .foreign  // eu-west < us-east; same region keeps the head
            }
        let isMerge = policy == .merge && scenario.op == .update && scenario.head == .live
        let incomingWins: Bool =
            switch policy {
            case .lww, .merge, .manual(provisional: .lww): lwwIncoming
            case .priority: scenario.priority == .equal ? lwwIncoming : scenario.priority == .greater
            case .reject, .manual(provisional: .keepHead): false
            }
        let record = try #require(decision.conflict)
        #expect(record.status == (policy.name == "manual" ? .open : .auto))
        #expect(record.policy == policy)
        #expect(record.winner == (isMerge || incomingWins ? .incoming : .current))
        #expect(record.table == "public.items" && record.key == ["id": 1])
        #expect(record.current == .init(seq: head.seq, origin: head.origin, op: head.op, row: head.image))
        #expect(
            record.incoming
                == .init(
                    id: change.id, origin: Self.incomingRegion, op: change.op, base: change.base, row: change.after))

        if isMerge {
            try expectMerged(decision, change: change, head: head, row: ["id": 1, "a": "h", "b": "y"])
        } else if incomingWins {
            try expectAccepted(decision, change: change, head: head)
        } else {
            #expect(decision.outcome == .reject)
            #expect(decision.newHead(seq: 100) == nil)
            #expect(decision.logEntry(seq: 100) == nil)
            #expect(
                decision.verdict(seq: nil, conflictID: 9)
                    == Verdict(
                        id: change.id,
                        outcome: .rejected(conflict: 9, winner: .init(seq: 50, origin: head.origin, row: head.image))))
        }
    }

    private func expectAccepted(_ decision: Decision, change: Change, head: Head?) throws {
        #expect(
            decision.outcome
                == .accept(
                    row: change.after, isTombstone: change.op == .delete, kind: .change, rewritten: false))
        let newHead = try #require(decision.newHead(seq: 100))
        #expect(newHead.seq == 100 && newHead.origin == change.region && newHead.hlc == change.hlc)
        #expect(newHead.image == change.after && newHead.isTombstone == (change.op == .delete))
        #expect(newHead.op == change.op)
        let expectedPrevForeign: Int64 = head.map { $0.origin != change.region ? $0.seq : $0.prevForeignSeq } ?? 0
        #expect(newHead.prevForeignSeq == expectedPrevForeign)
        #expect(
            decision.logEntry(seq: 100)
                == LogEntry(
                    seq: 100, origin: change.region, id: change.id, tx: change.tx, table: change.table, op: change.op,
                    key: change.key, row: change.after, hlc: change.hlc, kind: .change, rewritten: false))
        #expect(decision.verdict(seq: 100, conflictID: nil) == Verdict(id: change.id, outcome: .accepted(seq: 100)))
    }

    private func expectMerged(_ decision: Decision, change: Change, head: Head, row: JSONObject) throws {
        #expect(decision.outcome == .merge(row: row))
        let hlc = max(change.hlc, head.hlc)
        #expect(
            decision.newHead(seq: 100)
                == Head(
                    seq: 100, origin: change.region, hlc: hlc, image: row,
                    prevForeignSeq: head.origin != change.region ? head.seq : head.prevForeignSeq, op: .update))
        #expect(
            decision.logEntry(seq: 100)
                == LogEntry(
                    seq: 100, origin: change.region, id: change.id, tx: change.tx, table: change.table, op: .update,
                    key: change.key, row: row, hlc: hlc, kind: .merge, rewritten: true))
        #expect(
            decision.verdict(seq: 100, conflictID: 3) == Verdict(id: change.id, outcome: .merged(seq: 100, row: row)))
    }

    // Proves the table covers what the brief asks (guards against the generator silently shrinking).
    @Test func scenarioCount() {
        // op 3 × [none: 9] + [live/tombstone: 2 × (foreign 9 + seen 9 + 3 own-head races × 3 hlc orders)]
        #expect(Self.scenarios.count == 3 * (9 + 2 * 27))
    }

    // Proves a re-insert onto a tombstone the writer had seen is no conflict, even from another region.
    @Test func reinsertAfterDeleteIsNoConflict() throws {
        let head = Head(seq: 8, origin: "us", hlc: 500, image: nil, prevForeignSeq: 2)
        let change = try Change(
            id: "eu:1", tx: "eu:1", table: "t", op: .insert, key: ["id": 1], before: nil, after: ["id": 1],
            base: 8, hlc: 1)
        let decision = ConflictResolver.decide(change: change, head: head, policy: .reject, priorities: [:])
        #expect(!decision.isConflict)
        #expect(decision.newHead(seq: 9)?.prevForeignSeq == 8)
    }

    // Proves the widened rule (WAL capture's base is the writer's apply cursor, which may be above the key's
    // head): a base at or above the head's seq is no conflict, one below it a conflict.
    @Test(arguments: [(Int64(8), false), (9, false), (1_000, false), (7, true)])
    func baseAtOrAboveTheHeadIsNoConflict(base: Int64, conflict: Bool) throws {
        let head = Head(seq: 8, origin: "us", hlc: 500, image: ["id": 1], prevForeignSeq: 2, op: .update)
        let change = try Change(
            id: "eu:1", tx: "eu:1", table: "t", op: .update, key: ["id": 1], before: ["id": 1], after: ["id": 1],
            base: base, hlc: 1)
        #expect(ConflictResolver.isConflict(change: change, head: head) == conflict)
    }

    static let nameTies: [(String, String, Bool)] = [
        ("a", "b", true), ("b", "a", false), ("eu", "eu-west", true), ("Z", "a", true), ("é", "z", false),
    ]

    // Proves a full HLC and priority tie goes to the region whose name is smaller in UTF-8 byte order.
    @Test(arguments: nameTies)
    func lwwNameTieBreak(incoming: String, current: String, incomingWins: Bool) throws {
        let head = Head(seq: 5, origin: current, hlc: 77, image: ["id": 1], prevForeignSeq: 0)
        let change = try Change(
            id: "\(incoming):1", tx: "x", table: "t", op: .update, key: ["id": 1], before: ["id": 1],
            after: ["id": 1, "v": 2], base: 1, hlc: 77)
        #expect(ConflictResolver.lwwPrefersIncoming(change: change, head: head, priorities: [:]) == incomingWins)
        let decision = ConflictResolver.decide(change: change, head: head, policy: .lww, priorities: [:])
        #expect(decision.conflict?.winner == (incomingWins ? .incoming : .current))
    }

    // Proves unknown regions (and the hub's own origin) count as priority 0 under the priority policy.
    @Test func unknownRegionPriorityIsZero() throws {
        let head = Head(seq: 5, origin: LogEntry.hubOrigin, hlc: 9_999, image: ["id": 1], prevForeignSeq: 0)
        let change = try Change(
            id: "eu:1", tx: "x", table: "t", op: .delete, key: ["id": 1], before: ["id": 1], after: nil,
            base: 1, hlc: 1)
        let wins = ConflictResolver.decide(change: change, head: head, policy: .priority, priorities: ["eu": 1])
        #expect(wins.outcome == .accept(row: nil, isTombstone: true, kind: .change, rewritten: false))
        let loses = ConflictResolver.decide(change: change, head: head, policy: .priority, priorities: ["eu": -1])
        #expect(loses.outcome == .reject)
    }

    // Proves deciding is deterministic: the same inputs always give the same decision.
    @Test(arguments: policies)
    func deterministic(policy: ConflictPolicy) throws {
        for scenario in Self.scenarios {
            let change = try Self.change(for: scenario)
            let head = Self.head(for: scenario)
            let one = ConflictResolver.decide(
                change: change, head: head, policy: policy, priorities: Self.priorities(for: scenario))
            let two = ConflictResolver.decide(
                change: change, head: head, policy: policy, priorities: Self.priorities(for: scenario))
            #expect(one == two)
        }
    }
}
