/// Where the hub reads the time: ``system`` (the machine's clocks, through ``Syscall``) in production, one
/// shifted or driven by hand in a test. Passed in at construction and handed down, never read from a global,
/// so a test can run a hub with its clock ahead of the others or step it past a timeout.
///
/// A value with two closures; thread-safe as long as they are (``system``'s are).
public struct TimeSource: Sendable {
    /// Microseconds since the Unix epoch (real-time clock): HLC input and the times reports and status show.
    public let wallClockMicros: @Sendable () -> Int64
    /// Nanoseconds on the monotonic clock: durations, deadlines and timeouts.
    public let monotonicNanos: @Sendable () -> UInt64

    public init(wallClockMicros: @escaping @Sendable () -> Int64, monotonicNanos: @escaping @Sendable () -> UInt64) {
        self.wallClockMicros = wallClockMicros
        self.monotonicNanos = monotonicNanos
    }

    /// The machine's clocks.
    public static let system = TimeSource(
        wallClockMicros: { Syscall.wallClockMicros() }, monotonicNanos: { Syscall.monotonicNanos() })

    /// This source with its wall clock moved by `offset` (a process running ahead of or behind the others);
    /// the monotonic clock is unchanged.
    public func shifted(by offset: Duration) -> TimeSource {
        let micros = offset.components.seconds * 1_000_000 + offset.components.attoseconds / 1_000_000_000_000
        let wall = wallClockMicros
        return TimeSource(wallClockMicros: { wall() &+ micros }, monotonicNanos: monotonicNanos)
    }
}
