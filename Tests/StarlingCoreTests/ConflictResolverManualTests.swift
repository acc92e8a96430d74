import StarlingCore
import Testing

/// Manual resolution: the resolution entry, the new head and the updated record for each pick.
struct ConflictResolverManualTests {
    static let record = ConflictRecord(
        id: 4, table: "public.items", key: ["id": 1], policy: .manual(provisional: .keepHead), status: .open,
        winner: .current,
        current: .init(seq: 20, origin: "us", op: .update, row: ["id": 1, "v": "current"]),
        incoming: .init(id: "eu:9", origin: "eu", op: .delete, base: 12, row: nil))
    static let head = Head(seq: 25, origin: "ap", hlc: 500, image: ["id": 1, "v": "later"], prevForeignSeq: 20)

    static let picks: [(ManualPick, JSONObject?, ChangeOperation, ConflictRecord.Winner)] = [
        (.current, ["id": 1, "v": "current"], .update, .current),
        (.incoming, nil, .delete, .incoming),
        (.row(["id": 1, "v": "operator"]), ["id": 1, "v": "operator"], .update, .current),
    ]

    // Proves each pick yields a rewritten `resolution` entry from the hub, the matching head and a resolved record.
    @Test(arguments: picks)
    func resolves(pick: ManualPick, row: JSONObject?, op: ChangeOperation, winner: ConflictRecord.Winner) throws {
        let resolution = try ConflictResolver.resolveManually(
            record: Self.record, head: Self.head, pick: pick, seq: 30, hlc: 900)
        #expect(
            resolution.entry
                == LogEntry(
                    seq: 30, origin: "hub", id: "hub:30", tx: "hub:30", table: "public.items", op: op, key: ["id": 1],
                    row: row, hlc: 900, kind: .resolution, rewritten: true))
        #expect(resolution.head == Head(seq: 30, origin: "hub", hlc: 900, image: row, prevForeignSeq: 25, op: op))
        #expect(resolution.record.status == .resolved)
        #expect(resolution.record.winner == winner)
        #expect(resolution.record.current == Self.record.current)
    }

    // Proves a resolution onto a missing or deleted head is an insert, and its HLC never goes below the head's.
    @Test func insertOntoTombstoneAndHLCFloor() throws {
        let tombstone = Head(seq: 25, origin: "hub", hlc: 5_000, image: nil, prevForeignSeq: 21)
        let resolution = try ConflictResolver.resolveManually(
            record: Self.record, head: tombstone, pick: .current, seq: 31, hlc: 900)
        #expect(resolution.entry.op == .insert)
        #expect(resolution.entry.hlc == 5_000 && resolution.head.hlc == 5_000)
        #expect(resolution.head.prevForeignSeq == 21)  // the hub followed itself
        let fresh = try ConflictResolver.resolveManually(record: Self.record, head: nil, pick: .current, seq: 1, hlc: 7)
        #expect(fresh.entry.op == .insert && fresh.head.prevForeignSeq == 0)
    }

    // Proves a written row must keep the conflict's key, and a resolved conflict cannot be resolved again.
    @Test func refusals() throws {
        for row: JSONObject in [["v": "no key"], ["id": 2, "v": "other key"], ["id": "1"]] {
            #expect {
                try ConflictResolver.resolveManually(
                    record: Self.record, head: Self.head, pick: .row(row), seq: 30, hlc: 1)
            } throws: { ($0 as? CoreError)?.code == .invalidResolution && ($0 as? CoreError)?.field == "row.id" }
        }
        var resolved = Self.record
        resolved.status = .resolved
        #expect {
            try ConflictResolver.resolveManually(record: resolved, head: Self.head, pick: .current, seq: 30, hlc: 1)
        } throws: { ($0 as? CoreError)?.code == .invalidResolution }
    }

    // Proves a region writing after the resolution without having seen it conflicts (the hub is foreign to all).
    @Test func writesAfterResolutionMustSeeIt() throws {
        let resolution = try ConflictResolver.resolveManually(
            record: Self.record, head: Self.head, pick: .current, seq: 30, hlc: 900)
        for (base, conflict) in [(Int64(25), true), (30, false)] {
            let change = try Change(
                id: "ap:1", tx: "ap:1", table: "public.items", op: .update, key: ["id": 1], before: ["id": 1],
                after: ["id": 1, "v": "x"], base: base, hlc: 1_000)
            #expect(ConflictResolver.isConflict(change: change, head: resolution.head) == conflict)
        }
    }
}
