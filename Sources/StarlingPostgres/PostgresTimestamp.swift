internal import Glibc

/// A point in time as the replication protocol carries it: microseconds since 2000-01-01 00:00:00 UTC
/// (PostgreSQL's `TimestampTz` epoch), the unit of commit times, keepalive send times and status updates.
public struct PostgresTimestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Seconds from the Unix epoch (1970-01-01) to PostgreSQL's (2000-01-01).
    public static let unixEpochOffsetSeconds: Int64 = 946_684_800

    /// Microseconds since 2000-01-01 00:00:00 UTC (negative before).
    public var microsecondsSince2000: Int64

    public init(microsecondsSince2000: Int64) { self.microsecondsSince2000 = microsecondsSince2000 }

    /// From microseconds since the Unix epoch.
    public init(unixMicroseconds: Int64) {
        microsecondsSince2000 = unixMicroseconds &- Self.unixEpochOffsetSeconds * 1_000_000
    }

    /// Microseconds since the Unix epoch.
    public var unixMicroseconds: Int64 { microsecondsSince2000 &+ Self.unixEpochOffsetSeconds * 1_000_000 }

    /// The wall clock now (`CLOCK_REALTIME`), as standby status updates carry it.
    public static func now() -> PostgresTimestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return PostgresTimestamp(unixMicroseconds: Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000)
    }

    public static func < (lhs: PostgresTimestamp, rhs: PostgresTimestamp) -> Bool {
        lhs.microsecondsSince2000 < rhs.microsecondsSince2000
    }

    /// Unix microseconds, e.g. `unix-µs 1733300000000000` (no calendar arithmetic here).
    public var description: String { "unix-µs \(unixMicroseconds)" }
}
