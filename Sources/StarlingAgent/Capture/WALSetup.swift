public import StarlingCore
public import StarlingPostgres

/// What WAL capture needs in the region's database, and its one-time setup: the replication origin that marks
/// the agent's own transactions, the publication of the synced tables (each with `REPLICA IDENTITY FULL`, so
/// updates and deletes carry the whole old row — the `before` image, and TOASTed values an update left
/// unchanged), and the `starling.wal_state` row. The slot itself is created on the replication connection
/// (``WALCapture``). Blocking, on the caller's connection.
public struct WALSetup: Sendable {
    public let region: String
    /// The region database's name: slots and origins are the cluster's, so two databases of one cluster (a
    /// demo, a test run) never share them.
    public let database: String

    public init(region: String, database: String) {
        self.region = region
        self.database = database
    }

    /// The replication origin marking the agent's own transactions: `starling/<database>/<region>` (origins are
    /// the cluster's and outlive a dropped database, so the name says whose it is).
    public var originName: String { "starling/\(database)/\(region)" }

    /// The origin of the agent's database connection (`index` 0) or of parallel apply worker `index`:
    /// `<originName>/apply-<index>` (a replication origin marks one session at a time).
    public func originName(worker index: Int) -> String { index == 0 ? originName : "\(originName)/apply-\(index)" }

    /// Whether a transaction's origin `name` is one of the agent's whose own origin is `agentOrigin`.
    public static func isOwn(origin name: String, agentOrigin: String) -> Bool {
        name == agentOrigin || name.hasPrefix(agentOrigin + "/apply-")
    }

    /// The current database's name (for ``init(region:database:)``).
    public static func databaseName(connection: PostgresConnection) throws -> String {
        try connection.query("SELECT current_database()::text AS name", name: "agent.wal.database")[0].string("name")
    }

    /// `starling_<region>_<hash of region and database>`: slot, publication and origin name (slot names allow
    /// `[a-z0-9_]`, 63 bytes).
    public var name: String {
        let cleaned = String(
            region.lowercased().unicodeScalars.prefix(40).map { scalar -> Character in
                ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) ? Character(scalar) : "_"
            })
        return "starling_\(cleaned)_\(TableSQL.fnv1a(region + "/" + database).prefix(12))"
    }

    /// How many of `wanted` apply connections (the agent's own among them) can each hold a replication origin: an
    /// origin a session used keeps one of the cluster's origin slots (`max_replication_slots`;
    /// `max_active_replication_origins` from PostgreSQL 18) until dropped. Counts the slots the cluster's other
    /// origins hold; at least 1. `wanted` when the role may not read `pg_replication_origin_status`.
    public func usableWorkers(_ wanted: Int, connection: PostgresConnection) -> Int {
        let free = try? connection.query(
            """
            SELECT coalesce(current_setting('max_active_replication_origins', true),
                            current_setting('max_replication_slots'))::int
                   - (SELECT count(*) FROM pg_replication_origin_status s
                      WHERE s.external_id <> $1 AND left(s.external_id, length($1) + 7) <> $1 || '/apply-') AS free
            """, [.text(originName)], name: "agent.wal.originSlots"
        ).first?.int64("free")
        guard let free else { return wanted }
        return max(1, min(wanted, Int(free)))
    }

    /// Drops this agent's worker origins from `workers` on (left by a run with more apply workers: each holds an
    /// origin slot), each on its own so that one still in use by a session (which stays) does not keep the others.
    public func dropWorkerOrigins(from workers: Int, connection: PostgresConnection) {
        let kept = Set((0..<max(1, workers)).map { originName(worker: $0) })
        let found = (try? connection.query(
            "SELECT roname::text AS name FROM pg_replication_origin WHERE starts_with(roname, $1)",
            [.text(originName + "/apply-")], name: "agent.wal.workerOrigins"
        ).map { row throws in try row.string("name") }) ?? []
        for name in found where !kept.contains(name) {
            _ = try? connection.query(
                "SELECT pg_replication_origin_drop($1)", [.text(name)], name: "agent.wal.dropWorkerOrigin")
        }
    }

    /// Why WAL capture cannot run here, each reason naming the setting or grant and the fix; empty when it can.
    public func missingPrerequisites(connection: PostgresConnection) throws -> [String] {
        let row = try connection.query(
            """
            SELECT current_setting('wal_level') AS wal_level,
                   (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user) AS replication,
                   current_setting('max_replication_slots')::int AS max_slots,
                   (SELECT count(*) FROM pg_replication_slots)::int AS slots,
                   EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1) AS has_slot,
                   current_setting('max_wal_senders')::int AS max_senders,
                   (SELECT count(*) FROM pg_stat_replication)::int AS senders,
                   has_function_privilege('pg_replication_origin_session_setup(text)', 'EXECUTE') AS origin
            """, [.text(name)], name: "agent.wal.prerequisites")[0]
        var missing: [String] = []
        let level = try row.string("wal_level")
        if level != "logical" {
            missing.append(
                "wal_level is \(level): set wal_level = logical in postgresql.conf and restart PostgreSQL")
        }
        if !(try row.bool("replication")) {
            missing.append("the agent's role lacks the REPLICATION attribute: ALTER ROLE <role> REPLICATION")
        }
        if !(try row.bool("origin")) {
            missing.append(
                "the agent's role may not call pg_replication_origin_session_setup: GRANT EXECUTE ON FUNCTION "
                    + "pg_replication_origin_session_setup(text), pg_replication_origin_create(text) TO <role>")
        }
        if !(try row.bool("has_slot")), try row.int64("slots") >= (try row.int64("max_slots")) {
            missing.append(
                "no free replication slot (max_replication_slots = \(try row.int64("max_slots")), all used): "
                    + "raise max_replication_slots or drop an unused slot")
        }
        if try row.int64("senders") >= (try row.int64("max_senders")) {
            missing.append(
                "no free WAL sender (max_wal_senders = \(try row.int64("max_senders")), all used): raise max_wal_senders")
        }
        return missing
    }

    /// Creates what is missing (origin, publication, identity, state row), in one transaction, and sets the
    /// publication's tables to exactly `tables`. `switching`: the region captured with triggers until now (its
    /// state row starts in the switching phase). Returns the state as stored.
    /// `workers`: the apply connections, each with an origin of its own (``originName(worker:)``).
    public func prepare(
        tables: [TableShape], switching: Bool, workers: Int = 1, connection: PostgresConnection
    ) throws -> WALState {
        try connection.transaction(name: "agent.wal.prepare") { connection in
            try connection.query(
                "SELECT pg_advisory_xact_lock(hashtextextended('starling.install', 0))", name: "agent.install.lock")
            try connection.query(
                """
                SELECT pg_replication_origin_create(name) FROM unnest($1::text[]) AS name
                WHERE NOT EXISTS (SELECT 1 FROM pg_replication_origin WHERE roname = name)
                """, [.textArray((0..<max(1, workers)).map { originName(worker: $0) })], name: "agent.wal.origin")
            let quotedTables = try tables.map { try PostgresIdentifier.quote($0.name) }
            for table in quotedTables {
                let identity = try connection.query(
                    "SELECT relreplident::text AS identity FROM pg_class WHERE oid = to_regclass($1)",
                    [.text(table)], name: "agent.wal.identity")
                if try identity.first?.string("identity") != "f" {
                    try connection.execute("ALTER TABLE \(table) REPLICA IDENTITY FULL")
                }
            }
            let publication = try PostgresIdentifier.quoteName(name)
            let exists = try connection.query(
                "SELECT 1 FROM pg_publication WHERE pubname = $1", [.text(name)], name: "agent.wal.publication")
            let list = quotedTables.joined(separator: ", ")
            if exists.isEmpty {
                try connection.execute(
                    list.isEmpty ? "CREATE PUBLICATION \(publication)" : "CREATE PUBLICATION \(publication) FOR TABLE \(list)")
            } else if !list.isEmpty {
                try connection.execute("ALTER PUBLICATION \(publication) SET TABLE \(list)")
            }
            let rows = try connection.query(
                """
                INSERT INTO starling.wal_state (slot, publication, switching) VALUES ($1, $1, $2)
                ON CONFLICT (id) DO UPDATE SET slot = EXCLUDED.slot, publication = EXCLUDED.publication
                RETURNING resume_lsn::text AS resume_lsn, ledger::text AS ledger, hlc, switching
                """, [.text(name), .bool(switching)], name: "agent.wal.state")
            return try WALState(row: rows[0], name: name)
        }
    }

    /// The stored state, nil when this region never captured from the WAL.
    public static func load(connection: PostgresConnection, name: String) throws -> WALState? {
        let present = try connection.query(
            "SELECT to_regclass('starling.wal_state') IS NOT NULL AS present", name: "agent.wal.present")
        guard try present[0].bool("present") else { return nil }
        let rows = try connection.query(
            "SELECT resume_lsn::text AS resume_lsn, ledger::text AS ledger, hlc, switching FROM starling.wal_state",
            name: "agent.wal.load")
        return try rows.first.map { row throws in try WALState(row: row, name: name) }
    }

    /// Records where decoding resumes and the ledger there (before the slot confirms that position).
    public static func save(
        resume: LSN, ledger: CaptureLedger, switching: Bool, hlc: Int64, connection: PostgresConnection
    ) throws {
        try connection.query(
            """
            UPDATE starling.wal_state
            SET resume_lsn = $1::pg_lsn, ledger = $2::jsonb, switching = $3, hlc = $4, updated_at = now()
            """, [.text(resume.description), .text(ledger.text), .bool(switching), .int64(hlc)],
            name: "agent.wal.save")
    }

    /// Whether any synced table still has its capture trigger (the region captured with triggers).
    public static func hasCaptureTriggers(connection: PostgresConnection) throws -> Bool {
        try connection.query(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = $1 AND NOT tgisinternal) AS present",
            [.text(TableSQL.captureTrigger)], name: "agent.wal.triggers")[0].bool("present")
    }

    /// Ends trigger capture when the outbox is empty: in one transaction, locks the synced tables against
    /// writes (SHARE ROW EXCLUSIVE, waiting at most `lockTimeout`), and if no outbox row is left drops the
    /// capture triggers and writes the switch marker, so every application transaction committed before this
    /// one went through the outbox and every later one is decoded. Returns false (nothing changed) when rows
    /// are left in the outbox; they are pushed first.
    public func finishSwitch(tables: [String], connection: PostgresConnection) throws -> Bool {
        try connection.transaction(name: "agent.wal.switch") { connection in
            let quoted = try tables.map { try PostgresIdentifier.quote($0) }
            if !quoted.isEmpty {
                try connection.execute("SET LOCAL lock_timeout = '\(TableSQL.applyLockTimeout)'")
                try connection.execute("LOCK TABLE \(quoted.joined(separator: ", ")) IN SHARE ROW EXCLUSIVE MODE")
            }
            let left = try connection.query("SELECT EXISTS (SELECT 1 FROM starling.outbox) AS left", name: "agent.wal.outboxLeft")
            if try left[0].bool("left") { return false }
            let trigger = try PostgresIdentifier.quoteName(TableSQL.captureTrigger)
            for table in quoted { try connection.execute("DROP TRIGGER IF EXISTS \(trigger) ON \(table)") }
            try connection.query(
                "SELECT pg_logical_emit_message(true, $1, '{\"switch\":true}')::text AS lsn",
                [.text(CaptureLedger.Marker.prefix)], name: "agent.wal.switchMarker")
            return true
        }
    }

    /// Drops the slot `name` (when no agent streams from it), the publication and the origin; for uninstall.
    public static func remove(name: String, connection: PostgresConnection) throws {
        let database = try databaseName(connection: connection)
        try connection.query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
            [.text(name)], name: "agent.wal.dropSlot")
        try connection.execute("DROP PUBLICATION IF EXISTS \(try PostgresIdentifier.quoteName(name))")
        try connection.query(
            "SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname LIKE $1",
            [.text("starling/\(database)/%")], name: "agent.wal.dropOrigin")
    }
}

/// `starling.wal_state`: where decoding resumes.
public struct WALState: Sendable, Hashable {
    /// Slot, publication and origin name.
    public var name: String
    public var resume: LSN?
    public var ledger: CaptureLedger?
    /// The decoder's clock at `resume`.
    public var hlc: Int64?
    /// Application changes are still captured by triggers until the switch marker is decoded.
    public var switching: Bool

    init(row: PostgresRow, name: String) throws {
        self.name = name
        resume = try row.optionalString("resume_lsn").map { text throws in try LSN(parsing: text, what: "resume_lsn") }
        ledger = try row.optionalString("ledger").map { text throws in try CaptureLedger(json: try JSONValue(parsing: text)) }
        hlc = try row.optionalInt64("hlc")
        switching = try row.bool("switching")
    }
}
