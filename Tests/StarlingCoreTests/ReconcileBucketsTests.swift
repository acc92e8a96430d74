import StarlingCore
import Testing

/// The pure half of reconciliation: summary comparison, key comparison, planning and the wire forms.
/// A short summary constructor for the tables below.
private func s(_ bucket: Int64, _ count: Int64, _ high: Int64 = 7, _ low: Int64 = 9) -> ReconcileBuckets.Summary {
    ReconcileBuckets.Summary(bucket: bucket, count: count, sumHigh: high, sumLow: low)
}

struct ReconcileBucketsTests {
    typealias Summary = ReconcileBuckets.Summary

    /// (region, hub, expected differing buckets)
    static let summaryCases: [([Summary], [Summary], [Int64])] = [
        ([], [], []),
        ([s(1, 2)], [s(1, 2)], []),
        ([s(1, 2)], [], [1]),
        ([], [s(3, 1)], [3]),
        ([], [s(3, 0, 0, 0)], []),
        ([s(1, 2)], [s(1, 3)], [1]),
        ([s(1, 2, 5)], [s(1, 2, 6)], [1]),
        ([s(1, 2, 5, 1)], [s(1, 2, 5, 2)], [1]),
        ([s(4, 1), s(1, 1), s(2, 1)], [s(2, 1), s(1, 1), s(5, 1)], [4, 5]),
    ]

    @Test(arguments: summaryCases)
    func differingBuckets(region: [Summary], hub: [Summary], expected: [Int64]) {
        // Proves a bucket differs when any of count or sums differ or it is missing on one side, sorted.
        #expect(ReconcileBuckets.differing(region: region, hub: hub) == expected)
    }

    typealias KeyHash = ReconcileBuckets.KeyHash
    typealias HeadHash = ReconcileBuckets.HeadHash

    /// (region rows, pending, cursor, heads, expected (key, difference), expected skipped)
    static let keyCases: [([KeyHash], Set<String>, Int64, [HeadHash], [(String, String)], Int)] = [
        // equal
        ([KeyHash(key: "a", hash: "h1")], [], 10, [HeadHash(key: "a", hash: "h1", seq: 5)], [], 0),
        // different image
        ([KeyHash(key: "a", hash: "h2")], [], 10, [HeadHash(key: "a", hash: "h1", seq: 5)], [("a", "different")], 0),
        // region lacks a live head
        ([], [], 10, [HeadHash(key: "a", hash: "h1", seq: 5)], [("a", "missing")], 0),
        // region lacks a tombstone: fine
        ([], [], 10, [HeadHash(key: "a", hash: nil, seq: 5)], [], 0),
        // region has a row the hub deleted
        ([KeyHash(key: "a", hash: "h1")], [], 10, [HeadHash(key: "a", hash: nil, seq: 5)], [("a", "extra")], 0),
        // region has a row the hub never saw
        ([KeyHash(key: "b", hash: "h1")], [], 10, [], [("b", "extra")], 0),
        // head newer than the cursor: in flight, skipped (all three shapes)
        ([KeyHash(key: "a", hash: "h2")], [], 4, [HeadHash(key: "a", hash: "h1", seq: 5)], [], 1),
        ([], [], 4, [HeadHash(key: "a", hash: "h1", seq: 5)], [], 1),
        ([KeyHash(key: "a", hash: "h1")], [], 4, [HeadHash(key: "a", hash: nil, seq: 5)], [], 1),
        // head at the cursor: compared
        ([KeyHash(key: "a", hash: "h2")], [], 5, [HeadHash(key: "a", hash: "h1", seq: 5)], [("a", "different")], 0),
        // pending local change: skipped, whatever the shape
        ([KeyHash(key: "a", hash: "h2")], ["a"], 10, [HeadHash(key: "a", hash: "h1", seq: 5)], [], 1),
        ([KeyHash(key: "b", hash: "h1")], ["b"], 10, [], [], 1),
        ([], ["a"], 10, [HeadHash(key: "a", hash: "h1", seq: 5)], [], 1),
        // several, sorted by key
        (
            [KeyHash(key: "c", hash: "x"), KeyHash(key: "a", hash: "h"), KeyHash(key: "d", hash: "d")], [], 10,
            [HeadHash(key: "a", hash: "h", seq: 1), HeadHash(key: "b", hash: "h", seq: 2), HeadHash(key: "c", hash: "y", seq: 3)],
            [("b", "missing"), ("c", "different"), ("d", "extra")], 0
        ),
    ]

    @Test(arguments: keyCases.indices)
    func keyComparison(index: Int) {
        // Proves each shape of difference is found and in-flight keys (newer head, pending change) are skipped.
        let (region, pending, cursor, heads, expected, skipped) = Self.keyCases[index]
        let result = ReconcileBuckets.compareKeys(region: region, pending: pending, cursor: cursor, heads: heads)
        #expect(result.differing.map { "\($0.key):\($0.difference.rawValue)" } == expected.map { "\($0.0):\($0.1)" })
        #expect(result.skipped == skipped)
    }

    @Test func planStopsRefinesOrListsKeys() {
        // Proves the plan: nothing differs → done; few rows → keys in chunks; many → 8 more bits; 32 bits → keys.
        #expect(ReconcileBuckets.plan(bits: 12, region: [s(1, 5)], hub: [s(1, 5)], maxKeyRows: 10) == .done)
        #expect(
            ReconcileBuckets.plan(bits: 32, region: [s(1, 5), s(2, 4)], hub: [s(1, 6), s(2, 4, 1)], maxKeyRows: 9)
                == .keys(bits: 32, chunks: [[1], [2]]))
        #expect(
            ReconcileBuckets.plan(bits: 12, region: [s(1, 3), s(2, 4)], hub: [s(1, 2), s(2, 4, 1)], maxKeyRows: 10)
                == .keys(bits: 12, chunks: [[1, 2]]))
        #expect(
            ReconcileBuckets.plan(bits: 12, region: [s(1, 50)], hub: [s(1, 51)], maxKeyRows: 10)
                == .refine(bits: 20, within: [1]))
        #expect(
            ReconcileBuckets.plan(bits: 28, region: [s(1, 50)], hub: [s(1, 51)], maxKeyRows: 10)
                == .refine(bits: 32, within: [1]))
        #expect(
            ReconcileBuckets.plan(bits: 32, region: [s(1, 50)], hub: [s(1, 51)], maxKeyRows: 10)
                == .keys(bits: 32, chunks: [[1]]))
    }

    @Test func keyChunksRespectTheLimit() {
        // Proves chunks stay within the row limit, a single oversized bucket is its own chunk, order is kept.
        let region = [s(1, 4), s(2, 4), s(3, 30), s(4, 1)]
        #expect(
            ReconcileBuckets.keyChunks([1, 2, 3, 4], region: region, hub: [], maxRows: 8) == [[1, 2], [3], [4]])
        #expect(ReconcileBuckets.keyChunks([], region: region, hub: [], maxRows: 8) == [])
    }

    @Test func wireFormsRoundTrip() throws {
        // Proves tasks and both kinds of answers survive JSON text and back, and bad input is refused.
        let task = ReconcileTask(run: 3, table: "public.items", step: 7, bits: 20, withinBits: 12, within: [1, 4095], listsKeys: true)
        #expect(try ReconcileTask(json: try JSONValue(parsing: task.json.serialized())) == task)
        let summary = ReconcileAnswer(
            run: 3, table: "public.items", step: 7, cursor: 42, buckets: [s(1, 2, 3, 4)], listsKeys: false)
        #expect(try ReconcileAnswer(json: try JSONValue(parsing: summary.json.serialized())) == summary)
        let keys = ReconcileAnswer(
            run: 3, table: "t", step: 8, cursor: 0, keys: [.init(key: #"{"id": 1}"#, hash: "ab")], pending: ["p"],
            listsKeys: true)
        #expect(try ReconcileAnswer(json: try JSONValue(parsing: keys.json.serialized())) == keys)
        for bad in [
            #"{"run":1,"table":"t","step":1,"bits":33,"within_bits":0,"within":[],"keys":false}"#,
            #"{"run":1,"table":"t","step":1,"bits":8,"within_bits":9,"within":[],"keys":false}"#,
            #"{"run":1,"table":"t","step":1,"bits":8,"within_bits":0,"within":["x"],"keys":false}"#,
        ] {
            #expect(throws: CoreError.self) { try ReconcileTask(json: try JSONValue(parsing: Array(bad.utf8))) }
        }
        for bad in [
            #"{"run":1,"table":"t","step":1,"cursor":0}"#,
            #"{"run":1,"table":"t","step":1,"cursor":0,"buckets":[[1,2,3]]}"#,
            #"{"run":1,"table":"t","step":1,"cursor":0,"keys":[["k"]]}"#,
            #"{"run":1,"table":"t","step":1,"cursor":-1,"buckets":[]}"#,
        ] {
            #expect(throws: CoreError.self) { try ReconcileAnswer(json: try JSONValue(parsing: Array(bad.utf8))) }
        }
    }

    @Test func logEntryCarriesBaseOnlyForRepairs() throws {
        // Proves `base` is written (in canonical order, by both writers) and read back, and absent otherwise.
        var entry = LogEntry(
            seq: 9, origin: "hub", id: "repair:1:9", tx: "repair:1:r2", table: "t", op: .update, key: ["id": 1],
            row: ["id": 1], hlc: 5, kind: .repair, rewritten: true, base: 4)
        var written: [UInt8] = []
        entry.write(to: &written)
        #expect(written == entry.json.serialized())
        #expect(String(decoding: written, as: UTF8.self).hasPrefix(#"{"base":4,"hlc":5"#))
        #expect(try LogEntry(json: try JSONValue(parsing: written)) == entry)
        entry.base = nil
        written = []
        entry.write(to: &written)
        #expect(written == entry.json.serialized() && !String(decoding: written, as: UTF8.self).contains("base"))
    }
}
