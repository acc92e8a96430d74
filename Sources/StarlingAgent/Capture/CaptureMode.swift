/// How an agent captures its region's changes (`capture:` in agent.yaml).
public enum CaptureMode: String, Sendable, Hashable, CaseIterable, Decodable {
    /// Logical decoding of the WAL (a slot and a publication, pgoutput): the application's transactions pay
    /// nothing. Needs `wal_level = logical`, a free slot and wal sender, the REPLICATION attribute (or
    /// superuser) and the rights to `pg_replication_origin_*`.
    case wal
    /// Capture triggers writing an outbox in the application's transaction: the fallback for a database
    /// without `wal_level = logical`.
    case trigger
    /// WAL capture when the database allows it, else triggers (the agent logs and reports why).
    case auto
}
