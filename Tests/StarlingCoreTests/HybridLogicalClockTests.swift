import StarlingCore
import StarlingTestSupport
import Testing

/// Tests of the hybrid logical clock: monotonic under stalls, steps back, restarts and remote observations.
struct HybridLogicalClockTests {
    // Proves ticks follow physical time when it advances and stay strictly increasing when it does not.
    @Test func tickIsStrictlyIncreasing() {
        var clock = HybridLogicalClock()
        #expect(clock.tick(nowMicros: 100) == 100)
        #expect(clock.tick(nowMicros: 100) == 101)
        #expect(clock.tick(nowMicros: 50) == 102)
        #expect(clock.tick(nowMicros: 500) == 500)
        #expect(clock.last == 500)
    }

    // Proves a clock seeded with the last persisted value never repeats a value after a restart.
    @Test func seededClockStaysMonotonicAcrossRestart() {
        var first = HybridLogicalClock()
        var issued: [Int64] = []
        for now: Int64 in [10, 20, 20, 20] { issued.append(first.tick(nowMicros: now)) }
        var restarted = HybridLogicalClock(seed: first.last)
        issued.append(restarted.tick(nowMicros: 5))  // wall clock stepped back across the restart
        #expect(issued == [10, 20, 21, 22, 23])
    }

    // Proves observing a remote clock raises later ticks past it, and an older remote changes nothing.
    @Test func observeRaises() {
        var clock = HybridLogicalClock(seed: 100)
        clock.observe(1_000)
        #expect(clock.tick(nowMicros: 200) == 1_001)
        clock.observe(5)
        #expect(clock.tick(nowMicros: 200) == 1_002)
    }

    // Proves random interleavings of ticks and observations never produce a non-increasing tick.
    @Test func randomMonotonicity() {
        var generator = SplitMix64(seed: 42)
        var clock = HybridLogicalClock()
        var previous = Int64.min
        for _ in 0..<10_000 {
            let now = Int64(generator.next() % 1_000)
            if generator.next() % 4 == 0 { clock.observe(Int64(generator.next() % 2_000)) }
            let stamp = clock.tick(nowMicros: now)
            #expect(stamp > previous)
            #expect(stamp >= now)
            previous = stamp
        }
    }

    // Proves a corrupt seed at Int64.max saturates instead of trapping.
    @Test func saturatesAtMax() {
        var clock = HybridLogicalClock(seed: Int64.max)
        #expect(clock.tick(nowMicros: 0) == Int64.max)
    }
}
