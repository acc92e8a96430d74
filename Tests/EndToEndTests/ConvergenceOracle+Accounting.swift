import StarlingCore

/// (c) every committed write accounted for one to one, and (d) nothing applied twice.
extension ConvergenceOracle {
    // MARK: - (c) per-write accounting

    /// Matches each committed write to the one change its region captured for it (the change whose `after` image
    /// introduced the write's unique token in the written column; deletes in order per key), then checks that
    /// change has exactly one decision: one `change` entry carrying the token, one `merge` entry with a recorded
    /// conflict it won, or one rejection whose conflict names it as the losing side. Captured changes without a
    /// committed write are allowed only up to the region's failed transactions (a COMMIT whose answer was lost).
    func accountingProblems(_ run: WorkloadRun, hub: HubSnapshot, regions: [RegionSnapshot]) -> [String] {
        let writes = run.writes
        var problems: [String] = []
        var logged: [String: [HubSnapshot.Entry]] = [:]
        for entry in hub.entries where entry.kind == "change" || entry.kind == "merge" {
            logged[entry.changeID, default: []].append(entry)
        }
        var conflictsOf: [String: [HubSnapshot.StoredConflict]] = [:]
        for conflict in hub.conflicts.values { conflictsOf[conflict.incoming.id, default: []].append(conflict) }
        for region in regions where !region.isInstrumented && writes.contains(where: { $0.region == region.region }) {
            problems.append("(c) \(region.region) has committed writes but no oracle hooks: nothing can be matched")
        }
        for region in regions where region.isInstrumented {
            let (matched, matchProblems) = match(writes.filter { $0.region == region.region }, region: region)
            problems += matchProblems
            for (id, write) in matched.sorted(by: { $0.key < $1.key }) {
                problems += decisionProblems(
                    id: "\(region.region):\(id)", write: write, logged: logged, hub: hub, conflictsOf: conflictsOf)
            }
            let unmatched = region.pushed.keys.filter { matched[$0] == nil }.sorted()
            let failures = run.failures[region.region] ?? 0
            if unmatched.count > 3 * failures {  // up to 3 writes per transaction
                problems.append(
                    "(c) \(region.region): \(unmatched.count) captured changes match no committed write, more than its "
                        + "\(failures) failed transactions can explain (outbox ids \(unmatched.prefix(10)))")
            }
            for id in unmatched {  // still changes: each needs its one decision
                let decisions =
                    (logged["\(region.region):\(id)"]?.count ?? 0)
                    + (hub.decisions["\(region.region):\(id)"] == nil ? 0 : 1)
                if decisions != 1, let pushed = region.pushed[id] {
                    problems.append(
                        "(c) \(region.region) \(pushed.tableKey): captured change \(region.region):\(id) has "
                            + "\(decisions) "
                            + "decisions; exactly one expected")
                }
            }
            for (id, pushed) in region.pushed where pushed.removals > 1 {
                problems.append(
                    "(c) \(region.region) \(pushed.tableKey): outbox id \(id) was removed \(pushed.removals) times")
            }
        }
        return problems
    }

    /// Pairs writes with captured changes: by introduced token for inserts and updates, in order for deletes.
    private func match(_ writes: [Workload.Write], region: RegionSnapshot) -> (
        matched: [Int64: Workload.Write], problems: [String]
    ) {
        var byToken: [String: [Int64]] = [:]
        var deletes: [TableKey: [Int64]] = [:]
        for (id, pushed) in region.pushed {
            if pushed.op == "delete" {
                deletes[pushed.tableKey, default: []].append(id)
                continue
            }
            for (column, value) in pushed.after ?? [:] {
                guard let token = value.stringValue, pushed.before?[column] != value else { continue }
                byToken["\(pushed.tableKey.table)|\(column)|\(token)", default: []].append(id)
            }
        }
        var matched: [Int64: Workload.Write] = [:]
        var problems: [String] = []
        var deleteWrites: [TableKey: [Workload.Write]] = [:]
        for write in writes {
            let tableKey = TableKey(table: write.table, key: ["k": .number(String(write.key))])
            guard let token = write.token, let column = write.column else {
                deleteWrites[tableKey, default: []].append(write)
                continue
            }
            let ids = (byToken["\(write.table)|\(column)|\(token)"] ?? []).filter {
                region.pushed[$0]?.op == write.op && region.pushed[$0]?.tableKey == tableKey
            }
            if ids.count != 1 {
                problems.append(
                    "(c) \(region.region) \(tableKey): committed \(write.op) of \(column) = \(token) was captured "
                        + "\(ids.count) times (outbox ids \(ids.sorted()))")
            }
            if let id = ids.first { matched[id] = write }
        }
        for (tableKey, writes) in deleteWrites {
            let ids = (deletes[tableKey] ?? []).sorted()
            if ids.count < writes.count {
                problems.append(
                    "(c) \(region.region) \(tableKey): \(writes.count) committed deletes, \(ids.count) captured")
            }
            for (id, write) in zip(ids, writes) { matched[id] = write }
        }
        return (matched, problems)
    }

    /// The one decision of captured change `id` (written by `write`).
    private func decisionProblems(
        id: String, write: Workload.Write, logged: [String: [HubSnapshot.Entry]], hub: HubSnapshot,
        conflictsOf: [String: [HubSnapshot.StoredConflict]]
    ) -> [String] {
        let tableKey = TableKey(table: write.table, key: ["k": .number(String(write.key))])
        let place = "(c) \(write.region) \(tableKey) \(write.op) \(write.token ?? "") (change \(id))"
        let entries = logged[id] ?? []
        let rejection = hub.decisions[id]
        let conflicts = conflictsOf[id] ?? []
        guard entries.count + (rejection == nil ? 0 : 1) == 1 else {
            return [
                "\(place): \(entries.count) log entries and \(rejection == nil ? 0 : 1) rejections; "
                    + "exactly one decision expected"
            ]
        }
        guard conflicts.count <= 1 else {
            return [
                "\(place): losing or winning side of \(conflicts.count) conflicts (\(conflicts.map(\.id).sorted()))"
            ]
        }
        func carries(_ row: JSONObject?) -> Bool {
            guard let column = write.column, let token = write.token else { return row == nil }
            return row?[column]?.stringValue == token
        }
        if let rejection {
            guard let conflict = conflicts.first, conflict.id == rejection else {
                return ["\(place): rejected by conflict \(rejection), but that conflict does not name it as incoming"]
            }
            if conflict.winner != "current" {
                return ["\(place): rejected, but conflict \(conflict.id) says the incoming side won"]
            }
            if !carries(conflict.incoming.row) {
                return ["\(place): conflict \(conflict.id) lost a different image: \(describe(conflict.incoming.row))"]
            }
            return []
        }
        let entry = entries[0]
        if entry.kind == "merge" {
            guard let conflict = conflicts.first, conflict.winner == "incoming", carries(conflict.incoming.row) else {
                return ["\(place): merged at seq \(entry.seq) without a won conflict carrying its image"]
            }
            return []
        }
        if !carries(entry.row) || entry.op != write.op {
            return ["\(place): its log entry seq \(entry.seq) is \(entry.op) \(describe(entry.row))"]
        }
        if let conflict = conflicts.first, conflict.winner != "incoming" {
            return ["\(place): in the log at seq \(entry.seq), but conflict \(conflict.id) says it lost"]
        }
        return []
    }

    // MARK: - (d) nothing applied twice

    /// Per region, from the hooks' records, telling the pulls' apply transactions from the verdicts' (a verdict's
    /// transaction removes outbox rows; it writes winner images, at an equal version too, and releases deferred
    /// entries):
    /// * a key's recorded version never goes back, and outside a verdict never repeats: each write of
    ///   `starling.versions` records the seq the region now holds, so an entry applied twice through the apply's
    ///   bookkeeping writes its seq again;
    /// * the pulls' applies wrote each row image at most as often as log entries of that key carry it (an entry
    ///   applied twice rewrites its image even when its version write is skipped); an apply delete counts
    ///   against the delete entries of its key;
    /// * a pull never wrote an image onto a row that already held it, unless several entries carry that image;
    /// * no apply, pull or verdict, wrote an image that neither a log entry nor the region's own capture holds.
    /// Not seen: an entry applied once by a pull and again by a verdict's release of deferred entries (the two
    /// are told apart by transaction only), and a double apply of an image the row already holds by a delete.
    func applyProblems(hub: HubSnapshot, regions: [RegionSnapshot]) -> [String] {
        var problems: [String] = []
        for region in regions where region.isInstrumented {
            // A repair is meant for its target region only.
            var carriers: [TableKey: [JSONObject?: [Int64]]] = [:]
            for entry in hub.entries where entry.kind != "repair" || entry.target == region.region {
                carriers[entry.tableKey, default: [:]][entry.row, default: []].append(entry.seq)
            }
            let verdicts = region.verdictTransactions
            var last: [TableKey: Int64] = [:]
            for write in region.versionWrites {
                let previous = max(last[write.tableKey] ?? 0, write.oldSeq ?? 0)
                if write.seq < previous || (write.seq == previous && !verdicts.contains(write.xid)) {
                    problems.append(
                        "(d) \(region.region) \(write.tableKey): version \(write.seq) recorded after \(previous) "
                            + "(seq \(write.seq) applied twice or out of order)")
                }
                last[write.tableKey] = max(previous, write.seq)
            }
            let (applied, unknown, rewrites) = appliedImages(region, carriers: carriers)
            for (tableKey, image) in rewrites {
                print(history(of: tableKey, in: region, hub: hub))
                problems.append(
                    "(d) \(region.region) \(tableKey): the apply wrote \(describe(image)) onto the row that "
                        + "already held "
                        + "it, and one log entry carries it (seqs \(carriers[tableKey]?[image] ?? [])): applied twice")
            }
            for (tableKey, images) in applied.sorted(by: { $0.key.description < $1.key.description }) {
                for (image, count) in images {
                    let seqs = carriers[tableKey]?[image] ?? []
                    if count > seqs.count {
                        print(history(of: tableKey, in: region, hub: hub))
                        problems.append(
                            "(d) \(region.region) \(tableKey): the apply wrote \(describe(image)) \(count) times, "
                                + "\(seqs.count) log entries carry it (seqs \(seqs)): applied twice")
                    }
                }
            }
            for (tableKey, image) in unknown {
                print(history(of: tableKey, in: region, hub: hub))
                problems.append(
                    "(d) \(region.region) \(tableKey): the apply wrote \(describe(image)), which no log entry carries")
            }
        }
        return problems
    }

    /// How often the pulls' applies wrote each image (nil: a delete) per key, and the images any apply wrote that
    /// no entry carries and the region did not capture. Restores are left out: when a local write commits while
    /// an apply waits on its row, the batch apply writes the entry, then puts the pending local image back in the
    /// same transaction (step 4 of `TableSQL.applyBatchFunctionSQL`). Such a pair (an apply write or delete
    /// followed in the same transaction by an apply write of one of the region's own captured images, or an
    /// apply write followed by an apply delete of the same row when the region captured a delete of the key)
    /// leaves nothing applied, so neither write counts. A double apply right before a restore is not seen.
    private func appliedImages(
        _ region: RegionSnapshot, carriers: [TableKey: [JSONObject?: [Int64]]]
    ) -> (counts: [TableKey: [JSONObject?: Int]], unknown: [(TableKey, JSONObject)], rewrites: [(TableKey, JSONObject)])
    {
        var ownImages: [TableKey: Set<JSONObject>] = [:]
        var ownDeletes = Set<TableKey>()
        for pushed in region.pushed.values {
            if let after = pushed.after { ownImages[pushed.tableKey, default: []].insert(after) }
            if pushed.op == "delete" { ownDeletes.insert(pushed.tableKey) }
        }
        let verdicts = region.verdictTransactions
        var applied: [TableKey: [JSONObject?: Int]] = [:]
        var unknown: [(TableKey, JSONObject)] = []
        var rewrites: [(TableKey, JSONObject)] = []
        var previous: [TableKey: RegionSnapshot.RowWrite] = [:]
        for write in region.rowWrites {
            defer { previous[write.tableKey] = write }
            guard write.isApply else { continue }
            let image: JSONObject? = write.op == "delete" ? nil : write.image
            let isOwn = ownImages[write.tableKey]?.contains(write.image) ?? false
            // A restore whose entry's write touched nothing: an entry deleting the key applied while a local insert
            // of it was uncommitted (a DELETE does not wait for an uncommitted row), then step 4 found the insert
            // committed and put its image back onto the row that holds it. Nothing was applied.
            if isOwn, let image, let before = previous[write.tableKey], !before.isApply, before.op != "delete",
                before.image == image
            {
                continue
            }
            // A pull writing the very image the row holds, carried by one entry only, applied that entry again
            // (a verdict may rewrite its winner at an equal version, by design).
            if let image, let before = previous[write.tableKey], before.op != "delete", before.image == image,
                !verdicts.contains(write.xid), (carriers[write.tableKey]?[image]?.count ?? 0) <= 1
            {
                rewrites.append((write.tableKey, image))
            }
            if let image, carriers[write.tableKey]?[image] == nil, !isOwn { unknown.append((write.tableKey, image)) }
            if let before = previous[write.tableKey], before.isApply, before.xid == write.xid {
                let isRestore =
                    write.op == "delete"
                    ? before.op != "delete" && ownDeletes.contains(write.tableKey) && write.image == before.image
                    : isOwn
                if isRestore {
                    if !verdicts.contains(before.xid) {
                        applied[write.tableKey, default: [:]][before.op == "delete" ? nil : before.image, default: 0] -=
                            1
                    }
                    continue
                }
            }
            if !verdicts.contains(write.xid) { applied[write.tableKey, default: [:]][image, default: 0] += 1 }
        }
        return (applied, unknown, rewrites)
    }

    /// For a failure: everything known about one key, in the region (row and version writes) and at the hub
    /// (entries, conflicts), one line each.
    func history(of tableKey: TableKey, in region: RegionSnapshot, hub: HubSnapshot) -> String {
        var lines = ["oracle: history of \(tableKey) in \(region.region):"]
        for write in region.rowWrites where write.tableKey == tableKey {
            lines.append("  row \(write.op)\(write.isApply ? " (apply)" : "") \(describe(write.image))")
        }
        for write in region.versionWrites where write.tableKey == tableKey {
            lines.append("  version \(write.oldSeq.map(String.init) ?? "-") -> \(write.seq)")
        }
        for pushed in region.pushed.values.sorted(by: { $0.id < $1.id }) where pushed.tableKey == tableKey {
            lines.append(
                "  pushed \(region.region):\(pushed.id) \(pushed.op) base \(pushed.base) hlc \(pushed.hlc ?? -1) "
                    + describe(pushed.after))
        }
        for entry in hub.entries where entry.tableKey == tableKey {
            lines.append(
                "  hub seq \(entry.seq) \(entry.kind) \(entry.op) \(entry.changeID) hlc \(entry.hlc) "
                    + "rewritten \(entry.rewritten) \(describe(entry.row))")
        }
        for conflict in hub.conflicts.values.sorted(by: { $0.id < $1.id }) where conflict.tableKey == tableKey {
            lines.append(
                "  conflict \(conflict.id) \(conflict.policy) \(conflict.status)/\(conflict.winner) incoming "
                    + "\(conflict.incoming.id) base \(conflict.incoming.base) "
                    + "\(describe(conflict.incoming.row)) vs seq "
                    + "\(conflict.current.seq)")
        }
        return lines.joined(separator: "\n")
    }
}
