/// A replication slot as `pg_replication_slots` shows it, with the WAL it keeps.
public struct PostgresReplicationSlot: Sendable, Hashable {
    public var name: String
    /// The output plugin (nil for a physical slot).
    public var plugin: String?
    /// True for a logical slot.
    public var isLogical: Bool
    /// The database of a logical slot.
    public var database: String?
    public var isTemporary: Bool
    /// True while a walsender streams from it.
    public var isActive: Bool
    /// The walsender using it, when active.
    public var activePID: Int32?
    /// The oldest WAL the slot still needs (the server keeps WAL from here).
    public var restartLSN: LSN?
    /// What the consumer confirmed as flushed: a restart streams transactions committed after it.
    public var confirmedFlushLSN: LSN?
    /// `reserved`, `extended`, `unreserved` or `lost` (nil when the slot never reserved WAL).
    public var walStatus: String?
    /// WAL bytes from `restartLSN` to the server's current WAL position: what the slot keeps on disk.
    public var retainedWALBytes: Int64?

    public init(
        name: String, plugin: String?, isLogical: Bool, database: String?, isTemporary: Bool, isActive: Bool,
        activePID: Int32?, restartLSN: LSN?, confirmedFlushLSN: LSN?, walStatus: String?, retainedWALBytes: Int64?
    ) {
        self.name = name
        self.plugin = plugin
        self.isLogical = isLogical
        self.database = database
        self.isTemporary = isTemporary
        self.isActive = isActive
        self.activePID = activePID
        self.restartLSN = restartLSN
        self.confirmedFlushLSN = confirmedFlushLSN
        self.walStatus = walStatus
        self.retainedWALBytes = retainedWALBytes
    }
}

extension PostgresConnection {
    /// The slot named `name` (any database), or nil when it does not exist. Runs on a normal connection
    /// (a replication connection cannot run parameterized SQL).
    public func replicationSlot(named name: String) throws(PostgresError) -> PostgresReplicationSlot? {
        let result = try query(
            """
            SELECT slot_name::text, plugin::text, slot_type = 'logical' AS is_logical, database::text, temporary,
                   active, active_pid, restart_lsn::text, confirmed_flush_lsn::text, wal_status,
                   pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn()
                                        ELSE pg_current_wal_lsn() END, restart_lsn)::bigint AS retained_bytes
            FROM pg_replication_slots WHERE slot_name = $1
            """, [.text(name)], name: "replication.slot")
        guard result.rowCount > 0 else { return nil }
        let row = result[0]
        return PostgresReplicationSlot(
            name: try row.string("slot_name"), plugin: try row.optionalString("plugin"),
            isLogical: try row.bool("is_logical"), database: try row.optionalString("database"),
            isTemporary: try row.bool("temporary"), isActive: try row.bool("active"),
            activePID: try row.optionalInt32("active_pid"),
            restartLSN: try row.optionalString("restart_lsn").map { (text) throws(PostgresError) in
                try LSN(parsing: text, what: "restart_lsn")
            },
            confirmedFlushLSN: try row.optionalString("confirmed_flush_lsn").map { (text) throws(PostgresError) in
                try LSN(parsing: text, what: "confirmed_flush_lsn")
            },
            walStatus: try row.optionalString("wal_status"), retainedWALBytes: try row.optionalInt64("retained_bytes"))
    }
}
