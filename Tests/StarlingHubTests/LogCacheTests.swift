import StarlingCore
import StarlingPostgres
import Testing

@testable import StarlingHub

/// The hub's log cache answers pulls near the head exactly as the log table does, and steps aside (nil, so the
/// table answers) wherever it cannot: before its range, after a gap, after eviction, after losing the lock.
@Suite(.timeLimit(.minutes(2)))
struct LogCacheTests {
    /// The entries of a page body as JSON values, for comparing pages written by different code.
    static func entries(_ page: HubStore.PullPage) throws -> [JSONValue] {
        try JSONValue(parsing: Array("[".utf8) + page.entriesJSON + Array("]".utf8)).arrayValue ?? []
    }

    @Test func cachedPagesEqualTheTablesForEveryRegionAndBoundary() async throws {
        // Proves: after inserts, updates, deletes, a merge (rewritten), a lww conflict and a manual resolution,
        // every (region, after, limit) page from the cache has the same entries, count and next as the table's.
        try await HubHarness.with { hub in
            _ = try await hub.push("r1", [Changes.insert("r1", 1, id: 1, row: ["qty": 1, "big": "12345678901234567890"])])
            _ = try await hub.push("r2", [Changes.insert("r2", 1, table: "public.merged", id: 5, row: ["a": 1, "b": 1])])
            _ = try await hub.push(
                "r3",
                [
                    Changes.update(
                        "r3", 1, table: "public.merged", id: 5, before: ["a": 1, "b": 1], after: ["a": 1, "b": 2],
                        base: 0, hlc: 2000)
                ])
            _ = try await hub.push(
                "r2", [Changes.update("r2", 2, id: 1, before: ["qty": 1], after: ["qty": "x\"y"], base: 1, hlc: 3000)])
            _ = try await hub.push("r1", [Changes.insert("r1", 2, table: "public.manual", id: 9, row: ["v": "one"])])
            _ = try await hub.push("r4", [Changes.insert("r4", 1, table: "public.manual", id: 9, row: ["v": "two"])])
            let conflicts = try await hub.admin("GET", "/v1/conflicts?status=open")
            let conflict = try #require(conflicts.json["conflicts"]?[0]?["id"]?.int64Value)
            let resolved = try await hub.admin("POST", "/v1/conflicts/\(conflict)/resolve", body: ["pick": "incoming"])
            #expect(resolved.status == 200)
            _ = try await hub.push("r3", [Changes.delete("r3", 2, id: 1, before: ["qty": "x\"y"], base: 4, hlc: 4000)])
            let head = hub.hub.head
            #expect(head >= 7)
            let connection = try hub.database.connect()
            defer { connection.close() }
            var compared = 0
            for region in ["r1", "r2", "r3", "r4"] {
                for after in Int64(0)..<head {
                    for limit in [1, 2, 3, 500] {
                        let cached = try #require(
                            hub.hub.api.logCache.page(after: after, limit: limit, region: region),
                            "region \(region) after \(after) limit \(limit) is outside the cache")
                        let stored = try HubStore.pull(connection, region: region, after: after, limit: limit)
                        #expect(try Self.entries(cached) == Self.entries(stored), "\(region) \(after) \(limit)")
                        #expect(cached.count == stored.count && cached.lastScanned == stored.lastScanned)
                        compared += 1
                    }
                }
            }
            #expect(compared == 4 * Int(head) * 4)
            #expect(hub.hub.api.logCache.page(after: head, limit: 10, region: "r1") == nil)
        }
    }

    static func logged(_ seqs: ClosedRange<Int64>, origin: String = "r1") -> [LogCache.Logged] {
        seqs.map { seq in
            LogCache.Logged(
                entry: LogEntry(
                    seq: seq, origin: origin, id: "\(origin):\(seq)", tx: "\(origin):\(seq)", table: "public.items",
                    op: .insert, key: ["id": .integer(seq)], row: ["id": .integer(seq)], hlc: seq, kind: .change,
                    rewritten: false),
                keyText: #"{"id":\#(seq)}"#, rowText: #"{"id":\#(seq)}"#)
        }
    }

    @Test func aGapEmptiesTheCacheAndItRestartsAtTheNextBatch() {
        // Proves: a batch that does not follow the cached seqs (a repair written outside the batch rows, another
        // hub's batches after a failover) leaves pulls to the table until contiguous batches fill it again.
        let cache = LogCache(maxBytes: 1 << 20)
        cache.append(Self.logged(11...20), through: 20)
        #expect(cache.page(after: 10, limit: 100, region: "r2")?.count == 10)
        #expect(cache.page(after: 9, limit: 100, region: "r2") == nil)
        cache.append([], through: 21)  // seq 21 logged outside the batch rows
        #expect(cache.page(after: 15, limit: 100, region: "r2") == nil)
        cache.append(Self.logged(22...23), through: 23)
        #expect(cache.page(after: 20, limit: 100, region: "r2") == nil)
        #expect(cache.page(after: 21, limit: 100, region: "r2")?.lastScanned == 23)
        cache.append(Self.logged(30...31), through: 31)  // another hub wrote 24...29
        #expect(cache.page(after: 23, limit: 100, region: "r2") == nil)
        #expect(cache.page(after: 29, limit: 100, region: "r2")?.count == 2)
        cache.reset()
        #expect(cache.page(after: 29, limit: 100, region: "r2") == nil)
    }

    @Test func theOldestEntriesAreEvictedPastTheByteLimit() throws {
        // Proves: with room for about 20 entries, 1000 appended in batches keep only the newest, pulls below them
        // go to the table, and the region filter still drops the requester's own entries.
        let cache = LogCache(maxBytes: 20 * 160)
        for batch in 0..<100 {
            let first = Int64(batch * 10 + 1)
            cache.append(Self.logged(first...(first + 9), origin: batch % 2 == 0 ? "r1" : "r2"), through: first + 9)
        }
        #expect(cache.page(after: 900, limit: 10, region: "r3") == nil)
        let page = try #require(cache.page(after: 990, limit: 10, region: "r3"))
        #expect(page.count == 10 && page.lastScanned == 1000)
        #expect(try Self.entries(page).map { $0["seq"]?.int64Value } == (991...1000).map { Optional($0) })
        let own = try #require(cache.page(after: 990, limit: 10, region: "r2"))
        #expect(own.count == 0 && own.lastScanned == 1000)
    }
}
