/// How an origin transaction too large for one push is cut into chunks (README "Large transactions"): pure.
///
/// Consecutive ranges of the transaction's changes, each within `maxCount` changes and `maxBytes` bytes (a
/// single change above `maxBytes` is a chunk of its own: the hub then judges it by `max_body_bytes`). The cut
/// depends on the sizes only, so the same transaction is cut the same way after a restart; the hub's staging
/// accepts a different cut too (chunks are keyed by their first ordinal and may overlap).
struct ChunkPlan: Sendable, Hashable {
    let ranges: [Range<Int>]

    init(sizes: [Int], maxCount: Int, maxBytes: Int) {
        precondition(maxCount > 0 && maxBytes > 0, "chunk limits must be positive")
        var ranges: [Range<Int>] = []
        var start = 0
        var bytes = 0
        for (index, size) in sizes.enumerated() {
            if index > start && (index - start >= maxCount || bytes + size > maxBytes) {
                ranges.append(start..<index)
                start = index
                bytes = 0
            }
            bytes += size
        }
        if start < sizes.count { ranges.append(start..<sizes.count) }
        self.ranges = ranges
    }

    /// The chunk to send after a staged answer for chunk `position` that said the hub holds `through` changes
    /// from ordinal 0: skips chunks wholly inside it, never the last (it completes the transaction).
    func next(after position: Int, through: Int?) -> Int {
        var next = position + 1
        guard let through else { return next }
        while next < ranges.count - 1 && ranges[next].upperBound <= through { next += 1 }
        return next
    }
}
