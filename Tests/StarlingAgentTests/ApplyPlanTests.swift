@testable import StarlingAgent
import StarlingCore
import Testing

/// ``ApplyPlan``: how a page is cut into key-disjoint parts for parallel apply.
@Suite("Parallel apply: the plan")
struct ApplyPlanTests {
    static func entry(_ seq: Int64, key: Int64, tx: String? = nil, origin: String = "us", table: String = "public.items")
        -> LogEntry
    {
        LogEntry(
            seq: seq, origin: origin, id: "\(origin):\(seq)", tx: tx ?? "\(origin):tx\(seq)", table: table, op: .update,
            key: ["id": .integer(key)], row: ["id": .integer(key)], hlc: 1000 + seq, kind: .change, rewritten: false)
    }

    @Test("a small page, one worker, or a single component applies in one transaction")
    func serialWhenNothingToGain() {
        let page = (1...6).map { Self.entry(Int64($0), key: Int64($0)) }
        let everything = ApplyPlan(parts: [], serial: Array(0..<6))
        #expect(ApplyPlan.make(page, workers: 4, minEntries: 7, serialTables: []) == everything)
        #expect(ApplyPlan.make(page, workers: 1, minEntries: 2, serialTables: []) == everything)
        let oneKey = (1...6).map { Self.entry(Int64($0), key: 1) }
        #expect(ApplyPlan.make(oneKey, workers: 4, minEntries: 2, serialTables: []) == everything)
        let oneTransaction = (1...6).map { Self.entry(Int64($0), key: Int64($0), tx: "us:big") }
        #expect(ApplyPlan.make(oneTransaction, workers: 4, minEntries: 2, serialTables: []) == everything)
    }

    @Test("keys spread over the workers; every entry of a key in one part, in seq order; the largest part first")
    func keysSpread() {
        // Keys 1, 2, 3 written twice each (1 three times), in single-entry transactions.
        let keys: [Int64] = [1, 2, 3, 1, 2, 3, 1]
        let page = keys.enumerated().map { Self.entry(Int64($0.offset + 1), key: $0.element) }
        let plan = ApplyPlan.make(page, workers: 2, minEntries: 2, serialTables: [])
        #expect(plan == ApplyPlan(parts: [[0, 3, 6], [1, 2, 4, 5]].sorted { $0.count > $1.count }, serial: []))
        let three = ApplyPlan.make(page, workers: 8, minEntries: 2, serialTables: [])
        #expect(three.parts == [[0, 3, 6], [1, 4], [2, 5]], "no more parts than components")
    }

    @Test("a transaction is never split: one writing two keys joins them, and keys chained through transactions too")
    func transactionsJoinKeys() {
        let page = [
            Self.entry(1, key: 1, tx: "a"), Self.entry(2, key: 2, tx: "a"),  // joins 1 and 2
            Self.entry(3, key: 3, tx: "b"),
            Self.entry(4, key: 2, tx: "c"), Self.entry(5, key: 4, tx: "c"),  // joins 4 through key 2
            Self.entry(6, key: 5, tx: "d"),
            Self.entry(7, key: 1, tx: "a", origin: "eu"),  // same tx name, another origin: another transaction
        ]
        let plan = ApplyPlan.make(page, workers: 4, minEntries: 2, serialTables: [])
        #expect(plan.parts == [[0, 1, 3, 4, 6], [2], [5]])
        #expect(plan.serial.isEmpty)
    }

    @Test("a table that must apply in commit order stays serial, with every transaction and key tied to it")
    func serialTablesStaySerial() {
        let page = [
            Self.entry(1, key: 1, tx: "a", table: "public.orders"), Self.entry(2, key: 1, tx: "a"),
            Self.entry(3, key: 2),
            Self.entry(4, key: 1),  // key 1 of items: tied to transaction a
            Self.entry(5, key: 3),
        ]
        let plan = ApplyPlan.make(page, workers: 4, minEntries: 2, serialTables: ["public.orders"])
        #expect(plan.serial == [0, 1, 3])
        #expect(plan.parts == [[2], [4]])
    }

    @Test("keys with a pending local change go to the serial rest, with every transaction and key tied to them")
    func pendingKeysStaySerial() {
        // Their entries are deferred by the cursor's transaction, in order with the verdicts (a part on another
        // connection could defer one just after the verdict job released the key, and nothing would release it).
        let page = [
            Self.entry(1, key: 1, tx: "a"), Self.entry(2, key: 2, tx: "a"),
            Self.entry(3, key: 3), Self.entry(4, key: 2), Self.entry(5, key: 4),
        ]
        let pending: Set<TableKey> = [TableKey(table: "public.items", key: ["id": .integer(1)])]
        let plan = ApplyPlan.make(page, workers: 4, minEntries: 2, serialTables: [], serialKeys: pending)
        #expect(plan.serial == [0, 1, 3])
        #expect(plan.parts == [[2], [4]])
    }

    @Test("random pages: each entry once, parts share no key and split no transaction", arguments: 0..<20)
    func invariants(seed: Int) {
        var generator = SplitMix(seed: UInt64(seed) &+ 1)
        var page: [LogEntry] = []
        var seq: Int64 = 0
        while page.count < 300 {
            let tx = "t\(seq)"
            for _ in 0...(generator.next() % 3) {
                seq += 1
                let table = generator.next() % 10 == 0 ? "public.serial" : "public.items"
                page.append(Self.entry(seq, key: Int64(generator.next() % 120), tx: tx, table: table))
            }
        }
        let workers = Int(generator.next() % 4) + 2
        let plan = ApplyPlan.make(page, workers: workers, minEntries: 2, serialTables: ["public.serial"])
        let groups = plan.parts + [plan.serial]
        #expect(groups.flatMap { $0 }.sorted() == Array(page.indices))
        #expect(plan.parts.count <= workers && plan.parts.allSatisfy { $0 == $0.sorted() && !$0.isEmpty })
        var keyGroup: [TableKey: Int] = [:]
        var txGroup: [String: Int] = [:]
        for (group, indices) in groups.enumerated() {
            for index in indices {
                let entry = page[index]
                #expect(entry.table != "public.serial" || group == groups.count - 1)
                let key = TableKey(table: entry.table, key: entry.key)
                #expect(keyGroup.updateValue(group, forKey: key) ?? group == group, "key \(key) in two groups")
                #expect(txGroup.updateValue(group, forKey: entry.tx) ?? group == group, "tx \(entry.tx) split")
            }
        }
    }
}

/// A small deterministic generator for the property test.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
