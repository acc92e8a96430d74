import StarlingPostgres

/// Where each synced table is in its life here (`starling.synced_tables`, migration 0007): capture installed
/// (``AgentSchema/install(tables:captureTriggers:connection:)``), the moment capture started
/// (``markCaptureStart(connection:)``), bootstrapped (``markBootstrapped(_:connection:)``). A table the hub adds
/// while the agent runs is installed at the agent's next round and bootstrapped before it syncs; one the hub
/// removes loses its capture and its local sync state in the same install (``AgentSchema``).
/// Blocking: runs on the caller's connection.
enum TableLifecycle {
    /// Records, for every table whose capture start is not recorded yet, the current transaction id: capture
    /// (trigger, or publication and slot) is in place before this runs, so a row whose `xmin` is newer was
    /// written with capture in place and is a pending local change (``Bootstrapper``'s comparison skips it).
    static func markCaptureStart(connection: PostgresConnection) throws {
        try connection.query(
            "UPDATE starling.synced_tables SET capture_xid = txid_current() WHERE capture_xid IS NULL",
            name: "agent.lifecycle.captureStart")
    }

    /// The installed tables not bootstrapped yet, by name.
    static func unbootstrapped(connection: PostgresConnection) throws -> [String] {
        try connection.query(
            "SELECT table_name FROM starling.synced_tables WHERE bootstrapped_at IS NULL ORDER BY table_name",
            name: "agent.lifecycle.unbootstrapped"
        ).map { row throws in try row.string("table_name") }
    }

    /// Marks `tables` (nil: every installed table) bootstrapped.
    static func markBootstrapped(_ tables: [String]?, connection: PostgresConnection) throws {
        try connection.query(
            """
            UPDATE starling.synced_tables SET bootstrapped_at = now()
            WHERE bootstrapped_at IS NULL AND ($1::text[] IS NULL OR table_name = ANY($1::text[]))
            """, [tables.map { PostgresValue.textArray($0) } ?? .null], name: "agent.lifecycle.bootstrapped")
    }

    /// Forgets the local sync state of a table that left the synced set: its unpushed changes (the hub no
    /// longer takes them, and one would refuse every push it shares), entries held or deferred for it, and its
    /// per-key versions (a table that joins again is bootstrapped from scratch). Returns the changes dropped.
    @discardableResult
    static func forget(table: String, connection: PostgresConnection) throws -> Int64 {
        let dropped = try connection.query(
            "WITH d AS (DELETE FROM starling.outbox WHERE table_name = $1 RETURNING 1) SELECT count(*) FROM d",
            [.text(table)], name: "agent.lifecycle.forgetOutbox")[0].int64(0)
        for statement in [
            "DELETE FROM starling.held_entries WHERE table_name = $1",
            "DELETE FROM starling.deferred_entries WHERE table_name = $1",
            "DELETE FROM starling.versions WHERE table_name = $1",
        ] {
            try connection.query(statement, [.text(table)], name: "agent.lifecycle.forget")
        }
        return dropped
    }
}
