import StarlingCore
import StarlingHTTP2
import StarlingHub
import Testing

@Suite(.timeLimit(.minutes(2)))
struct HubPushPullTests {
    @Test func pushThenPullRoundTrip() async throws {
        // Proves a pushed change is accepted with a seq and reaches other regions but not its origin.
        try await HubHarness.with { hub in
            let pushed = try await hub.push(
                "r1", [Changes.insert("r1", 1, id: 42, row: ["qty": 1, "big": "12345678901234567890"])])
            #expect(pushed.status == 200)
            let result = try #require(pushed.json["results"]?[0])
            #expect(result["status"] == "accepted")
            #expect(result["seq"] == 1)
            #expect(result["id"] == "r1:1")

            let pulled = try await hub.pull("r2", after: 0)
            #expect(pulled.status == 200)
            let entry = try #require(pulled.json["entries"]?[0])
            #expect(entry["seq"] == 1 && entry["origin"] == "r1" && entry["kind"] == "change")
            #expect(entry["row"]?["big"] == "12345678901234567890")
            #expect(entry["rewritten"] == false)
            #expect(pulled.json["next"] == 1 && pulled.json["head"] == 1)

            let own = try await hub.pull("r1", after: 0)
            #expect(own.json["entries"]?.arrayValue?.isEmpty == true)
            #expect(own.json["next"] == 1)
        }
    }

    @Test func rePushReturnsTheSameVerdictAndAddsNoEntry() async throws {
        // Proves idempotency by change id: the second push answers the stored verdict and the log does not grow.
        try await HubHarness.with { hub in
            let change = Changes.insert("r1", 7, id: 1)
            let first = try await hub.push("r1", [change])
            let before = try await hub.counts()
            let second = try await hub.push("r1", [change])
            #expect(first.status == 200 && second.status == 200)
            #expect(first.json == second.json)
            #expect(try await hub.counts() == before)
            #expect(hub.hub.head == 1)
        }
    }

    @Test func sameKeyChangesInOnePushSeeEachOther() async throws {
        // Proves a region's insert then update of one key in one push are both accepted in order (no conflict).
        try await HubHarness.with { hub in
            let pushed = try await hub.push(
                "r1",
                [
                    Changes.insert("r1", 1, id: 5, row: ["qty": 1]),
                    Changes.update("r1", 2, id: 5, before: ["qty": 1], after: ["qty": 2], base: 0, hlc: 2000),
                ])
            #expect(pushed.json["results"]?[0]?["seq"] == 1)
            #expect(pushed.json["results"]?[1]?["seq"] == 2)
            #expect(pushed.json["results"]?[1]?["status"] == "accepted")
        }
    }

    @Test func longPollReturnsEarlyWhenAPushCommits() async throws {
        // Proves a waiting pull is woken by a commit well before wait_ms, and waits when nothing comes.
        try await HubHarness.with { hub in
            let clock = ContinuousClock()
            let quiet = clock.now
            let empty = try await hub.pull("r2", after: 0, waitMs: 300)
            #expect(clock.now - quiet >= .milliseconds(280))
            #expect(empty.json["entries"]?.arrayValue?.isEmpty == true)

            let started = clock.now
            async let woken = hub.pull("r2", after: 0, waitMs: 20_000)
            // The pull must be waiting before the push: poll the status of the wait, with a deadline.
            let deadline = clock.now + .seconds(10)
            while clock.now < deadline {
                if try await waitingPulls(hub) > 0 { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            _ = try await hub.push("r1", [Changes.insert("r1", 1, id: 1)])
            let result = try await woken
            #expect(clock.now - started < .seconds(5))
            #expect(result.json["entries"]?[0]?["id"] == "r1:1")
        }
    }

    private func waitingPulls(_ hub: HubHarness) async throws -> Int {
        let response = try await hub.metrics()
        let text = String(decoding: response.body, as: UTF8.self)
        for line in text.split(separator: "\n") where line.hasPrefix("starling_hub_waiting_pulls ") {
            return Int(Double(line.split(separator: " ").last ?? "0") ?? 0)
        }
        return 0
    }

    @Test func eightRegionsPushingConcurrentlyGiveAGapFreeOrderEveryoneReceivesOnce() async throws {
        // Proves concurrent pushes from eight regions get gap-free seqs and every puller gets every foreign
        // entry exactly once.
        try await HubHarness.with { hub in
            let perRegion = 20
            let batch = 10
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, region) in HubHarness.regionNames.enumerated() {
                    group.addTask {
                        for push in 0..<perRegion {
                            let changes = (0..<batch).map { i in
                                let n = push * batch + i + 1
                                return Changes.insert(region, n, id: Int64(index * 100_000 + n))
                            }
                            let response = try await hub.push(region, changes)
                            #expect(response.status == 200)
                        }
                    }
                }
                try await group.waitForAll()
            }
            let total = HubHarness.regionNames.count * perRegion * batch
            #expect(hub.hub.head == Int64(total))
            for region in HubHarness.regionNames {
                var after: Int64 = 0
                var seen: [String] = []
                var seqs: [Int64] = []
                while true {
                    let page = try await hub.pull(region, after: after, limit: 137)
                    let entries = page.json["entries"]?.arrayValue ?? []
                    for entry in entries {
                        seen.append(entry["id"]?.stringValue ?? "")
                        seqs.append(entry["seq"]?.int64Value ?? 0)
                    }
                    let next = page.json["next"]?.int64Value ?? after
                    if next == after { break }
                    after = next
                }
                #expect(seen.count == total - perRegion * batch)
                #expect(Set(seen).count == seen.count)
                #expect(!seen.contains { $0.hasPrefix(region + ":") })
                #expect(seqs == seqs.sorted())
            }
        }
    }
}
