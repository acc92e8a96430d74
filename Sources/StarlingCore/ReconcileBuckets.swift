/// The pure half of reconciliation (DESIGN.md "Beyond the log"): the bucket summaries both sides compute, the
/// comparison of summaries and of per-key hashes, and the plan of the next step. No IO: the hub and the agent
/// run the SQL (``ReconcileSQL``), this decides what the numbers mean.
///
/// Hashing: every live row is hashed as `md5(k || r)` where `k` and `r` are the `jsonb` text of its key and
/// image (jsonb's text output is canonical for equal values, so the agent's image built from the table and
/// the hub's stored canonical text give the same bytes). A key's bucket at `bits` bits is the top `bits` bits
/// of the first 32 bits of `md5(k)`. A bucket summary is (count, sum of the first 32 bits of the row hashes,
/// sum of the next 32 bits): two equal summaries mean equal rows but for a 64-bit collision, and the sums
/// are order-free, so both sides aggregate in one pass. When nothing differs a step costs one scan per side
/// and `2^bits` summaries on the wire; differing buckets are split further (``nextStep``) until their rows
/// are few enough to compare key by key (``compareKeys``).
public enum ReconcileBuckets {
    /// Bits of the first summary step (4096 buckets: ~2 400 rows each at 10 million rows).
    public static let firstBits = 12
    /// Bits added per refinement step.
    public static let bitsPerStep = 8
    /// The deepest level: the whole 32-bit key-hash prefix.
    public static let maxBits = 32

    /// One bucket's summary.
    public struct Summary: Sendable, Hashable {
        public var bucket: Int64
        public var count: Int64
        public var sumHigh: Int64
        public var sumLow: Int64

        public init(bucket: Int64, count: Int64, sumHigh: Int64, sumLow: Int64) {
            self.bucket = bucket
            self.count = count
            self.sumHigh = sumHigh
            self.sumLow = sumLow
        }

        /// `[bucket, count, sumHigh, sumLow]`.
        public var json: JSONValue { .array([.integer(bucket), .integer(count), .integer(sumHigh), .integer(sumLow)]) }

        public init(json: JSONValue) throws(CoreError) {
            guard let items = json.arrayValue, items.count == 4,
                let bucket = items[0].int64Value, let count = items[1].int64Value,
                let high = items[2].int64Value, let low = items[3].int64Value
            else {
                throw CoreError(code: .invalidValue, message: "a bucket summary must be [bucket, count, high, low]")
            }
            self.init(bucket: bucket, count: count, sumHigh: high, sumLow: low)
        }
    }

    /// Buckets whose summaries differ (a bucket missing on one side counts as empty there), ascending.
    public static func differing(region: [Summary], hub: [Summary]) -> [Int64] {
        var hubByBucket: [Int64: Summary] = [:]
        hubByBucket.reserveCapacity(hub.count)
        for summary in hub { hubByBucket[summary.bucket] = summary }
        var result: [Int64] = []
        var seen = Set<Int64>()
        for summary in region {
            seen.insert(summary.bucket)
            if hubByBucket[summary.bucket] != summary { result.append(summary.bucket) }
        }
        for summary in hub where !seen.contains(summary.bucket) && summary.count != 0 { result.append(summary.bucket) }
        return result.sorted()
    }

    /// A region's row in the key step: the key's jsonb text and its row hash (md5 hex).
    public struct KeyHash: Sendable, Hashable {
        public var key: String
        public var hash: String

        public init(key: String, hash: String) {
            self.key = key
            self.hash = hash
        }
    }

    /// The hub's head of a key in the key step: jsonb key text, row hash (nil: tombstone) and seq.
    public struct HeadHash: Sendable, Hashable {
        public var key: String
        public var hash: String?
        public var seq: Int64

        public init(key: String, hash: String?, seq: Int64) {
            self.key = key
            self.hash = hash
            self.seq = seq
        }
    }

    /// How a region's row differs from the hub's head.
    public enum Difference: String, Sendable, Hashable {
        /// Both have the key, with different images.
        case different
        /// The hub has a live head the region lacks.
        case missing
        /// The region has a row the hub has no live head for (absent or tombstone).
        case extra
    }

    /// The outcome of comparing one chunk of keys.
    public struct KeyComparison: Sendable, Hashable {
        /// Differing keys (jsonb text) with how they differ, sorted by key.
        public var differing: [Differing] = []
        /// Keys left alone because they are in flight: a head newer than the region's cursor, or a local change
        /// of the key still in the region's outbox.
        public var skipped = 0

        public struct Differing: Sendable, Hashable {
            public var key: String
            public var difference: Difference
            /// The head's seq (0 when the hub has no head).
            public var headSeq: Int64

            public init(key: String, difference: Difference, headSeq: Int64) {
                self.key = key
                self.difference = difference
                self.headSeq = headSeq
            }
        }

        public init() {}
    }

    /// Compares the region's rows of some buckets (taken in one snapshot with its pull `cursor` and its
    /// `pending` outbox keys) with the hub's heads of the same buckets. Only real differences are reported: a
    /// key whose head seq is above the cursor has news the region has not pulled yet, and a pending key's
    /// verdict will bring the right image; both are skipped, never repaired.
    public static func compareKeys(region: [KeyHash], pending: Set<String>, cursor: Int64, heads: [HeadHash])
        -> KeyComparison
    {
        var headByKey: [String: HeadHash] = [:]
        headByKey.reserveCapacity(heads.count)
        for head in heads { headByKey[head.key] = head }
        var result = KeyComparison()
        var seen = Set<String>()
        seen.reserveCapacity(region.count)
        func consider(_ key: String, _ difference: Difference, headSeq: Int64) {
            if pending.contains(key) || headSeq > cursor {
                result.skipped += 1
            } else {
                result.differing.append(.init(key: key, difference: difference, headSeq: headSeq))
            }
        }
        for row in region {
            seen.insert(row.key)
            guard let head = headByKey[row.key] else {
                consider(row.key, .extra, headSeq: 0)
                continue
            }
            guard let hash = head.hash else {
                consider(row.key, .extra, headSeq: head.seq)
                continue
            }
            if hash != row.hash { consider(row.key, .different, headSeq: head.seq) }
        }
        for head in heads where head.hash != nil && !seen.contains(head.key) {
            consider(head.key, .missing, headSeq: head.seq)
        }
        result.differing.sort { $0.key < $1.key }
        return result
    }

    /// Buckets of the key step, split into chunks whose estimated rows (the larger count of both sides, per
    /// bucket) stay within `maxRows`; a single bucket above it is a chunk of its own.
    public static func keyChunks(_ buckets: [Int64], region: [Summary], hub: [Summary], maxRows: Int) -> [[Int64]] {
        let estimate = estimates(region: region, hub: hub)
        var chunks: [[Int64]] = []
        var current: [Int64] = []
        var rows: Int64 = 0
        for bucket in buckets {
            let size = estimate[bucket] ?? 0
            if !current.isEmpty && rows + size > Int64(maxRows) {
                chunks.append(current)
                current = []
                rows = 0
            }
            current.append(bucket)
            rows += size
        }
        if !current.isEmpty { chunks.append(current) }
        return chunks
    }

    /// What to do with the differing buckets of a summary step at `bits`: nothing (none differ), refine them
    /// by ``bitsPerStep`` more bits, or compare their keys (few enough rows, or the deepest level).
    public enum Plan: Sendable, Hashable {
        case done
        case refine(bits: Int, within: [Int64])
        case keys(bits: Int, chunks: [[Int64]])
    }

    public static func plan(bits: Int, region: [Summary], hub: [Summary], maxKeyRows: Int) -> Plan {
        let buckets = differing(region: region, hub: hub)
        if buckets.isEmpty { return .done }
        let estimate = estimates(region: region, hub: hub)
        let rows = buckets.reduce(Int64(0)) { $0 + (estimate[$1] ?? 0) }
        if rows <= Int64(maxKeyRows) || bits >= maxBits {
            return .keys(bits: bits, chunks: keyChunks(buckets, region: region, hub: hub, maxRows: maxKeyRows))
        }
        return .refine(bits: min(maxBits, bits + bitsPerStep), within: buckets)
    }

    /// Per bucket, the larger row count of the two sides.
    static func estimates(region: [Summary], hub: [Summary]) -> [Int64: Int64] {
        var estimate: [Int64: Int64] = [:]
        for summary in region { estimate[summary.bucket] = summary.count }
        for summary in hub { estimate[summary.bucket] = max(estimate[summary.bucket] ?? 0, summary.count) }
        return estimate
    }
}
