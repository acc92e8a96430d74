import StarlingCore

/// How a pulled page is cut for parallel apply (DESIGN.md "Engine v2", Apply; README "Apply"): into parts that
/// share no key, each applied in its own transaction on its own connection, and a serial rest applied by the
/// transaction that then moves the cursor past the page. Pure.
///
/// ```
///  entries ─▶ units (origin transactions: runs of one origin and tx, never split)
///          ─▶ join units that write a common key (union-find); a table that must apply in commit order joins
///             every unit writing it to the serial group
///          ─▶ components, largest first, each to the least loaded of `workers` parts
/// ```
/// Invariants: every entry is in exactly one part or in `serial`; all entries of a key are in the same one, in seq
/// order, so per-key order is kept and a part applies every entry of its keys in the page; parts share no key
/// and no origin transaction. A page of fewer than `minEntries` entries, or whose keys form fewer than two
/// components outside the serial group, is applied serially (`parts` empty): one transaction, as before.
struct ApplyPlan: Equatable {
    /// Indices into the page: each part ascending, the parts largest first, at most `workers` of them.
    var parts: [[Int]]
    /// Indices the cursor's transaction applies, ascending.
    var serial: [Int]

    /// `serialTables`: tables whose rows may depend on other rows (foreign keys either way, a unique or exclusion
    /// constraint besides the key, the application's triggers or rules): applying them out of commit order could
    /// fail where the origin succeeded, so they stay in the serial group. `serialKeys`: keys with a local change
    /// waiting for its verdict; their entries are deferred by the serial group's transaction, in order with the
    /// verdicts (Agent+ParallelApply.swift).
    static func make(
        _ entries: [LogEntry], workers: Int, minEntries: Int, serialTables: Set<String>,
        serialKeys: Set<TableKey> = []
    ) -> ApplyPlan {
        let everything = ApplyPlan(parts: [], serial: Array(entries.indices))
        guard workers > 1, entries.count >= max(minEntries, 2) else { return everything }
        // Units: the hub returns an origin transaction's entries contiguously.
        var unitOf = [Int](repeating: 0, count: entries.count)
        var units = 0
        for index in entries.indices {
            let continues = index > 0 && entries[index].tx == entries[index - 1].tx
                && entries[index].origin == entries[index - 1].origin
            if !continues { units += 1 }
            unitOf[index] = units - 1
        }
        var groups = UnionFind(count: units + 1)
        let serialNode = units
        var owner: [TableKey: Int] = [:]
        owner.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            let key = TableKey(table: entry.table, key: entry.key)
            if entry.kind == .schema || serialTables.contains(entry.table) || serialKeys.contains(key) {
                groups.join(unitOf[index], serialNode)
            } else if let other = owner.updateValue(unitOf[index], forKey: key) {
                groups.join(unitOf[index], other)
            }
        }
        var serial: [Int] = []
        var components: [Int: [Int]] = [:]
        let serialRoot = groups.root(serialNode)
        for index in entries.indices {
            let root = groups.root(unitOf[index])
            if root == serialRoot { serial.append(index) } else { components[root, default: []].append(index) }
        }
        guard components.count >= 2 else { return everything }
        let largestFirst = components.values.sorted { $0.count != $1.count ? $0.count > $1.count : $0[0] < $1[0] }
        var parts = [[Int]](repeating: [], count: min(workers, largestFirst.count))
        for component in largestFirst {
            var target = 0
            for candidate in parts.indices where parts[candidate].count < parts[target].count { target = candidate }
            parts[target] += component
        }
        return ApplyPlan(
            parts: parts.map { $0.sorted() }.sorted { $0.count != $1.count ? $0.count > $1.count : $0[0] < $1[0] },
            serial: serial)
    }
}

/// Disjoint sets over `0..<count` (path halving, union by size).
private struct UnionFind {
    private var parent: [Int]
    private var size: [Int]

    init(count: Int) {
        parent = Array(0..<count)
        size = [Int](repeating: 1, count: count)
    }

    mutating func root(_ node: Int) -> Int {
        var node = node
        while parent[node] != node {
            parent[node] = parent[parent[node]]
            node = parent[node]
        }
        return node
    }

    mutating func join(_ a: Int, _ b: Int) {
        var (a, b) = (root(a), root(b))
        guard a != b else { return }
        if size[a] < size[b] { swap(&a, &b) }
        parent[b] = a
        size[a] += size[b]
    }
}
