import StarlingCore
import StarlingHTTP2
import StarlingPostgres
import Testing

@testable import StarlingHub

/// `limits.max_queued_changes` and `limits.max_batch_changes` as README and `HubConfiguration.Limits` document
/// them, with the sequencer held inside a group commit (``SequencerGate``) so the queue's content is exact.
@Suite(.timeLimit(.minutes(2)))
struct SequencerLimitsTests {
    /// `count` fresh inserts of `region` on keys of its own, with local ids from `first`.
    static func inserts(_ region: String, _ count: Int, first: Int) -> [JSONValue] {
        let regionNumber = Int64(HubHarness.regionNames.firstIndex(of: region) ?? 0)
        return (first..<first + count).map { n in
            Changes.insert(region, n, id: regionNumber * 1000 + Int64(n), row: ["qty": .integer(Int64(n))])
        }
    }

    static func push(_ hub: HubHarness, _ region: String, _ changes: [JSONValue]) async throws -> HTTPResponse {
        let body: JSONValue = ["changes": .array(changes)]
        return try await hub.client.send(
            HTTPClientRequest(
                method: "POST", path: "/v1/changes",
                headers: ["content-type": "application/json", "authorization": "Bearer \(HubHarness.token(region))"],
                body: body.serialized()))
    }

    /// Every result of a 200 push is `accepted`.
    static func expectAccepted(_ response: HTTPResponse, count: Int, _ what: String) throws {
        #expect(response.status == 200, "\(what): \(String(decoding: response.body, as: UTF8.self))")
        let results = try JSONValue(parsing: response.body)["results"]?.arrayValue ?? []
        #expect(results.count == count && results.allSatisfy { $0["status"] == "accepted" }, "\(what): \(results)")
    }

    static func storedDecisions(_ hub: HubHarness, ids: [String]) async throws -> Int64 {
        try await GroupCommitRaceTests.query(hub) { connection in
            try connection.query(
                "SELECT (SELECT count(*) FROM starling_hub.log WHERE change_id = ANY($1::text[])) + "
                    + "(SELECT count(*) FROM starling_hub.decisions WHERE change_id = ANY($1::text[]))",
                [.textArray(ids)])[0].int64(0)
        }
    }

    @Test func aPushThatWouldOverfillTheQueueGets503OverloadedAndIsNotStored() async throws {
        // Proves a push is refused with 503 `overloaded` (retry-after: 1) exactly when the changes already waiting
        // plus its own exceed max_queued_changes, a push that fills the queue to the limit is taken, the refused
        // ones store nothing and go through when retried, and a push larger than the limit enters an empty queue.
        var limits = HubConfiguration.Limits()
        limits.maxQueuedChanges = 10
        try await HubHarness.with(limits: limits) { hub in
            let six = Self.inserts("r2", 6, first: 1)
            let five = Self.inserts("r3", 5, first: 1)
            let four = Self.inserts("r4", 4, first: 1)
            let one = Self.inserts("r5", 1, first: 1)
            let (tasks, refused) = try await SequencerGate.holding(hub.database.url) {
                let blocker = Task { try await Self.push(hub, "r1", Self.inserts("r1", 1, first: 1)) }
                try await SequencerGate.waitUntilBlocked(hub)
                let queuedSix = Task { try await Self.push(hub, "r2", six) }
                try await SequencerGate.waitUntilQueued(hub, changes: 6)
                let overfilling = try await Self.push(hub, "r3", five)  // 6 + 5 > 10: answered at once
                let queuedFour = Task { try await Self.push(hub, "r4", four) }
                try await SequencerGate.waitUntilQueued(hub, changes: 10)  // 6 + 4 = 10: at the limit, taken
                let pastFull = try await Self.push(hub, "r5", one)
                #expect(SequencerGate.queued(hub) == (items: 2, changes: 10))
                return ([blocker, queuedSix, queuedFour], [overfilling, pastFull])
            }
            for response in refused {
                #expect(response.status == 503)
                #expect(response.headers["retry-after"] == "1")
                let error = try JSONValue(parsing: response.body)["error"]
                #expect(error?["code"] == "overloaded", "\(String(decoding: response.body, as: UTF8.self))")
            }
            try Self.expectAccepted(try await tasks[0].value, count: 1, "blocker")
            try Self.expectAccepted(try await tasks[1].value, count: 6, "six")
            try Self.expectAccepted(try await tasks[2].value, count: 4, "four")
            #expect(try await Self.storedDecisions(hub, ids: GroupCommitRaceTests.ids(five + one)) == 0)

            try Self.expectAccepted(try await Self.push(hub, "r3", five), count: 5, "five, retried")
            try Self.expectAccepted(try await Self.push(hub, "r5", one), count: 1, "one, retried")
            try Self.expectAccepted(
                try await Self.push(hub, "r6", Self.inserts("r6", 12, first: 1)), count: 12, "twelve, alone")
            #expect(hub.hub.head == 1 + 6 + 4 + 5 + 1 + 12)
        }
    }

    @Test func groupCommitsTakeQueuedPushesWholeInOrderUpToMaxBatchChanges() async throws {
        // Proves each group commit takes the queued pushes in arrival order while their changes fit
        // max_batch_changes, never splits a push, and commits a push larger than the limit alone (per
        // transaction in the log, and in the batch-size metric).
        var limits = HubConfiguration.Limits()
        limits.maxBatchChanges = 5
        try await HubHarness.with(limits: limits) { hub in
            let queued: [(String, Int)] = [("r2", 3), ("r3", 3), ("r4", 2), ("r5", 4), ("r6", 7), ("r7", 1)]
            let tasks = try await SequencerGate.holding(hub.database.url) {
                var tasks = [Task { try await Self.push(hub, "r1", Self.inserts("r1", 1, first: 1)) }]
                try await SequencerGate.waitUntilBlocked(hub)
                var total = 0
                for (region, count) in queued {
                    let changes = Self.inserts(region, count, first: 1)
                    tasks.append(Task { try await Self.push(hub, region, changes) })
                    total += count
                    try await SequencerGate.waitUntilQueued(hub, changes: total)
                }
                return tasks
            }
            for (task, (region, count)) in zip(tasks, [("r1", 1)] + queued) {
                try Self.expectAccepted(try await task.value, count: count, region)
            }
            // The batch-size histogram saw the same six group commits.
            let name = "starling_hub_commit_batch_size_changes"
            #expect(try await LogRetentionTests.metric(hub, name + "_count") == 6)
            let changes: Double = 21  // 1 + 3 + (3 + 2) + 4 + 7 + 1
            #expect(try await LogRetentionTests.metric(hub, name + "_sum") == changes)
            // One transaction per group commit: the log rows' xmin, in seq order, with each push's origin.
            let batches = try await GroupCommitRaceTests.query(hub) { connection in
                try connection.query(
                    "SELECT xmin::text, array_to_string(array_agg(origin ORDER BY seq), ' ') FROM starling_hub.log "
                        + "GROUP BY xmin::text ORDER BY min(seq)"
                ).map { try $0.string(1) }
            }
            #expect(
                batches == [
                    "r1", "r2 r2 r2", "r3 r3 r3 r4 r4", "r5 r5 r5 r5", "r6 r6 r6 r6 r6 r6 r6", "r7",
                ])
        }
    }
}
