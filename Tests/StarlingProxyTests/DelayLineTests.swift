import Testing

@testable import StarlingProxy

/// A delay line releases every chunk `delay` after it arrived, in order, without serialising the delays.
struct DelayLineTests {
    private let t0 = ContinuousClock.now

    /// Chunks arriving 10 ms apart under a 50 ms delay are each due 50 ms after their own arrival.
    @Test func eachChunkIsDueDelayAfterItsArrival() {
        var line = DelayLine()
        for index in 0..<3 {
            line.arrived([UInt8(index)], at: t0 + .milliseconds(10 * index), delay: .milliseconds(50))
        }
        #expect(line.queuedBytes == 3)
        #expect(line.dueBytes(at: t0 + .milliseconds(49)) == nil)
        for index in 0..<3 {
            let now = t0 + .milliseconds(50 + 10 * index)
            #expect(line.nextDue == now)
            #expect(line.dueBytes(at: now).map(Array.init) == [UInt8(index)])
            line.wrote(1)
            #expect(line.dueBytes(at: now) == nil)
        }
        #expect(line.isEmpty && line.queuedBytes == 0 && line.nextDue == nil)
    }

    /// A partial write leaves the rest of the chunk due, from where it stopped.
    @Test func partialWriteKeepsTheRest() {
        var line = DelayLine()
        line.arrived([1, 2, 3, 4], at: t0, delay: .zero)
        line.wrote(3)
        #expect(line.dueBytes(at: t0).map(Array.init) == [4])
        #expect(line.queuedBytes == 1)
        line.wrote(1)
        #expect(line.isEmpty)
    }

    /// Lowering the delay while chunks wait never lets a later chunk overtake an earlier one.
    @Test func lowerDelayDoesNotReorder() {
        var line = DelayLine()
        line.arrived([1], at: t0, delay: .milliseconds(100))
        line.arrived([2], at: t0 + .milliseconds(1), delay: .zero)
        #expect(line.dueBytes(at: t0 + .milliseconds(50)) == nil)
        line.wrote(line.dueBytes(at: t0 + .milliseconds(100))?.count ?? 0)
        #expect(line.dueBytes(at: t0 + .milliseconds(100)).map(Array.init) == [2])
    }

    /// The line stops accepting at its byte bound and accepts again once drained below it.
    @Test func boundedByBytes() {
        var line = DelayLine(maxQueuedBytes: 4)
        line.arrived([1, 2, 3, 4], at: t0, delay: .zero)
        #expect(!line.acceptsMore)
        line.wrote(1)
        #expect(line.acceptsMore)
    }

    /// Many chunks through one line (past the compaction point) come out whole and in order.
    @Test func manyChunksInOrder() {
        var line = DelayLine()
        var out: [UInt8] = []
        for round in 0..<5 {
            for index in 0..<100 { line.arrived([UInt8((round * 100 + index) % 251)], at: t0, delay: .zero) }
            while let bytes = line.dueBytes(at: t0) {
                out += bytes
                line.wrote(bytes.count)
            }
        }
        #expect(out == (0..<500).map { UInt8($0 % 251) })
    }
}
