public import StarlingCore
public import StarlingPostgres

/// The agent's work on the region's database, one blocking function per step of the loop: read a push
/// batch, stamp it with HLCs, act on the hub's verdicts, apply a pulled batch. Every function takes the
/// connection it runs on (the agent's dedicated `PostgresWorker` thread, or a test's own connection) and
/// keeps its invariants inside one transaction; nothing is cached between calls, so a crash at any point
/// resumes from what the database holds.
public struct AgentStore: Sendable {
    /// This region's name: the prefix of change ids and the origin of versions it records for itself.
    public let region: String

    public init(region: String) {
        self.region = region
    }

    /// The pull cursor and the last HLC.
    public func state(connection: PostgresConnection) throws -> (cursor: Int64, lastHLC: Int64) {
        let row = try connection.query("SELECT cursor, last_hlc FROM starling.state", name: "agent.state")[0]
        return (try row.int64("cursor"), try row.int64("last_hlc"))
    }

    /// Rows waiting in the outbox.
    public func outboxDepth(connection: PostgresConnection) throws -> Int {
        Int(try connection.query("SELECT count(*) AS n FROM starling.outbox", name: "agent.outbox.depth")[0].int64("n"))
    }

    // MARK: - Push side

    private static let outboxColumns = """
        id, tx, table_name, op, key::text AS key, before::text AS before, after::text AS after, base,
        captured_at, hlc
        """

    /// The next push batch: whole origin transactions in `id` order within the bounds (see
    /// ``OutboxBatcher``). Empty when the outbox is.
    public func nextBatch(connection: PostgresConnection, maxCount: Int, maxBytes: Int) throws -> [OutboxChange] {
        let page = try connection.query(
            "SELECT \(Self.outboxColumns) FROM starling.outbox ORDER BY id LIMIT $1", [.int(maxCount)],
            name: "agent.outbox.page")
        var rows = try page.map(Self.outboxChange)
        guard let last = rows.last else { return [] }
        // Rows of the page's transactions beyond the page (a transaction cut by the limit, or interleaved
        // with others): a committed transaction's rows are all visible at once.
        let transactions = Array(Set(rows.map(\.tx)))
        let rest = try connection.query(
            "SELECT \(Self.outboxColumns) FROM starling.outbox WHERE tx = ANY($1::bigint[]) AND id > $2 ORDER BY id",
            [.int64Array(transactions), .int64(last.id)], name: "agent.outbox.rest")
        rows += try rest.map(Self.outboxChange)
        return OutboxBatcher.select(rows, maxCount: maxCount, maxBytes: maxBytes)
    }

    /// Stamps rows that have no HLC yet with `max(captured_at, last + 1)` (in `id` order) and persists both
    /// the stamps and the clock, so a re-push after a crash sends the very same change. Returns the wire
    /// changes.
    public func prepare(_ batch: [OutboxChange], connection: PostgresConnection) throws -> [Change] {
        try connection.transaction(name: "agent.hlc") { connection in
            let row = try connection.query(
                "SELECT last_hlc FROM starling.state FOR UPDATE", name: "agent.hlc.lock")[0]
            var clock = HybridLogicalClock(seed: try row.int64("last_hlc"))
            var stamped = batch
            var ids: [Int64?] = []
            var stamps: [Int64?] = []
            for index in stamped.indices where stamped[index].hlc == nil {
                let stamp = clock.tick(nowMicros: stamped[index].capturedAt)
                stamped[index].hlc = stamp
                ids.append(stamped[index].id)
                stamps.append(stamp)
            }
            if !ids.isEmpty {
                try connection.query(
                    """
                    UPDATE starling.outbox o SET hlc = u.hlc
                    FROM unnest($1::bigint[], $2::bigint[]) AS u(id, hlc) WHERE o.id = u.id
                    """, [.int64Array(ids), .int64Array(stamps)], name: "agent.hlc.stamp")
                try connection.query(
                    "UPDATE starling.state SET last_hlc = greatest(last_hlc, $1), updated_at = now()",
                    [.int64(clock.last)], name: "agent.hlc.save")
            }
            return try stamped.map { row throws in try row.change(region: region) }
        }
    }

    /// Acts on the hub's verdicts for `changes` (same order, same ids), in one transaction: each change
    /// leaves the outbox; `accepted` records the key's version; `merged` and `rejected` apply the returned
    /// image (and its version) unless a newer local change of the key is still pending.
    public func handleVerdicts(_ verdicts: [Verdict], for changes: [Change], connection: PostgresConnection)
        throws -> VerdictSummary
    {
        guard verdicts.count == changes.count, zip(verdicts, changes).allSatisfy({ $0.id == $1.id }) else {
            throw AgentError(
                code: .invalidResponse,
                message: "the hub answered \(verdicts.count) verdicts for \(changes.count) changes, or out of order")
        }
        return try connection.transaction(name: "agent.verdicts") { connection in
            var summary = VerdictSummary()
            let tables = try installedTables(connection: connection)
            for (verdict, change) in zip(verdicts, changes) {
                let outboxID = Int64(change.id.split(separator: ":").last ?? "") ?? -1
                try connection.query(
                    "DELETE FROM starling.outbox WHERE id = $1", [.int64(outboxID)], name: "agent.verdict.delete")
                switch verdict.outcome {
                case .accepted(let seq):
                    summary.accepted += 1
                    try recordVersion(table: change.table, key: change.key, seq: seq, connection: connection)
                case .merged(let seq, let row):
                    summary.merged += 1
                    let status = try applyImage(
                        table: change.table, key: change.key, row: row, seq: seq, origin: region, tables: tables,
                        deadLetter: verdict.json, connection: connection)
                    summary.count(status)
                case .rejected(_, let winner):
                    summary.rejected += 1
                    let status = try applyImage(
                        table: change.table, key: change.key, row: winner.row, seq: winner.seq,
                        origin: winner.origin, tables: tables, deadLetter: verdict.json, connection: connection)
                    summary.count(status)
                }
            }
            return summary
        }
    }

    /// Records `seq` as the key's version unless a newer one is already recorded.
    private func recordVersion(table: String, key: JSONObject, seq: Int64, connection: PostgresConnection) throws {
        try connection.query(
            """
            INSERT INTO starling.versions (table_name, key, seq, origin, last_sync_time)
            VALUES ($1, $2::jsonb, $3, $4, now())
            ON CONFLICT (table_name, key) DO UPDATE
            SET seq = EXCLUDED.seq, origin = EXCLUDED.origin, last_sync_time = EXCLUDED.last_sync_time
            WHERE starling.versions.seq < EXCLUDED.seq
            """, [.text(table), .text(Self.text(key)), .int64(seq), .text(region)], name: "agent.verdict.version")
    }

    // MARK: - Pull side

    /// Applies a pulled batch in one transaction (DESIGN.md "Agent rules"): per entry skip own
    /// non-rewritten entries, skip when the local version is ≥ its seq or a local change of the key is
    /// pending, else write the image and the version; an entry that fails goes to the dead letters and the
    /// batch goes on. Then the cursor moves from `after` to `next` and the clock observes the entries' HLCs.
    /// When the stored cursor is not `after` (the batch was applied already, or by someone else) nothing is
    /// written and `.stale` is returned: exactly-once.
    public func apply(_ entries: [LogEntry], after: Int64, next: Int64, connection: PostgresConnection) throws
        -> ApplySummary
    {
        try connection.transaction(name: "agent.apply") { connection in
            let cursor = try connection.query(
                "SELECT cursor FROM starling.state FOR UPDATE", name: "agent.apply.cursor")[0].int64("cursor")
            guard cursor == after else { return ApplySummary(isStale: true) }
            let tables = try installedTables(connection: connection)
            var summary = ApplySummary()
            var maxHLC: Int64 = 0
            for entry in entries {
                maxHLC = max(maxHLC, entry.hlc)
                if entry.origin == region && !entry.rewritten {
                    summary.skippedOwn += 1
                    continue
                }
                let status = try applyImage(
                    table: entry.table, key: entry.key, row: entry.row, seq: entry.seq, origin: entry.origin,
                    tables: tables, deadLetter: entry.json, connection: connection)
                summary.count(status)
            }
            try connection.query(
                """
                UPDATE starling.state SET cursor = $1, last_hlc = greatest(last_hlc, $2), updated_at = now()
                """, [.int64(next), .int64(maxHLC)], name: "agent.apply.cursorSave")
            return summary
        }
    }

    /// Runs the table's generated apply function; a failure (or a table not synced here) becomes a dead
    /// letter holding `deadLetter`.
    private func applyImage(
        table: String, key: JSONObject, row: JSONObject?, seq: Int64, origin: String, tables: Set<String>,
        deadLetter: JSONValue, connection: PostgresConnection
    ) throws -> ApplyStatus {
        guard tables.contains(table) else {
            try recordDeadLetter(
                deadLetter, seq: seq, table: table, sqlState: nil, error: "table \(table) is not synced in this region",
                connection: connection)
            return .failed
        }
        let function = try TableSQL(shape: TableShape(name: table, columns: [], key: [])).applyFunction
        let result = try connection.query(
            "SELECT status, error_state, error_message FROM \(function)($1::jsonb, $2::jsonb, $3, $4)",
            [.text(Self.text(key)), row.map { .text(Self.text($0)) } ?? .null, .int64(seq), .text(origin)],
            name: "agent.apply.entry")[0]
        switch try result.string("status") {
        case "applied": return .applied
        case "version": return .skippedVersion
        case "pending": return .skippedPending
        default:
            try recordDeadLetter(
                deadLetter, seq: seq, table: table, sqlState: try result.optionalString("error_state"),
                error: try result.optionalString("error_message") ?? "apply failed", connection: connection)
            return .failed
        }
    }

    private func recordDeadLetter(
        _ entry: JSONValue, seq: Int64, table: String, sqlState: String?, error: String,
        connection: PostgresConnection
    ) throws {
        try connection.query(
            """
            INSERT INTO starling.dead_letters (seq, table_name, entry, sqlstate, error)
            VALUES ($1, $2, $3::json, $4, $5)
            """,
            [.int64(seq), .text(table), .text(entry.canonicalText), .optionalText(sqlState), .text(error)],
            name: "agent.deadLetter.insert")
    }

    private func installedTables(connection: PostgresConnection) throws -> Set<String> {
        let rows = try connection.query("SELECT table_name FROM starling.synced_tables", name: "agent.tables")
        return Set(try rows.map { row throws in try row.string("table_name") })
    }

    // MARK: - Dead letters

    /// Dead letters not yet reported to the hub, oldest first.
    public func unreportedDeadLetters(limit: Int, connection: PostgresConnection) throws -> [DeadLetter] {
        let rows = try connection.query(
            """
            SELECT id, seq, table_name, entry::text AS entry, sqlstate, error FROM starling.dead_letters
            WHERE reported_at IS NULL ORDER BY id LIMIT $1
            """, [.int(limit)], name: "agent.deadLetter.unreported")
        return try rows.map { row throws in
            DeadLetter(
                id: try row.int64("id"), seq: try row.int64("seq"), table: try row.string("table_name"),
                entry: try JSONValue(parsing: try row.string("entry")), sqlState: try row.optionalString("sqlstate"),
                error: try row.string("error"))
        }
    }

    /// Marks dead letters as reported.
    public func markReported(_ ids: [Int64], connection: PostgresConnection) throws {
        try connection.query(
            "UPDATE starling.dead_letters SET reported_at = now() WHERE id = ANY($1::bigint[])",
            [.int64Array(ids.map { $0 })], name: "agent.deadLetter.reported")
    }

    // MARK: - Helpers

    /// Canonical JSON text of an object.
    static func text(_ object: JSONObject) -> String {
        JSONValue.object(object).canonicalText
    }

    static func outboxChange(_ row: PostgresRow) throws -> OutboxChange {
        let key = try row.string("key")
        let before = try row.optionalString("before")
        let after = try row.optionalString("after")
        func object(_ text: String?, _ what: String) throws -> JSONObject? {
            guard let text else { return nil }
            guard let object = try JSONValue(parsing: text).objectValue else {
                throw AgentError(code: .database, message: "outbox \(what) is not a JSON object")
            }
            return object
        }
        guard let op = ChangeOperation(rawValue: try row.string("op")) else {
            throw AgentError(code: .database, message: "outbox op is not insert, update or delete")
        }
        return OutboxChange(
            id: try row.int64("id"), tx: try row.int64("tx"), table: try row.string("table_name"), op: op,
            key: try object(key, "key") ?? [:], before: try object(before, "before"), after: try object(after, "after"),
            base: try row.int64("base"), capturedAt: try row.int64("captured_at"), hlc: try row.optionalInt64("hlc"),
            approximateBytes: 96 + key.utf8.count + (before?.utf8.count ?? 0) + (after?.utf8.count ?? 0))
    }
}

/// What applying one image did.
public enum ApplyStatus: Sendable, Hashable {
    case applied
    case skippedVersion
    case skippedPending
    case failed
}

/// Counts of one applied batch.
public struct ApplySummary: Sendable, Hashable {
    /// The stored cursor was not the batch's `after`: nothing was applied.
    public var isStale = false
    public var applied = 0
    public var skippedOwn = 0
    public var skippedVersion = 0
    public var skippedPending = 0
    public var deadLettered = 0

    public init(isStale: Bool = false) {
        self.isStale = isStale
    }

    mutating func count(_ status: ApplyStatus) {
        switch status {
        case .applied: applied += 1
        case .skippedVersion: skippedVersion += 1
        case .skippedPending: skippedPending += 1
        case .failed: deadLettered += 1
        }
    }
}

/// Counts of one batch of verdicts.
public struct VerdictSummary: Sendable, Hashable {
    public var accepted = 0
    public var merged = 0
    public var rejected = 0
    /// Returned images written locally.
    public var imagesApplied = 0
    /// Returned images skipped: a newer local change is pending, or the local version is already newer.
    public var imagesSkipped = 0
    public var deadLettered = 0

    public init() {}

    mutating func count(_ status: ApplyStatus) {
        switch status {
        case .applied: imagesApplied += 1
        case .skippedVersion, .skippedPending: imagesSkipped += 1
        case .failed: deadLettered += 1
        }
    }
}

/// An entry (or verdict image) that could not be applied, as stored in `starling.dead_letters`.
public struct DeadLetter: Sendable, Hashable {
    /// Local id (`dead_letters.id`): with the region, the hub's idempotency key.
    public var id: Int64
    public var seq: Int64
    public var table: String
    /// The log entry (or verdict) as received.
    public var entry: JSONValue
    public var sqlState: String?
    public var error: String

    public init(id: Int64, seq: Int64, table: String, entry: JSONValue, sqlState: String?, error: String) {
        self.id = id
        self.seq = seq
        self.table = table
        self.entry = entry
        self.sqlState = sqlState
        self.error = error
    }

    /// `{"id":N,"seq":N,"table":…,"entry":{…},"sqlstate":…|null,"error":…}`.
    public var json: JSONValue {
        .object([
            "id": .integer(id), "seq": .integer(seq), "table": .string(table), "entry": entry,
            "sqlstate": sqlState.map(JSONValue.string) ?? .null, "error": .string(error),
        ])
    }
}
