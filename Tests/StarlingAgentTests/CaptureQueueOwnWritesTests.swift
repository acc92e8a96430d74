@testable import StarlingAgent
import StarlingCore
import StarlingPostgres
import Testing

/// The agent's own writes are remembered until the decoder passes them (``CaptureQueue/wrote(_:at:)``): a push
/// of a local change waits for the decoder when the agent wrote its key after the change and the decoder has not
/// seen that write yet.
@Suite("CaptureQueue: own writes")
struct CaptureQueueOwnWritesTests {
    private static func keys(_ range: Range<Int>) -> [TableKey] {
        range.map { TableKey(table: "public.items", key: ["id": .number("\($0)")]) }
    }

    @Test("a write the decoder has not passed is reported; one it has passed is not")
    func undecodedWritesAreReported() {
        let queue = CaptureQueue(arrived: WakeUp())
        queue.wrote(Self.keys(0..<3), at: LSN(100))
        queue.wrote(Self.keys(2..<4), at: LSN(200))
        #expect(queue.undecodedOwnWrite(of: Self.keys(0..<1)) == LSN(100))
        #expect(queue.undecodedOwnWrite(of: Self.keys(0..<4)) == LSN(200))
        #expect(queue.undecodedOwnWrite(of: Self.keys(5..<6)) == nil)
        queue.decoded(through: LSN(150))
        #expect(queue.undecodedOwnWrite(of: Self.keys(0..<2)) == nil)
        // Key 2 was written again at 200: passing its first write does not forget the second.
        queue.wrote([], at: LSN(160))
        #expect(queue.undecodedOwnWrite(of: Self.keys(2..<3)) == LSN(200))
        queue.decoded(through: LSN(200))
        #expect(queue.undecodedOwnWrite(of: Self.keys(0..<4)) == nil)
    }

    @Test("writes the decoder has passed are dropped as it passes them, not kept up to a size")
    func passedWritesAreDropped() {
        // The first version kept every own write until there were 100,000, then filtered the whole map on every
        // write while the decoder lagged: a fifth of each agent's CPU at W1 R=8.
        let queue = CaptureQueue(arrived: WakeUp())
        for batch in 0..<200 {
            let lsn = LSN(UInt64(1000 * (batch + 1)))
            queue.wrote(Self.keys(batch * 1000..<(batch + 1) * 1000), at: lsn)
            queue.decoded(through: lsn)
            #expect(queue.ownWriteCount <= 2000, "batch \(batch): \(queue.ownWriteCount) own writes kept")
        }
        #expect(queue.undecodedOwnWrite(of: Self.keys(0..<200_000)) == nil)
    }

    @Test("writes mapped only when asked give the same answers across pruning and compaction")
    func lazilyMappedWrites() {
        // Proves the lazy map (``CaptureQueue/State/mapOwnWrites()``): a write the decoder passes before anyone asks
        // is never mapped, a later write of the same key still is; after 300 passed writes the log is compacted and
        // writes mapped before and after it keep their newest positions.
        let queue = CaptureQueue(arrived: WakeUp())
        queue.wrote(Self.keys(0..<4), at: LSN(100))
        queue.wrote(Self.keys(2..<5), at: LSN(200))
        queue.decoded(through: LSN(150))
        #expect(queue.undecodedOwnWrite(of: Self.keys(0..<2)) == nil)
        #expect(queue.undecodedOwnWrite(of: Self.keys(2..<3)) == LSN(200))
        queue.wrote(Self.keys(5..<6), at: LSN(300))
        for index in 0..<300 { queue.wrote(Self.keys(10 + index..<11 + index), at: LSN(UInt64(400 + index))) }
        queue.decoded(through: LSN(250))
        #expect(queue.undecodedOwnWrite(of: Self.keys(2..<3)) == nil)
        #expect(queue.undecodedOwnWrite(of: Self.keys(5..<6)) == LSN(300))
        queue.decoded(through: LSN(650))
        queue.wrote(Self.keys(5..<6), at: LSN(900))
        #expect(queue.undecodedOwnWrite(of: Self.keys(10..<260)) == nil, "passed and compacted")
        #expect(queue.undecodedOwnWrite(of: Self.keys(300..<310)) == LSN(699))
        #expect(queue.undecodedOwnWrite(of: Self.keys(5..<6)) == LSN(900))
        #expect(queue.ownWriteCount == 49 + 1)
        queue.decoded(through: LSN(900))
        #expect(queue.undecodedOwnWrite(of: Self.keys(0..<400)) == nil && queue.ownWriteCount == 0)
    }
}
