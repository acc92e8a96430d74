import Prometheus
import StarlingPostgres
import Synchronization

/// Log retention, so the log does not grow forever: the log is partitioned by seq range
/// (`Migrations/hub/0003_partitioned_log.sql`), partitions are created ahead by the sequencer
/// (``LogPartitioner``) and dropped here, whole, when
///
/// 1. every seq of the partition is at or below the pull cursor of every *active* region (one that pulled
///    within `retention.inactive_after`; a region that never pulled or went quiet does not hold the log back:
///    it gets `410 cursor_pruned` when it returns and re-bootstraps from a snapshot), and
/// 2. its newest entry is older than `retention.window`.
///
/// Partitions go oldest first and the first one that must stay stops the round, so "every seq up to
/// `pruned_through` is gone" stays true (`starling_hub.retention`). Dropping a partition is a catalog change:
/// no row-by-row delete, no vacuum debt.
///
/// Idempotency across pruning: the log's change_id index can no longer be unique (a unique index of a
/// partitioned table must include seq), so the sequencer, the single writer behind its advisory lock, looks
/// every pushed id up before writing (``SequencerWriter``). For ids whose entry was pruned, the drop records a
/// compact watermark per origin in the same transaction (`pruned_changes`: the largest local outbox id and
/// seq among the origin's dropped change/merge entries). A re-pushed id at or below the watermark that is no
/// longer in the log is answered `accepted` with the watermark's seq and never stored again. That seq is only a
/// bound, which is safe because a region re-pushes only changes whose verdict it never saw, it never pulls
/// past such a change before it has the verdict, so the change's seq lies above its cursor: a pruned one means
/// its cursor is below the retained log, and the region re-bootstraps from the snapshot right after pushing,
/// replacing the key's image and version with the head. Refusing instead would wedge that region's outbox.
/// The one imprecision: a change whose outbox id is below the watermark but that was captured after the
/// watermark's change was pruned (a transaction open longer than the retention window) would be taken as a
/// duplicate.
///
/// Threads: ``prune(connection:minCursor:)`` and ``refreshFigures(connection:head:)`` run on a read-pool
/// thread from the hub's background loop; ``prunedThrough`` is read by pull handlers (atomic).
final class LogRetention: Sendable {
    let settings: HubSettings.Retention
    private let pruned = Atomic<Int64>(0)
    private let oldestGauge: Gauge
    private let entriesGauge: Gauge
    private let bytesGauge: Gauge
    private let partitionsGauge: Gauge
    private let droppedCounter: Counter
    private let prunedEntriesCounter: Counter

    init(settings: HubSettings.Retention, metrics: HubMetrics) {
        self.settings = settings
        let registry = metrics.registry
        oldestGauge = registry.makeGauge(
            descriptor: HubMetrics.name("hub", "log_oldest_retained", "seq", "Oldest seq still in the log."))
        entriesGauge = registry.makeGauge(
            descriptor: HubMetrics.name("hub", "log", "entries", "Entries in the log (head minus pruned)."))
        bytesGauge = registry.makeGauge(
            descriptor: HubMetrics.name("hub", "log_size", "bytes", "On-disk size of the log's partitions."))
        partitionsGauge = registry.makeGauge(
            descriptor: HubMetrics.name("hub", "log_partitions", "", "Partitions of the log."))
        droppedCounter = registry.makeCounter(
            descriptor: HubMetrics.name("hub", "log_partitions_dropped", "total", "Log partitions dropped."))
        prunedEntriesCounter = registry.makeCounter(
            descriptor: HubMetrics.name("hub", "log_entries_pruned", "total", "Log entries dropped by retention."))
    }

    /// Every seq at or below this has been dropped (0: none). A pull after a smaller seq gets 410.
    var prunedThrough: Int64 { pruned.load(ordering: .acquiring) }

    /// Loads `pruned_through` (at start).
    func load(connection: PostgresConnection) throws {
        let row = try connection.query(
            "SELECT pruned_through FROM starling_hub.retention", name: "retention.load")[0]
        pruned.store(try row.int64(0), ordering: .releasing)
    }

    /// The cursor below which the log may go: the smallest cursor of the regions that pulled within
    /// `inactive_after`, or `head` when none did.
    func minCursor(regions: [String], activity: [String: RegionActivity.Entry], head: Int64, nowMicros: Int64)
        -> Int64
    {
        let horizon = nowMicros - settings.inactiveAfterSeconds * 1_000_000
        var result = head
        for name in regions {
            guard let entry = activity[name], let pulled = entry.lastPullAt, pulled >= horizon else { continue }
            result = min(result, entry.cursor)
        }
        return result
    }

    /// Drops, oldest first, the partitions that are wholly at or below `minCursor` and whose newest entry is
    /// older than the window; stops at the first one that must stay. One transaction per partition, with a
    /// short lock timeout (a DROP waiting for its lock would queue the sequencer and pulls behind it).
    func prune(connection: PostgresConnection, minCursor: Int64) throws -> LogPruneOutcome {
        var outcome = LogPruneOutcome(prunedThrough: prunedThrough)
        while true {
            let candidates = try connection.query(
                "SELECT name, to_seq FROM starling_hub.log_partitions ORDER BY from_seq LIMIT 1",
                name: "retention.oldest")
            guard let candidate = candidates.first else { break }
            let name = try candidate.string(0)
            let toSeq = try candidate.int64(1)
            guard toSeq - 1 <= minCursor else { break }
            let partition = "starling_hub." + (try PostgresIdentifier.quoteName(name))
            let isOld = try connection.query(
                "SELECT coalesce((SELECT committed_at FROM \(partition) ORDER BY seq DESC LIMIT 1) "
                    + "< now() - $1 * interval '1 second', true)",
                [.int64(settings.windowSeconds)], name: "retention.age")[0].bool(0)
            guard isOld else { break }
            let entries = try drop(partition: partition, name: name, toSeq: toSeq, connection: connection)
            outcome.partitionsDropped += 1
            outcome.entriesDropped += entries
            outcome.prunedThrough = toSeq - 1
            pruned.store(toSeq - 1, ordering: .releasing)
            droppedCounter.increment()
            prunedEntriesCounter.increment(by: entries)
        }
        return outcome
    }

    /// Records the watermarks of one partition's changes, drops it and advances `pruned_through`, atomically.
    private func drop(partition: String, name: String, toSeq: Int64, connection: PostgresConnection) throws -> Int64 {
        try connection.transaction(name: "retention.drop") { connection in
            try connection.execute("SET LOCAL lock_timeout = '2s'", name: "retention.lockTimeout")
            // Change ids are "<region>:<outbox id>" (Change validates the region prefix); others are skipped.
            try connection.execute(
                "INSERT INTO starling_hub.pruned_changes (origin, max_local_id, max_seq) "
                    + "SELECT origin, max(substr(change_id, length(origin) + 2)::bigint), max(seq) FROM \(partition) "
                    + "WHERE kind IN ('change', 'merge') AND change_id ~ '^[A-Za-z0-9_-]+:[0-9]{1,18}$' "
                    + "AND starts_with(change_id, origin || ':') GROUP BY origin "
                    + "ON CONFLICT (origin) DO UPDATE SET "
                    + "max_local_id = greatest(starling_hub.pruned_changes.max_local_id, EXCLUDED.max_local_id), "
                    + "max_seq = greatest(starling_hub.pruned_changes.max_seq, EXCLUDED.max_seq)",
                name: "retention.watermarks")
            let entries = try connection.query("SELECT count(*) FROM \(partition)", name: "retention.count")[0]
                .int64(0)
            try connection.execute("DROP TABLE \(partition)", name: "retention.dropPartition")
            try connection.execute(
                "DELETE FROM starling_hub.log_partitions WHERE name = $1", [.text(name)],
                name: "retention.forgetPartition")
            try connection.execute(
                "UPDATE starling_hub.retention SET pruned_through = greatest(pruned_through, $1), "
                    + "partitions_dropped = partitions_dropped + 1, entries_dropped = entries_dropped + $2",
                [.int64(toSeq - 1), .int64(entries)], name: "retention.advance")
            return entries
        }
    }

    /// Sets the log gauges: oldest retained seq, entries (head minus pruned: seq is gap-free), partitions and
    /// their on-disk size (catalog sizes, no scan).
    func refreshFigures(connection: PostgresConnection, head: Int64) throws {
        let row = try connection.query(
            "SELECT count(*), coalesce(sum(pg_total_relation_size(format('starling_hub.%I', name)::regclass)), 0)::bigint "
                + "FROM starling_hub.log_partitions", name: "retention.figures")[0]
        let through = prunedThrough
        partitionsGauge.set(Double(try row.int64(0)))
        bytesGauge.set(Double(try row.int64(1)))
        oldestGauge.set(Double(through + 1))
        entriesGauge.set(Double(max(0, head - through)))
    }
}

/// Creates log partitions ahead of the sequencer. Confined to the sequencer's worker thread (a member of
/// ``SequencerWriter``): the sequencer is the only writer of new seqs, so it knows when it nears the end of
/// the last partition. Each partition is created with its `log_partitions` row in one short transaction,
/// outside the batch transaction (the CREATE takes a strong lock on the log that must not be held while a
/// batch commits).
struct LogPartitioner {
    let partitionEntries: Int64
    /// The exclusive upper bound of the newest partition (0: not loaded).
    private(set) var coveredThrough: Int64 = 0

    init(partitionEntries: Int64) {
        self.partitionEntries = partitionEntries
    }

    /// Reloads the newest bound (after the sequencer lock was taken).
    mutating func load(connection: PostgresConnection) throws {
        coveredThrough = try connection.query(
            "SELECT coalesce((SELECT max(to_seq) FROM starling_hub.log_partitions), "
                + "(SELECT pruned_through + 1 FROM starling_hub.retention))", name: "partitions.load")[0].int64(0)
    }

    /// Ensures partitions cover every seq up to `lastSeq` plus one spare partition.
    mutating func ensure(through lastSeq: Int64, connection: PostgresConnection) throws {
        while coveredThrough <= lastSeq + partitionEntries {
            let from = coveredThrough
            let to = from + partitionEntries
            let name = Self.name(from: from)
            try connection.transaction(name: "partitions.create") { connection in
                try connection.execute(
                    "CREATE TABLE IF NOT EXISTS starling_hub.\(try PostgresIdentifier.quoteName(name)) PARTITION OF "
                        + "starling_hub.log FOR VALUES FROM (\(from)) TO (\(to))", name: "partitions.create")
                try connection.execute(
                    "INSERT INTO starling_hub.log_partitions (name, from_seq, to_seq) VALUES ($1, $2, $3) "
                        + "ON CONFLICT (name) DO NOTHING", [.text(name), .int64(from), .int64(to)],
                    name: "partitions.record")
            }
            coveredThrough = to
        }
    }

    /// `log_p` and the first seq in 19 digits, so names sort like ranges.
    static func name(from: Int64) -> String {
        let digits = String(from)
        return "log_p" + String(repeating: "0", count: max(0, 19 - digits.count)) + digits
    }
}

/// The compact idempotency record of pruned changes (see ``LogRetention``), read by the sequencer per batch.
enum PrunedChanges {
    /// Origin → (largest pruned local id, largest pruned seq).
    static func load(connection: PostgresConnection) throws -> [String: (localID: Int64, seq: Int64)] {
        var result: [String: (localID: Int64, seq: Int64)] = [:]
        for row in try connection.query(
            "SELECT origin, max_local_id, max_seq FROM starling_hub.pruned_changes", name: "sequencer.pruned")
        {
            result[try row.string(0)] = (try row.int64(1), try row.int64(2))
        }
        return result
    }
}

/// What one pruning round did (``Hub/pruneLog()``).
public struct LogPruneOutcome: Sendable, Hashable {
    public var partitionsDropped = 0
    public var entriesDropped: Int64 = 0
    /// Every seq at or below this is gone.
    public var prunedThrough: Int64 = 0
}
