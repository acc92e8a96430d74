import Testing

@testable import StarlingAgent

/// How a large transaction is cut into chunks, and what a resumed push skips.
struct ChunkPlanTests {
    @Test(arguments: [
        ([1, 1, 1, 1, 1], 2, 100, [0..<2, 2..<4, 4..<5]),
        ([40, 40, 40], 10, 100, [0..<2, 2..<3]),
        ([500, 1, 1], 10, 100, [0..<1, 1..<3]),
        ([1], 1, 1, [0..<1]),
        ([], 3, 3, []),
    ] as [([Int], Int, Int, [Range<Int>])])
    func chunksStayWithinCountAndBytes(_ sizes: [Int], _ maxCount: Int, _ maxBytes: Int, _ expected: [Range<Int>]) {
        // Proves the ranges are consecutive, cover every change, and each holds at most maxCount changes and at
        // most maxBytes bytes unless a single change is larger.
        let plan = ChunkPlan(sizes: sizes, maxCount: maxCount, maxBytes: maxBytes)
        #expect(plan.ranges == expected)
    }

    @Test func aStagedAnswerSkipsWhatTheHubHoldsButNeverTheLastChunk() {
        // Proves a resumed push jumps past chunks the hub has staged, resends one it holds only in part, and
        // always sends the last chunk (which completes the transaction).
        let plan = ChunkPlan(sizes: Array(repeating: 1, count: 10), maxCount: 3, maxBytes: 100)
        #expect(plan.ranges == [0..<3, 3..<6, 6..<9, 9..<10])
        #expect(plan.next(after: 0, through: nil) == 1)
        #expect(plan.next(after: 0, through: 3) == 1)
        #expect(plan.next(after: 0, through: 7) == 2)
        #expect(plan.next(after: 0, through: 9) == 3)
        #expect(plan.next(after: 0, through: 10) == 3)
    }
}
