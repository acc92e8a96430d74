import StarlingCore
import StarlingPostgres
import Testing

@testable import StarlingHub

/// Chunked pushes (README "Large transactions"): staging, idempotent re-sends, atomic sequencing of the whole
/// origin transaction when its last chunk arrives, and the compact verdicts of the last chunk's answer.
@Suite(.timeLimit(.minutes(2)))
struct ChunkedPushTests {
    /// `count` inserts of transaction `tx` by `region`, ids `region:first…`, keys from `firstKey`.
    static func transaction(_ region: String, tx: String, count: Int, first: Int = 1, firstKey: Int64 = 1)
        -> [JSONValue]
    {
        (0..<count).map { offset in
            var change = Changes.insert(region, first + offset, id: firstKey + Int64(offset), hlc: 2000)
            if case .object(var object) = change {
                object["tx"] = .string(tx)
                change = .object(object)
            }
            return change
        }
    }

    static func chunk(
        _ hub: HubHarness, _ region: String, tx: String, _ changes: [JSONValue], first: Int, last: Bool
    ) async throws -> (status: Int, json: JSONValue) {
        let body: JSONValue = [
            "chunk": ["tx": .string(tx), "first": .integer(first), "last": .bool(last)],
            "changes": .array(Array(changes[first..<min(changes.count, first + chunkSize(changes, first))])),
        ]
        return try await hub.send("POST", "/v1/changes", token: HubHarness.token(region), body: body.serialized())
    }

    /// The tests cut transactions into chunks of 4.
    static func chunkSize(_ changes: [JSONValue], _ first: Int) -> Int { 4 }

    static func query<T: Sendable>(_ hub: HubHarness, _ body: @escaping @Sendable (PostgresConnection) throws -> T)
        async throws -> T
    {
        try await GroupCommitRaceTests.query(hub, body)
    }

    /// (rows, min seq, max seq) of the log entries of `tx`, and the staged chunks left.
    static func logged(_ hub: HubHarness, tx: String) async throws
        -> (rows: Int64, min: Int64, max: Int64, staged: Int64)
    {
        try await query(hub) { connection in
            let row = try connection.query(
                "SELECT count(*), coalesce(min(seq), 0), coalesce(max(seq), 0), "
                    + "(SELECT count(*) FROM starling_hub.staged_chunks) FROM starling_hub.log WHERE tx = $1",
                [.text(tx)])[0]
            return (try row.int64(0), try row.int64(1), try row.int64(2), try row.int64(3))
        }
    }

    @Test func chunksOutOfOrderAndRepeatedAreSequencedOnceWhenTheLastArrives() async throws {
        // Proves staged chunks are invisible to pulls, a repeated chunk changes nothing, chunks may come in any
        // order, and the last one logs the whole transaction at contiguous seqs and empties the staging.
        try await HubHarness.with { hub in
            let changes = Self.transaction("r1", tx: "r1:big", count: 10)
            #expect(try await Self.chunk(hub, "r1", tx: "r1:big", changes, first: 4, last: false).status == 200)
            let first = try await Self.chunk(hub, "r1", tx: "r1:big", changes, first: 0, last: false)
            #expect(first.status == 200)
            #expect(first.json["staged"]?["through"] == .integer(8), "a chunk at 0 says what is staged: \(first.json)")
            #expect(try await Self.chunk(hub, "r1", tx: "r1:big", changes, first: 0, last: false).status == 200)
            let pulled = try await hub.pull("r2", after: 0)
            #expect(pulled.json["entries"]?.arrayValue?.isEmpty == true && pulled.json["head"] == .integer(0))
            #expect(try await Self.logged(hub, tx: "r1:big") == (0, 0, 0, 2))

            let last = try await Self.chunk(hub, "r1", tx: "r1:big", changes, first: 8, last: true)
            #expect(last.status == 200, "\(last.json)")
            let verdicts = try TransactionVerdicts(json: last.json["transaction"] ?? .null)
            #expect(verdicts.count == 10 && verdicts.firstSeq == 1 && verdicts.exceptions.isEmpty)
            let ids = (1...10).map { "r1:\($0)" }
            #expect(try verdicts.expand(ids: ids).map(\.outcome) == (1...10).map { .accepted(seq: Int64($0)) })
            #expect(try await Self.logged(hub, tx: "r1:big") == (10, 1, 10, 0))
            let entries = try await hub.pull("r2", after: 0).json["entries"]?.arrayValue ?? []
            #expect(entries.count == 10)
        }
    }

    @Test func aReSentLastChunkAfterCompletionAsksForTheWholeTransactionAndStoresNothingTwice() async throws {
        // Proves the last chunk of a completed transaction (its answer lost) gets 409 chunks_missing, and the
        // transaction re-sent from its first chunk is answered from its stored verdicts without a second entry.
        try await HubHarness.with { hub in
            let changes = Self.transaction("r1", tx: "r1:t", count: 6)
            _ = try await Self.chunk(hub, "r1", tx: "r1:t", changes, first: 0, last: false)
            let done = try await Self.chunk(hub, "r1", tx: "r1:t", changes, first: 4, last: true)
            #expect(done.status == 200)
            let again = try await Self.chunk(hub, "r1", tx: "r1:t", changes, first: 4, last: true)
            #expect(again.status == 409 && again.json["error"]?["code"] == "chunks_missing", "\(again.json)")
            let restaged = try await Self.chunk(hub, "r1", tx: "r1:t", changes, first: 0, last: false)
            // The refused last chunk stayed staged, so chunk 0 completes the run: the agent sends the last next.
            #expect(restaged.json["staged"]?["through"] == .integer(6))
            let redone = try await Self.chunk(hub, "r1", tx: "r1:t", changes, first: 4, last: true)
            #expect(redone.status == 200)
            #expect(redone.json["transaction"] == done.json["transaction"], "the same verdicts, from storage")
            #expect(try await Self.logged(hub, tx: "r1:t") == (6, 1, 6, 0))
        }
    }

    @Test func aChunkedTransactionTakesContiguousSeqsAroundOtherPushes() async throws {
        // Proves pushes of other regions committed while a transaction is staged do not split its seqs.
        try await HubHarness.with { hub in
            let changes = Self.transaction("r1", tx: "r1:c", count: 9)
            _ = try await Self.chunk(hub, "r1", tx: "r1:c", changes, first: 0, last: false)
            #expect(try await hub.push("r2", [Changes.insert("r2", 1, id: 500)]).status == 200)
            _ = try await Self.chunk(hub, "r1", tx: "r1:c", changes, first: 4, last: false)
            #expect(try await hub.push("r3", [Changes.insert("r3", 1, id: 600)]).status == 200)
            #expect(try await Self.chunk(hub, "r1", tx: "r1:c", changes, first: 8, last: true).status == 200)
            #expect(try await Self.logged(hub, tx: "r1:c") == (9, 3, 11, 0))
        }
    }

    @Test func conflictsInsideAChunkedTransactionAreDetectedAndListedInItsVerdicts() async throws {
        // Proves each change of a chunked transaction is checked against the heads as in a plain push: an insert
        // on a key another region wrote (base 0, lower hlc) loses under lww, is recorded as a conflict and is the
        // one verdict listed; the accepted changes around it take contiguous seqs.
        try await HubHarness.with { hub in
            #expect(try await hub.push("r2", [Changes.insert("r2", 1, id: 3, hlc: 9000)]).status == 200)
            let changes = Self.transaction("r1", tx: "r1:x", count: 6)
            _ = try await Self.chunk(hub, "r1", tx: "r1:x", changes, first: 0, last: false)
            let last = try await Self.chunk(hub, "r1", tx: "r1:x", changes, first: 4, last: true)
            #expect(last.status == 200, "\(last.json)")
            let verdicts = try TransactionVerdicts(json: last.json["transaction"] ?? .null)
            #expect(verdicts.exceptions.map(\.index) == [2])
            #expect(verdicts.exceptions.first?.verdict.status == "rejected")
            let expanded = try verdicts.expand(ids: (1...6).map { "r1:\($0)" })
            #expect(expanded.map(\.version) == [2, 3, 1, 4, 5, 6], "accepted at 2…6 around the loser of key 3")
            #expect(try await Self.logged(hub, tx: "r1:x") == (5, 2, 6, 0))
            let conflicts = try await Self.query(hub) {
                try $0.query("SELECT count(*) FROM starling_hub.conflicts")[0].int64(0)
            }
            #expect(conflicts == 1)
        }
    }

    @Test func chunksAreRefusedWhenTheyBreakTheirTransactionNotForItsSize() async throws {
        // Proves a chunk holding another transaction's change is refused with 400 and stages nothing, and that
        // max_transaction_changes (a plain push's bound) does not bound a chunked transaction: 12 changes in
        // chunks of 4 are logged whole with the limit at 8 (the limits bound requests, not transactions).
        var limits = HubConfiguration.Limits()
        limits.maxPushChanges = 4
        limits.maxTransactionChanges = 8
        try await HubHarness.with(limits: limits) { hub in
            var changes = Self.transaction("r1", tx: "r1:y", count: 12)
            changes[1] = Self.transaction("r1", tx: "r1:other", count: 1, first: 2, firstKey: 2)[0]
            let mixed = try await Self.chunk(hub, "r1", tx: "r1:y", changes, first: 0, last: false)
            #expect(mixed.status == 400 && mixed.json["error"]?["code"] == "invalid_change", "\(mixed.json)")
            #expect(try await Self.logged(hub, tx: "r1:y").staged == 0)
            let whole = Self.transaction("r1", tx: "r1:z", count: 12)
            for first in stride(from: 0, to: 12, by: 4) {
                let answer = try await Self.chunk(hub, "r1", tx: "r1:z", whole, first: first, last: first == 8)
                #expect(answer.status == 200, "\(answer.json)")
            }
            #expect(try await Self.logged(hub, tx: "r1:z").rows == 12)
        }
    }

    @Test func theLockWatchWaitsLongerBehindTheBatchOfALargeStagedTransaction() async throws {
        // Proves the lock watch allows a running batch time by its size: with a 20 000-change staged transaction
        // held inside its commit, a lock check queued behind it is not "stuck" after the timeout, only after the
        // timeout plus the batch's allowance (4 s). Without the allowance the hub stepped down mid-batch, the last
        // chunk got 503 and every retry did the same (found by the 150 000-row end-to-end test).
        var limits = HubConfiguration.Limits()
        limits.maxPushChanges = 2000
        try await HubHarness.with(limits: limits) { hub in
            let count = 20_000
            let changes = Self.transaction("r1", tx: "r1:long", count: count)
            for first in stride(from: 0, to: count - 2000, by: 2000) {
                let body: JSONValue = [
                    "chunk": ["tx": "r1:long", "first": .integer(first), "last": false],
                    "changes": .array(Array(changes[first..<first + 2000])),
                ]
                let status = try await hub.send(
                    "POST", "/v1/changes", token: HubHarness.token("r1"), body: body.serialized()).status
                #expect(status == 200)
            }
            let sequencer = hub.hub.sequencer
            let timeout = Duration.milliseconds(500)
            let allowance = Sequencer.lockCheckAllowance(runningChanges: count)
            #expect(allowance == .seconds(4))
            let status = try await SequencerGate.holding(hub.database.url) {
                let last = Task {
                    let body: JSONValue = [
                        "chunk": ["tx": "r1:long", "first": .integer(count - 2000), "last": true],
                        "changes": .array(Array(changes[(count - 2000)...])),
                    ]
                    return try await hub.send(
                        "POST", "/v1/changes", token: HubHarness.token("r1"), body: body.serialized()
                    ).status
                }
                try await SequencerGate.waitUntilBlocked(hub)
                let started = ContinuousClock.now
                #expect(!sequencer.pollLock(timeout: timeout), "the first poll only queues a check")
                // The watch is about elapsed time: let the timeout pass, then a good part of the allowance.
                try await Task.sleep(until: started + timeout + .seconds(1))
                #expect(!sequencer.pollLock(timeout: timeout), "stuck after the timeout, within the batch's allowance")
                try await Task.sleep(until: started + timeout + allowance + .milliseconds(200))
                #expect(sequencer.pollLock(timeout: timeout), "past timeout and allowance the check counts as stuck")
                return last
            }
            #expect(try await status.value == 200)
            #expect(try await Self.logged(hub, tx: "r1:long") == (Int64(count), 1, Int64(count), 0))
        }
    }

    @Test func chunksStagedLongerAgoThanTheRetentionWindowAreDeletedAndTheTransactionIsResent() async throws {
        // Proves the retention round deletes chunks staged before the window (a region gone mid-push), keeps newer
        // ones, and a last chunk arriving afterwards gets 409 chunks_missing, so the agent re-sends from the start.
        try await HubHarness.with { hub in
            let changes = Self.transaction("r1", tx: "r1:old", count: 6)
            let fresh = Self.transaction("r2", tx: "r2:new", count: 6, firstKey: 100)
            _ = try await Self.chunk(hub, "r1", tx: "r1:old", changes, first: 0, last: false)
            _ = try await Self.chunk(hub, "r2", tx: "r2:new", fresh, first: 0, last: false)
            try await Self.query(hub) { connection in
                try connection.execute(
                    "UPDATE starling_hub.staged_chunks SET staged_at = now() - interval '8 days' WHERE tx = 'r1:old'")
            }
            try await hub.hub.pruneLog()
            let left = try await Self.query(hub) { connection in
                try connection.query("SELECT tx FROM starling_hub.staged_chunks").map { try $0.string(0) }
            }
            #expect(left == ["r2:new"])
            let last = try await Self.chunk(hub, "r1", tx: "r1:old", changes, first: 4, last: true)
            #expect(last.status == 409 && last.json["error"]?["code"] == "chunks_missing")
        }
    }
}

