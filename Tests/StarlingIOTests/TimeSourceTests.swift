import StarlingIO
import Testing

/// The clock the hub is handed: the system source reads the machine's clocks, a shifted one moves only the wall
/// clock.
struct TimeSourceTests {
    @Test func theSystemSourceReadsTheMachinesClocks() {
        // Proves `.system` agrees with Syscall's readings (taken around it) on both clocks.
        let wallBefore = Syscall.wallClockMicros()
        let monoBefore = Syscall.monotonicNanos()
        let wall = TimeSource.system.wallClockMicros()
        let mono = TimeSource.system.monotonicNanos()
        #expect(wall >= wallBefore && wall <= Syscall.wallClockMicros())
        #expect(mono >= monoBefore && mono <= Syscall.monotonicNanos())
    }

    @Test(arguments: [Duration.zero, .seconds(90), .milliseconds(-2500), .microseconds(7)])
    func aShiftedSourceMovesTheWallClockOnly(offset: Duration) {
        // Proves shifting adds the offset to the wall clock, in microseconds, and leaves the monotonic clock.
        let fixed = TimeSource(wallClockMicros: { 1_000_000_000 }, monotonicNanos: { 42 })
        let shifted = fixed.shifted(by: offset)
        let micros = offset.components.seconds * 1_000_000 + offset.components.attoseconds / 1_000_000_000_000
        #expect(shifted.wallClockMicros() == 1_000_000_000 + micros)
        #expect(shifted.monotonicNanos() == 42)
    }
}
