import StarlingCore
import Testing

/// Re-assertions after a restore of the hub's store (``ConflictResolver/decideReassert``), case by case over the
/// head (none, the same image, another image, a tombstone), who wrote it (a plain change before or after the
/// region's rewind point, a re-assertion of lower, equal or higher priority) and the policy; each checked
/// against the rules written out independently below.
struct ConflictResolverReassertTests {
    enum HeadKind: String, CaseIterable { case none, same, other, tombstone }
    enum Writer: String, CaseIterable { case plainBefore, plainAfter, lower, equal, higher }

    struct Scenario: CustomTestStringConvertible, Sendable {
        var head: HeadKind
        var writer: Writer
        var deletes: Bool
        var testDescription: String { "\(deletes ? "delete" : "upsert") onto \(head) head by \(writer)" }
    }

    static let scenarios: [Scenario] = HeadKind.allCases.flatMap { head in
        Writer.allCases.flatMap { writer in [false, true].map { Scenario(head: head, writer: writer, deletes: $0) } }
    }

    static let base: Int64 = 100
    static let priority: Int64 = 150
    static let image: JSONObject = ["id": 1, "v": "lost"]

    static func change(deletes: Bool, head: HeadKind) throws -> Change {
        let before: JSONObject? = head == .none || head == .tombstone ? nil : ["id": 1, "v": "older"]
        if deletes {
            return try Change(
                id: "r2:9", tx: "r2:9", table: "public.t", op: .delete, key: ["id": 1],
                before: before ?? ["id": 1, "v": "older"], after: nil, base: base, hlc: 5_000, reassert: priority)
        }
        return try Change(
            id: "r2:9", tx: "r2:9", table: "public.t", op: before == nil ? .insert : .update, key: ["id": 1],
            before: before, after: image, base: base, hlc: 5_000, reassert: priority)
    }

    @Test(arguments: scenarios, [ConflictPolicy.lww, .reject, .manual(provisional: .keepHead)])
    func decides(_ scenario: Scenario, policy: ConflictPolicy) throws {
        let change = try Self.change(deletes: scenario.deletes, head: scenario.head)
        let headImage: JSONObject? =
            switch scenario.head {
            case .none, .tombstone: nil
            case .same: change.image
            case .other: ["id": 1, "v": "other"]
            }
        let seq: Int64 = scenario.writer == .plainBefore ? 90 : 120
        let head: Head? =
            scenario.head == .none ? nil
            : Head(seq: seq, origin: "r1", hlc: 1_000, image: headImage, prevForeignSeq: 0)
        // No head, no priority: the hub reads one only for the head's own seq.
        let writtenBy: Writer? = head == nil ? nil : scenario.writer
        let headPriority: Int64? =
            switch writtenBy {
            case nil: nil
            case .plainBefore, .plainAfter: nil
            case .lower: Self.priority - 10
            case .equal: Self.priority
            case .higher: Self.priority + 10
            }
        let result = ConflictResolver.decideReassert(
            change: change, head: head, headPriority: headPriority, policy: policy, priorities: RegionPriorities([:]))

        // The rules, independently.
        let sameImage = head != nil && head?.image == change.image
        if head == nil {
            #expect(!result.decision.isConflict && result.decision.appendsEntry && result.priority == Self.priority)
        } else if let head, sameImage {
            // Nothing logged: accepted at the head's seq, the head's priority raised.
            #expect(!result.decision.isConflict && !result.decision.appendsEntry)
            #expect(result.decision.verdict(seq: nil, conflictID: nil).outcome == .accepted(seq: head.seq))
            #expect(result.priority == max(Self.priority, headPriority ?? 0))
        } else if let headPriority {
            if Self.priority > headPriority {
                #expect(!result.decision.isConflict && result.decision.appendsEntry && result.priority == Self.priority)
            } else {
                #expect(result.decision.isConflict && !result.decision.appendsEntry && result.priority == nil)
                #expect(result.decision.conflict?.status == .auto && result.decision.conflict?.winner == .current)
            }
        } else if seq <= Self.base {
            #expect(!result.decision.isConflict && result.decision.appendsEntry && result.priority == Self.priority)
        } else {
            // A write after the rewind point met an image from before it: the table's policy decides.
            let plain = ConflictResolver.decide(change: change, head: head, policy: policy, priorities: RegionPriorities([:]))
            #expect(result.decision == plain && result.priority == nil)
        }
    }

    @Test func theReassertMarkTravelsOnTheWire() throws {
        let change = try Self.change(deletes: false, head: .none)
        #expect(try Change(json: change.json).reassert == Self.priority)
        #expect(change.json["reassert"]?.int64Value == Self.priority)
        let plain = try Change(
            id: "r2:1", tx: "r2:1", table: "public.t", op: .insert, key: ["id": 1], before: nil, after: Self.image,
            base: 0, hlc: 1)
        #expect(plain.json["reassert"] == nil)
        var negative = change.json.objectValue ?? [:]
        negative["reassert"] = .integer(-1)
        #expect(throws: CoreError.self) { try Change(json: .object(negative)) }
    }

    @Test func aRebasedChangeKeepsEverythingButALowerBase() throws {
        let change = try Self.change(deletes: false, head: .other)
        let rebased = change.rebased(atMost: 40)
        #expect(rebased.base == 40 && rebased.id == change.id && rebased.after == change.after)
        #expect(rebased.reassert == change.reassert)
        #expect(change.rebased(atMost: 500) == change)
    }
}
