import StarlingCore
import StarlingTestSupport
import Testing

/// Property tests: concurrent changes from three regions on one key, in random hub orders, decided by the
/// resolver. Checks determinism, that the heads, log entries and verdicts the resolver's decisions produce agree
/// with each other (the seqs are the simulation's own, so only what `Decision` derives from them is checked),
/// nothing dropped, and that regions following DESIGN.md's agent rules converge on the hub's head.
struct ConvergenceSimulationTests {
    static let regions = ["ap", "eu", "us"]
    static let priorities: RegionPriorities = ["ap": 1, "eu": 2, "us": 2]
    static let policies: [ConflictPolicy] = [
        .lww, .priority, .merge, .reject, .manual(provisional: .keepHead), .manual(provisional: .lww),
    ]

    /// The order the final head must be the maximum of, for writes that never saw each other.
    static func rank(_ change: Change, policy: ConflictPolicy) -> (Int, Int64, Int, Int) {
        let priority = priorities[change.region]
        let nameRank = -(regions.firstIndex(of: change.region) ?? 0)  // smaller name wins ties
        return policy == .priority ? (priority, change.hlc, 0, nameRank) : (0, change.hlc, priority, nameRank)
    }

    // Proves that with lww and priority the head ends as the maximal concurrent write, in every hub order, and that
    // each decision's entry, head (prev_foreign_seq) and verdict agree with the entries appended before it.
    @Test(arguments: [ConflictPolicy.lww, .priority])
    func concurrentWritesConvergeOnTheMaximum(policy: ConflictPolicy) throws {
        var generator = SplitMix64(seed: 7)
        for _ in 0..<300 {
            let streams = try Self.regions.map { region in try concurrentStream(region: region, using: &generator) }
            let winner = try #require(
                streams.flatMap { $0 }.max { Self.rank($0, policy: policy) < Self.rank($1, policy: policy) })
            var cursors = [0, 0, 0]
            var head: Head?
            var seq: Int64 = 0
            var appended: [(seq: Int64, origin: String)] = []
            while let next = (0..<3).filter({ cursors[$0] < streams[$0].count }).randomElement(using: &generator) {
                let change = streams[next][cursors[next]]
                cursors[next] += 1
                let decision = ConflictResolver.decide(
                    change: change, head: head, policy: policy, priorities: Self.priorities)
                #expect(
                    decision
                        == ConflictResolver.decide(
                            change: change, head: head, policy: policy, priorities: Self.priorities))
                #expect(decision.appendsEntry || decision.conflict != nil, "a change vanished")
                if decision.appendsEntry {
                    seq += 1
                    let newHead = try #require(decision.newHead(seq: seq))
                    let entry = try #require(decision.logEntry(seq: seq))
                    #expect(entry.id == change.id && entry.origin == change.region && entry.hlc == change.hlc)
                    #expect(entry.row == change.image && newHead.image == change.image)
                    #expect(newHead.prevForeignSeq == Self.lastForeignSeq(appended, besides: change.region))
                    let accepted = Verdict(id: change.id, outcome: .accepted(seq: seq))
                    #expect(decision.verdict(seq: seq, conflictID: nil) == accepted)
                    appended.append((seq, change.region))
                    head = newHead
                } else {
                    // The verdict names the head that beat the change, as it stands.
                    let current = try #require(head)
                    #expect(
                        decision.verdict(seq: nil, conflictID: 1)
                            == Verdict(
                                id: change.id,
                                outcome: .rejected(
                                    conflict: 1,
                                    winner: .init(seq: current.seq, origin: current.origin, row: current.image))))
                }
            }
            #expect(head?.image == winner.image)
        }
    }

    /// The seq of the newest entry by a region other than `region`; 0 when there is none.
    static func lastForeignSeq(_ appended: [(seq: Int64, origin: String)], besides region: String) -> Int64 {
        appended.last { $0.origin != region }?.seq ?? 0
    }

    private func concurrentStream(region: String, using generator: inout SplitMix64) throws -> [Change] {
        var hlc: Int64 = 0
        return try (1...Int(1 + generator.next() % 5)).map { n in
            hlc += Int64(1 + generator.next() % 3)
            let image: JSONObject = ["id": 1, "v": .string("\(region)-\(n)")]
            let op = ChangeOperation.allCases[Int(generator.next() % 3)]
            return try Change(
                id: "\(region):\(n)", tx: "\(region):\(n)", table: "t", op: op, key: ["id": 1],
                before: op == .insert ? nil : ["id": 1, "v": "old"], after: op == .delete ? nil : image,
                base: 0, hlc: hlc)
        }
    }

    // Proves regions following the agent rules converge on the hub's head, conflicts are exactly unseen foreign writes.
    @Test(arguments: policies)
    func regionsConvergeUnderAgentRules(policy: ConflictPolicy) throws {
        var generator = SplitMix64(seed: 0xC0FFEE)
        var totalConflicts = 0
        var totalRewritten = 0
        for _ in 0..<200 {
            var world = SimulatedWorld(policy: policy, regions: Self.regions, priorities: Self.priorities)
            for step in 0..<60 {
                let region = Int(generator.next() % 3)
                switch generator.next() % 4 {
                case 0: try world.write(region: region, now: Int64(step), using: &generator)
                case 1, 2: try world.push(region: region, duplicate: generator.next() % 5 == 0)
                default: world.pull(region: region)
                }
            }
            try world.drain()
            for region in world.regions {
                #expect(region.row == world.head?.image, "\(region.name) diverged under \(policy)")
            }
            #expect(world.headAgreesWithLog, "under \(policy)")
            #expect(world.verdictsPointAtTheirEntries, "under \(policy)")
            #expect(world.everyChangeAccountedFor)
            totalConflicts += world.conflicts.count
            totalRewritten += world.log.filter(\.rewritten).count
        }
        // The workload must actually exercise conflicts (and merges for the merge policy).
        #expect(totalConflicts > 200)
        #expect(policy != .merge || totalRewritten > 50)
    }
}

/// A hub and three regions following DESIGN.md's agent rules, in memory, for one key.
struct SimulatedWorld {
    struct Region {
        var name: String
        var clock = HybridLogicalClock()
        var outbox: [Change] = []
        var row: JSONObject?
        var version: Int64 = 0
        var cursor = 0
        var nextID = 1
    }

    let policy: ConflictPolicy
    let priorities: RegionPriorities
    var regions: [Region]
    var log: [LogEntry] = []
    var head: Head?
    var verdicts: [String: Verdict] = [:]
    var conflicts: [ConflictRecord] = []
    var pushedIDs: Set<String> = []

    init(policy: ConflictPolicy, regions: [String], priorities: RegionPriorities) {
        self.policy = policy
        self.priorities = priorities
        self.regions = regions.map { Region(name: $0) }
    }

    /// The region's application writes the key: insert when absent, else update or delete.
    mutating func write(region index: Int, now: Int64, using generator: inout SplitMix64) throws {
        var region = regions[index]
        let id = "\(region.name):\(region.nextID)"
        region.nextID += 1
        let op: ChangeOperation = region.row == nil ? .insert : (generator.next() % 4 == 0 ? .delete : .update)
        var after = region.row ?? ["id": 1]
        after[generator.next() % 2 == 0 ? "a" : "b"] = .string(id)
        let change = try Change(
            id: id, tx: id, table: "t", op: op, key: ["id": 1], before: region.row,
            after: op == .delete ? nil : after, base: region.version, hlc: region.clock.tick(nowMicros: now))
        region.row = change.after
        region.outbox.append(change)
        regions[index] = region
    }

    /// Pushes the oldest pending change (twice when `duplicate`, as after a timeout) and handles the verdict.
    mutating func push(region index: Int, duplicate: Bool) throws {
        guard let change = regions[index].outbox.first else { return }
        let verdict = hubReceive(change)
        if duplicate {
            let again = hubReceive(change)
            #expect(again == verdict.withCurrentWinner(head))
        }
        regions[index].outbox.removeFirst()
        let hasPending = !regions[index].outbox.isEmpty
        switch verdict.outcome {
        case .accepted(let seq):
            regions[index].version = seq
        case .merged(let seq, let row):
            if !hasPending { (regions[index].row, regions[index].version) = (row, seq) }
        case .rejected(_, let winner):
            if !hasPending { (regions[index].row, regions[index].version) = (winner.row, winner.seq) }
        }
    }

    /// The hub: idempotent on the change id, otherwise decide, append, record.
    mutating func hubReceive(_ change: Change) -> Verdict {
        if let stored = verdicts[change.id] { return stored.withCurrentWinner(head) }
        pushedIDs.insert(change.id)
        let decision = ConflictResolver.decide(change: change, head: head, policy: policy, priorities: priorities)
        // Independent statement of detection: a conflict exactly when a foreign entry came after the base.
        let unseenForeign = log.contains { $0.seq > change.base && $0.origin != change.region }
        #expect(decision.isConflict == unseenForeign, "\(change.id) on base \(change.base)")
        var conflictID: Int64?
        if let record = decision.conflict {
            conflicts.append(record)
            conflictID = Int64(conflicts.count)
        }
        var seq: Int64?
        if let entry = decision.logEntry(seq: Int64(log.count + 1)) {
            log.append(entry)
            seq = entry.seq
            head = decision.newHead(seq: entry.seq)
        }
        let verdict = decision.verdict(seq: seq, conflictID: conflictID)
        verdicts[change.id] = verdict
        return verdict
    }

    /// Applies the next log entry by the agent rules.
    mutating func pull(region index: Int) {
        var region = regions[index]
        guard region.cursor < log.count else { return }
        let entry = log[region.cursor]
        region.cursor += 1
        region.clock.observe(entry.hlc)
        let isOwnUnchanged = entry.origin == region.name && !entry.rewritten
        if !isOwnUnchanged && region.version < entry.seq && region.outbox.isEmpty {
            region.row = entry.row
            region.version = entry.seq
        }
        regions[index] = region
    }

    /// Pushes everything pending and pulls everything, until quiet.
    mutating func drain() throws {
        for _ in 0..<4 {
            for index in regions.indices {
                while !regions[index].outbox.isEmpty { try push(region: index, duplicate: false) }
            }
            for index in regions.indices {
                while regions[index].cursor < log.count { pull(region: index) }
            }
        }
    }

    /// The head the decisions built is the newest log entry of the key: its seq, origin, HLC, image and op, and
    /// as `prev_foreign_seq` the newest entry by another region (none appended: no head at all).
    var headAgreesWithLog: Bool {
        guard let last = log.last else { return head == nil }
        guard let head else { return false }
        let foreign = log.last { $0.origin != head.origin }?.seq ?? 0
        return head.seq == last.seq && head.origin == last.origin && head.hlc == last.hlc && head.image == last.row
            && head.op == last.op && head.prevForeignSeq == foreign
    }

    /// Each accepted or merged verdict's seq is the log entry of that change (a merged one with the entry's
    /// image), each rejected change has no entry.
    var verdictsPointAtTheirEntries: Bool {
        verdicts.allSatisfy { id, verdict in
            switch verdict.outcome {
            case .accepted(let seq):
                return log.first { $0.seq == seq }?.id == id && log.first { $0.seq == seq }?.kind == .change
            case .merged(let seq, let row):
                guard let entry = log.first(where: { $0.seq == seq }) else { return false }
                return entry.id == id && entry.kind == .merge && entry.rewritten && entry.row == row
            case .rejected:
                return !log.contains { $0.id == id }
            }
        }
    }

    /// Every pushed change is in the log or in a conflict record.
    var everyChangeAccountedFor: Bool {
        let logged = Set(log.map(\.id))
        let recorded = Set(conflicts.map(\.incoming.id))
        return pushedIDs.allSatisfy { logged.contains($0) || recorded.contains($0) }
    }
}
