/// A region's hybrid logical clock, in microseconds since the Unix epoch.
///
/// Each tick returns `max(now, last + 1)`: physical time when the wall clock moves forward, and a strictly
/// increasing logical continuation when it stalls or steps back. Seed it with the last persisted value to stay
/// monotonic across restarts; ``observe(_:)`` raises it past a remote clock so causally later writes get
/// larger stamps. A value type, not thread-safe by itself: its owner serializes access.
public struct HybridLogicalClock: Sendable, Hashable {
    /// The last value returned or observed.
    public private(set) var last: Int64

    /// Starts after `seed` (the last value this region persisted; 0 for a fresh region).
    public init(seed: Int64 = 0) {
        last = seed
    }

    /// The next timestamp: strictly greater than every earlier tick and observation.
    public mutating func tick(nowMicros: Int64) -> Int64 {
        // Saturates at Int64.max (year 294247) instead of trapping on a corrupt seed.
        last = nowMicros > last ? nowMicros : (last == Int64.max ? last : last + 1)
        return last
    }

    /// Raises the clock to `remote` when that is ahead (a received entry's HLC).
    public mutating func observe(_ remote: Int64) {
        if remote > last { last = remote }
    }
}
