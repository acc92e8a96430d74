import Foundation
import StarlingCore
import StarlingPostgres

/// The correctness oracles of a converged end-to-end or fault run. Each check compares what the
/// system ended with against an independent account, never the regions only with each other:
///
/// * (a) `regionsMatchHeads`: every region's rows equal the hub's heads, key by key (a tombstone or no head: no
///   row), and every region holds the head's seq as the key's version.
/// * (b) `replayProblems`: the hub's log replayed in seq order through the pure `ConflictResolver`, fed with the
///   changes exactly as the agents pushed them (recorded by a test hook on `starling.outbox`), reproduces every
///   log entry, every recorded conflict (winner, status, both sides) and every head.
/// * (c) `accountingProblems`: each committed workload write is matched one to one to the change the agent
///   captured for it (by its unique token, or in order for deletes), and that change has exactly one decision:
///   one log entry carrying its value, or the losing side of exactly one recorded conflict.
/// * (d) `applyProblems`: no entry applied twice in a region: a key's recorded versions only grow, no version is
///   recorded twice, and the apply wrote no image more often than log entries carry it.
/// * (e) `boundProblems`: each region committed at least N writes, failed transactions stay under a share, at
///   least M conflicts were recorded.
///
/// Every message names the region (or the hub), the table and the key.
struct ConvergenceOracle {
    /// Lower bounds on the work a run must have done, so an idle run cannot pass.
    struct Bounds: Sendable {
        var minWritesPerRegion = 1
        var minConflicts = 1
        /// Failed workload transactions may be at most this share of each region's attempts.
        var maxFailedShare = 0.25
    }

    let deployment: Deployment
    /// Regions whose Postgres was stopped with `-m immediate` during the run: a change's HLC stamp, committed
    /// asynchronously, may have been pushed and logged, then lost and stamped again (see `replayProblems`).
    var immediatelyStopped: Set<String> = []

    /// Reads hub and regions once and runs every check; empty when everything holds.
    /// `histories`: for that many keys the heads oracle reports, the key's whole history is printed.
    func check(_ run: WorkloadRun?, bounds: Bounds? = nil, histories: Int = 0) async throws -> [String] {
        let (hub, regions) = try await snapshots()
        print(
            "oracle: hub \(hub.entries.count) entries, \(hub.heads.count) heads, \(hub.conflicts.count) conflicts, "
                + "\(hub.decisions.count) rejections; regions: "
                + regions.map {
                    "\($0.region) \($0.rowCount) rows, \($0.pushed.count) pushed, \($0.versionWrites.count) version "
                        + "writes, \($0.rowWrites.filter(\.isApply).count) applied row writes"
                }.joined(separator: "; "))
        var problems = regionsMatchHeads(hub: hub, regions: regions)
        if histories > 0 {
            for region in regions {
                let keys = Set(region.mismatches.map(\.tableKey))
                for tableKey in keys.sorted(by: { $0.description < $1.description }).prefix(histories) {
                    print(history(of: tableKey, in: region, hub: hub))
                }
            }
        }
        problems += replayProblems(hub: hub, regions: regions)
        problems += applyProblems(hub: hub, regions: regions)
        if let run {
            problems += accountingProblems(run, hub: hub, regions: regions)
            if let bounds { problems += boundProblems(run, bounds: bounds, hub: hub) }
        }
        return problems
    }

    /// (a) alone, reading only heads and rows: what `Deployment.waitForConvergence` requires of every test.
    func headProblems() async throws -> [String] {
        let (hub, regions) = try await snapshots(headsOnly: true)
        return regionsMatchHeads(hub: hub, regions: regions)
    }

    /// The hub's snapshot and every region's (`headsOnly`: heads and rows, no log, conflicts or hook records).
    func snapshots(headsOnly: Bool = false) async throws -> (HubSnapshot, [RegionSnapshot]) {
        let tables = deployment.tables.map(\.name)
        let keyColumns = try await deployment.sql("hub") { connection in
            var columns: [String: [String]] = [:]
            for row in try connection.query(
                "SELECT table_name, array_to_json(key_columns)::text FROM starling_hub.table_shapes")
            {
                let names = try JSONValue(parsing: try row.string(1)).arrayValue?.compactMap(\.stringValue) ?? []
                columns[try row.string(0)] = names
            }
            return columns
        }
        let hub = try await deployment.sql("hub") { try HubSnapshot.read($0, tables: tables, headsOnly: headsOnly) }
        let heads = hub.heads
        var regions: [RegionSnapshot] = []
        for region in deployment.regions {
            regions.append(
                try await deployment.sql(region) {
                    try RegionSnapshot.read(
                        $0, region: region, tables: tables, keyColumns: keyColumns, heads: heads, rowsOnly: headsOnly)
                })
        }
        return (hub, regions)
    }

    // MARK: - (a) regions equal the heads

    /// Every region's rows equal the hub's heads: a live head's image as the row, no row for a tombstone or a key
    /// without head (compared in the region's database, see `RegionSnapshot.compare`); and the region's version of
    /// every live key is the head's seq.
    func regionsMatchHeads(hub: HubSnapshot, regions: [RegionSnapshot]) -> [String] {
        var problems: [String] = []
        for region in regions {
            var differing = Set<TableKey>()
            for mismatch in region.mismatches.sorted(by: { $0.tableKey.description < $1.tableKey.description }) {
                differing.insert(mismatch.tableKey)
                let head = hub.heads[mismatch.tableKey]
                let headText =
                    head.map { "seq \($0.seq) from \($0.origin): \(mismatch.headRow ?? "(deleted)")" } ?? "no head"
                problems.append(
                    "(a) \(region.region) \(mismatch.tableKey): region has \(mismatch.regionRow ?? "no row"), "
                        + "hub head \(headText)")
            }
            for (tableKey, head) in hub.heads.sorted(by: { $0.key.description < $1.key.description })
            where head.row != nil && !differing.contains(tableKey) {
                if let version = region.versions[tableKey], version != head.seq {
                    problems.append(
                        "(a) \(region.region) \(tableKey): row equals the head but the region's version is \(version), "
                            + "the head's seq \(head.seq)")
                }
            }
        }
        return problems
    }

    // MARK: - (e) lower bounds

    /// Each region committed at least `minWritesPerRegion` writes with at most `maxFailedShare` of its
    /// transactions failed, and the hub recorded at least `minConflicts` conflicts.
    func boundProblems(_ run: WorkloadRun, bounds: Bounds, hub: HubSnapshot) -> [String] {
        var problems: [String] = []
        for region in deployment.regions {
            let written = run.writes.filter { $0.region == region }.count
            if written < bounds.minWritesPerRegion {
                problems.append("(e) \(region) committed \(written) writes, fewer than \(bounds.minWritesPerRegion)")
            }
            let attempts = run.attempts[region] ?? 0
            let failed = run.failures[region] ?? 0
            if attempts == 0 || Double(failed) > bounds.maxFailedShare * Double(attempts) {
                problems.append(
                    "(e) \(region): \(failed) of \(attempts) workload transactions failed (at most "
                        + "\(Int(bounds.maxFailedShare * 100)) % may): \(run.failureSamples[region] ?? [])")
            }
        }
        if hub.conflicts.count < bounds.minConflicts {
            problems.append("(e) the hub recorded \(hub.conflicts.count) conflicts, fewer than \(bounds.minConflicts)")
        }
        return problems
    }
}
