import StarlingCore

/// (b): the hub's log replayed through the pure resolver.
///
/// The replay walks the log in seq order with its own heads. A `change` or `merge` entry is re-decided from the
/// change its origin pushed (the outbox row as recorded by the test hook: before, after, base, hlc) against the
/// replayed head; the decision must produce this very entry and the conflict recorded for that change id (or no
/// conflict). A rejected change (a `decisions` row) is re-decided against the replayed head at its conflict's
/// `current_seq`, right after that entry: it must be rejected again with the same record. `resolution` and
/// `correction` entries become heads as written; `repair` entries (one region only) leave the heads alone.
/// A region in `immediatelyStopped` may have lost a pushed change's stamp (see the loop below): its logged change
/// is replayed with the stamp the hub logged when that is the earlier one; a rejected change cannot be told apart.
/// Finally the replayed heads must equal the stored heads (seq, origin, hlc, op, row, prev_foreign_seq).
///
/// The order of decisions is checked as far as the database records it: conflicts and seqs are numbered in
/// decision order, so a rejection must precede the next entry of its key (`orderProblems`). What it cannot see:
/// a rejection's place among non-conflicting entries sequenced between two conflicts, and the changes of a
/// region without hooks (then the entry itself becomes the head, unverified, and the count is printed).
extension ConvergenceOracle {
    func replayProblems(hub: HubSnapshot, regions: [RegionSnapshot]) -> [String] {
        guard hub.prunedThrough == 0 else { return [] }  // a pruned log cannot be replayed from its start
        var problems: [String] = []
        var pushed: [String: Change] = [:]
        let instrumented = Set(regions.filter(\.isInstrumented).map(\.region))
        var loggedHLC: [String: Int64] = [:]
        for entry in hub.entries where entry.kind == "change" || entry.kind == "merge" {
            loggedHLC[entry.changeID] = entry.hlc
        }
        var restamped = 0
        for region in regions {
            for (id, record) in region.pushed {
                let changeID = "\(region.region):\(id)"
                var hlc = record.hlc ?? record.capturedAt
                // A stamp lost with an immediate stop of the region's Postgres (the agent commits its stamps
                // asynchronously) is stamped again, later; the hub answered the second push by id, so its log
                // keeps the first stamp, which the hook never saw committed.
                if immediatelyStopped.contains(region.region), let logged = loggedHLC[changeID], logged < hlc {
                    hlc = logged
                    restamped += 1
                }
                do {
                    pushed[changeID] = try Change(
                        id: changeID, tx: "\(region.region):\(record.tx)", table: record.tableKey.table,
                        op: ChangeOperation(rawValue: record.op) ?? .update, key: record.tableKey.key,
                        before: record.before, after: record.after, base: record.base, hlc: hlc)
                } catch {
                    problems.append("(b) \(region.region) \(record.tableKey): pushed change \(id) is invalid: \(error)")
                }
            }
        }
        let policies = Dictionary(deployment.tables.map { ($0.name, $0.policy) }, uniquingKeysWith: { a, _ in a })
        let priorities = RegionPriorities(
            Dictionary(deployment.regions.enumerated().map { ($1, 100 - $0) }, uniquingKeysWith: { a, _ in a }))
        var conflictByIncoming: [String: HubSnapshot.StoredConflict] = [:]
        for conflict in hub.conflicts.values { conflictByIncoming[conflict.incoming.id] = conflict }
        // Rejected changes wait for the replayed head they were decided against.
        var rejectedAt: [TableKey: [Int64: [(change: Change, conflict: HubSnapshot.StoredConflict)]]] = [:]
        for (changeID, conflictID) in hub.decisions {
            guard let conflict = hub.conflicts[conflictID] else {
                problems.append(
                    "(b) hub: rejected change \(changeID) names conflict \(conflictID), which does not exist")
                continue
            }
            guard let change = pushed[changeID] else { continue }
            rejectedAt[conflict.tableKey, default: [:]][conflict.current.seq, default: []].append((change, conflict))
        }
        var heads: [TableKey: Head] = [:]
        var unverified = 0
        // Each table's image rules since its first shape and its columns, as the schema entries replayed so far
        // give them: the hub reads a pushed image under the shape in force and rewrites its heads at each change.
        var shapes: [String: (rules: ImageRules, columns: Set<String>)] = [:]
        for entry in hub.entries {
            let previous = heads[entry.tableKey]
            switch entry.kind {
            case "schema":
                guard let row = entry.row, let schema = try? SchemaEntry(row: row, table: entry.tableKey.table) else {
                    problems.append("(b) hub seq \(entry.seq): a schema entry that does not decode")
                    continue
                }
                let columns = Set(schema.shape.columns.map(\.name))
                shapes[entry.tableKey.table] = (
                    (shapes[entry.tableKey.table]?.rules ?? ImageRules()).then(schema.rules), columns
                )
                for (tableKey, head) in heads where tableKey.table == entry.tableKey.table {
                    guard let image = head.image else { continue }
                    var migrated = head
                    migrated.image = schema.rules.apply(to: image, columns: columns)
                    heads[tableKey] = migrated
                }
                continue
            case "change", "merge":
                guard var change = pushed[entry.changeID] else {
                    if instrumented.contains(entry.origin) {
                        problems.append(
                            "(b) hub \(entry.tableKey) seq \(entry.seq): \(entry.changeID) is in the log, "
                                + "but \(entry.origin) "
                                + "never captured (or never settled) it")
                    }
                    unverified += 1
                    heads[entry.tableKey] = Self.head(of: entry, after: previous)
                    break
                }
                if let shape = shapes[entry.tableKey.table] {
                    change = change.conformed(to: shape.rules, columns: shape.columns)
                }
                let decision = ConflictResolver.decide(
                    change: change, head: previous, policy: Self.policy(policies[entry.tableKey.table] ?? "lww"),
                    priorities: priorities)
                problems += Self.compare(decision, entry: entry, recorded: conflictByIncoming[entry.changeID])
                heads[entry.tableKey] = decision.newHead(seq: entry.seq) ?? Self.head(of: entry, after: previous)
            case "repair":
                continue
            default:
                heads[entry.tableKey] = Self.head(of: entry, after: previous)
            }
            for (change, conflict) in rejectedAt[entry.tableKey]?.removeValue(forKey: entry.seq) ?? [] {
                let decision = ConflictResolver.decide(
                    change: change, head: heads[entry.tableKey],
                    policy: Self.policy(conflict.policy, conflict.provisional),
                    priorities: priorities)
                problems += Self.compareRejected(decision, conflict: conflict)
            }
        }
        for (tableKey, waiting) in rejectedAt {
            for (seq, items) in waiting {
                for item in items {
                    problems.append(
                        "(b) hub \(tableKey): conflict \(item.conflict.id) rejected \(item.change.id) "
                            + "against seq \(seq), "
                            + "which never was the key's head")
                }
            }
        }
        problems += orderProblems(hub: hub)
        problems += headProblems(replayed: heads, stored: hub.heads)
        if restamped > 0 {
            print("oracle: \(restamped) changes stamped again after an immediate stop, replayed with the logged stamp")
        }
        if unverified > 0 { print("oracle: \(unverified) log entries replayed without their pushed change (no hooks)") }
        return problems
    }

    /// The order of decisions: the sequencer numbers conflicts and log entries as it decides, so the conflicts an
    /// incoming change won have seqs rising with their ids, and a rejected change was decided while the head it
    /// names was still the head: no later entry of that key may precede it, i.e. be sequenced before a conflict
    /// with a smaller id. (Resolved conflicts are left out: an operator's pick rewrites the winner.)
    private func orderProblems(hub: HubSnapshot) -> [String] {
        var seqOf: [String: Int64] = [:]
        var laterEntry: [TableKey: [Int64]] = [:]
        for entry in hub.entries where entry.kind != "repair" {
            if entry.kind == "change" || entry.kind == "merge" { seqOf[entry.changeID] = entry.seq }
            laterEntry[entry.tableKey, default: []].append(entry.seq)
        }
        var problems: [String] = []
        var sequencedBefore: Int64 = 0  // the largest seq of a won conflict with a smaller id
        var previous: (id: Int64, seq: Int64)?
        for conflict in hub.conflicts.values.sorted(by: { $0.id < $1.id }) where conflict.status != "resolved" {
            if conflict.winner == "incoming", let seq = seqOf[conflict.incoming.id] {
                if let previous, seq <= previous.seq {
                    problems.append(
                        "(b) hub \(conflict.tableKey): conflict \(conflict.id) won at seq \(seq), "
                            + "but the earlier conflict "
                            + "\(previous.id) won at seq \(previous.seq)")
                }
                previous = (conflict.id, seq)
                sequencedBefore = max(sequencedBefore, seq)
            } else if conflict.winner == "current", hub.decisions[conflict.incoming.id] == conflict.id {
                let seqs = laterEntry[conflict.tableKey] ?? []
                if let next = seqs.first(where: { $0 > conflict.current.seq }), next <= sequencedBefore {
                    problems.append(
                        "(b) hub \(conflict.tableKey): conflict \(conflict.id) rejected \(conflict.incoming.id) "
                            + "against seq "
                            + "\(conflict.current.seq), but seq \(next) of that key was sequenced before it")
                }
            }
        }
        return problems
    }

    /// The replayed heads equal the stored heads, key by key.
    private func headProblems(replayed: [TableKey: Head], stored: [TableKey: HubSnapshot.StoredHead]) -> [String] {
        var problems: [String] = []
        for tableKey in Set(replayed.keys).union(stored.keys).sorted(by: { $0.description < $1.description }) {
            let expected = replayed[tableKey].map {
                HubSnapshot.StoredHead(
                    seq: $0.seq, origin: $0.origin, hlc: $0.hlc, row: $0.image, op: $0.op.rawValue,
                    prevForeignSeq: $0.prevForeignSeq)
            }
            if expected != stored[tableKey] {
                problems.append(
                    "(b) hub \(tableKey): stored head \(stored[tableKey].map(Self.text) ?? "none"), "
                        + "replay gives \(expected.map(Self.text) ?? "none")")
            }
        }
        return problems
    }

    /// The replayed decision produces `entry` and the recorded conflict (or none).
    private static func compare(
        _ decision: Decision, entry: HubSnapshot.Entry, recorded: HubSnapshot.StoredConflict?
    ) -> [String] {
        var problems: [String] = []
        let place = "(b) hub \(entry.tableKey) seq \(entry.seq) (\(entry.changeID))"
        guard let replayed = decision.logEntry(seq: entry.seq) else {
            let conflict = recorded.map { "conflict \($0.id) records winner \($0.winner)" } ?? "no conflict recorded"
            return ["\(place): in the log, but the replay rejects it (\(conflict))"]
        }
        if replayed.row != entry.row || replayed.hlc != entry.hlc || replayed.kind.rawValue != entry.kind
            || replayed.rewritten != entry.rewritten || replayed.op.rawValue != entry.op || replayed.tx != entry.tx
            || replayed.origin != entry.origin
        {
            problems.append(
                "\(place): logged \(entry.kind) \(entry.op) hlc \(entry.hlc) \(describe(entry.row)), replay gives "
                    + "\(replayed.kind.rawValue) \(replayed.op.rawValue) hlc \(replayed.hlc) \(describe(replayed.row))")
        }
        switch (decision.conflict, recorded) {
        case (nil, nil): break
        case (nil, let recorded?):
            problems.append("\(place): conflict \(recorded.id) recorded, but the replay finds no conflict")
        case (let expected?, nil):
            problems.append("\(place): the replay finds a conflict (winner \(expected.winner)), none is recorded")
        case (let expected?, let recorded?):
            problems += recordProblems(expected, recorded: recorded)
        }
        return problems
    }

    /// A rejected change is rejected again, with the same record.
    private static func compareRejected(_ decision: Decision, conflict: HubSnapshot.StoredConflict) -> [String] {
        guard let expected = decision.conflict else {
            return [
                "(b) hub \(conflict.tableKey): conflict \(conflict.id) (\(conflict.incoming.id)) recorded, "
                    + "but the replay finds no conflict against seq \(conflict.current.seq)"
            ]
        }
        var problems = recordProblems(expected, recorded: conflict)
        if decision.appendsEntry && problems.isEmpty {
            problems.append(
                "(b) hub \(conflict.tableKey): \(conflict.incoming.id) was rejected (conflict \(conflict.id)), "
                    + "the replay accepts it")
        }
        return problems
    }

    /// The recorded conflict equals the replayed one (status `resolved` stands for the replay's `open`).
    private static func recordProblems(_ expected: ConflictRecord, recorded: HubSnapshot.StoredConflict) -> [String] {
        var differences: [String] = []
        if expected.winner.rawValue != recorded.winner {
            differences.append("winner \(recorded.winner), replay \(expected.winner.rawValue)")
        }
        let status = recorded.status == "resolved" ? "open" : recorded.status
        if expected.status.rawValue != status {
            differences.append("status \(recorded.status), replay \(expected.status.rawValue)")
        }
        if expected.policy.name != recorded.policy {
            differences.append("policy \(recorded.policy), replay \(expected.policy.name)")
        }
        let current = expected.current
        if current.seq != recorded.current.seq || current.origin != recorded.current.origin
            || current.op.rawValue != recorded.current.op || current.row != recorded.current.row
        {
            differences.append(
                "current seq \(recorded.current.seq) \(recorded.current.origin) \(recorded.current.op) "
                    + "\(describe(recorded.current.row)), replay seq \(current.seq) \(current.origin) "
                    + "\(current.op.rawValue) "
                    + describe(current.row))
        }
        let incoming = expected.incoming
        if incoming.id != recorded.incoming.id || incoming.origin != recorded.incoming.origin
            || incoming.op.rawValue != recorded.incoming.op || incoming.base != recorded.incoming.base
            || incoming.row != recorded.incoming.row
        {
            differences.append(
                "incoming base \(recorded.incoming.base) \(describe(recorded.incoming.row)), replay base "
                    + "\(incoming.base) \(describe(incoming.row))")
        }
        guard !differences.isEmpty else { return [] }
        return [
            "(b) hub \(recorded.tableKey): conflict \(recorded.id) (\(recorded.incoming.id) vs seq "
                + "\(recorded.current.seq)) differs from the replay: \(differences.joined(separator: "; "))"
        ]
    }

    /// The head an entry writes when it is taken as written (resolution, correction, or no pushed change known).
    private static func head(of entry: HubSnapshot.Entry, after previous: Head?) -> Head {
        Head(
            seq: entry.seq, origin: entry.origin, hlc: entry.hlc, image: entry.row,
            prevForeignSeq: Head.prevForeignSeq(after: previous, newOrigin: entry.origin),
            op: ChangeOperation(rawValue: entry.op))
    }

    private static func policy(_ name: String, _ provisional: String? = nil) -> ConflictPolicy {
        let manual = provisional.flatMap(ConflictPolicy.ManualProvisional.init(rawValue:)) ?? .keepHead
        return (try? ConflictPolicy(name: name, manualProvisional: manual)) ?? .lww
    }

    private static func text(_ head: HubSnapshot.StoredHead) -> String {
        "seq \(head.seq) \(head.origin) hlc \(head.hlc) \(head.op) pfs \(head.prevForeignSeq) \(describe(head.row))"
    }
}
