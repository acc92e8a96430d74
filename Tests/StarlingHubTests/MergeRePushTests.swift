import StarlingCore
import Testing

@testable import StarlingHub

/// Re-pushing a merged change (after a lost answer or a hub crash) must answer the merged image of its entry.
@Suite(.serialized) struct MergeRePushTests {
    @Test func rePushOfAMergedChangeAnswersTheMergedRowOfItsEntry() async throws {
        // Proves the stored verdict of a merged change (found in the log by id) carries the entry's row and seq.
        try await HubHarness.with { hub in
            let table = "public.merged"
            _ = try await hub.push("r1", [Changes.insert("r1", 1, table: table, id: 1, row: ["a": 1, "b": 1])])
            _ = try await hub.push(
                "r1",
                [
                    Changes.update(
                        "r1", 2, table: table, id: 1, before: ["a": 1, "b": 1], after: ["a": 2, "b": 1], base: 1,
                        hlc: 2000)
                ])
            let change = Changes.update(
                "r2", 1, table: table, id: 1, before: ["a": 1, "b": 1], after: ["a": 1, "b": 2], base: 1, hlc: 3000)
            let first = try await hub.push("r2", [change])
            // A later foreign change moves the head on; the re-push must still answer the entry's own row.
            _ = try await hub.push(
                "r1",
                [
                    Changes.update(
                        "r1", 3, table: table, id: 1, before: ["a": 2, "b": 2], after: ["a": 3, "b": 2], base: 3,
                        hlc: 4000)
                ])
            let second = try await hub.push("r2", [change])
            #expect(first.json["results"]?[0]?["status"] == "merged")
            #expect(second.json == first.json)
            #expect(hub.hub.head == 4)
        }
    }
}
