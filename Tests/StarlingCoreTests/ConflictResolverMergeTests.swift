import StarlingCore
import Testing

/// Column-level merge: which side each column comes from, and the degenerate cases that fall back to lww.
struct ConflictResolverMergeTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var name: String
        var before: JSONObject
        var after: JSONObject
        var head: JSONObject
        /// Incoming HLC; the head's is 100.
        var hlc: Int64
        var merged: JSONObject
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(
            name: "only incoming changed a column", before: ["id": 1, "a": 1, "b": 1],
            after: ["id": 1, "a": 2, "b": 1],
            head: ["id": 1, "a": 1, "b": 1], hlc: 50, merged: ["id": 1, "a": 2, "b": 1]),
        Case(
            name: "disjoint columns combine", before: ["id": 1, "a": 1, "b": 1], after: ["id": 1, "a": 2, "b": 1],
            head: ["id": 1, "a": 1, "b": 9], hlc: 50, merged: ["id": 1, "a": 2, "b": 9]),
        Case(
            name: "both changed, incoming newer wins the column", before: ["id": 1, "a": 1, "b": 1],
            after: ["id": 1, "a": 2, "b": 1], head: ["id": 1, "a": 3, "b": 7], hlc: 150,
            merged: ["id": 1, "a": 2, "b": 7]),
        Case(
            name: "both changed, head newer keeps the column", before: ["id": 1, "a": 1, "b": 1],
            after: ["id": 1, "a": 2, "b": 2], head: ["id": 1, "a": 3, "b": 1], hlc: 50,
            merged: ["id": 1, "a": 3, "b": 2]),
        Case(
            name: "both changed to the same value", before: ["id": 1, "a": 1], after: ["id": 1, "a": 5],
            head: ["id": 1, "a": 5], hlc: 50, merged: ["id": 1, "a": 5]),
        Case(
            name: "incoming changed nothing: merged equals the head", before: ["id": 1, "a": 1],
            after: ["id": 1, "a": 1],
            head: ["id": 1, "a": 4], hlc: 150, merged: ["id": 1, "a": 4]),
        Case(
            name: "a column the head lacks is added", before: ["id": 1], after: ["id": 1, "c": "new"],
            head: ["id": 1, "a": 1], hlc: 50, merged: ["id": 1, "a": 1, "c": "new"]),
        Case(
            name: "setting a column to null counts as a change", before: ["id": 1, "a": 1], after: ["id": 1, "a": nil],
            head: ["id": 1, "a": 1, "b": 2], hlc: 50, merged: ["id": 1, "a": nil, "b": 2]),
        Case(
            name: "numbers compare by text, losslessly", before: ["id": 1, "n": .number("1.0")],
            after: ["id": 1, "n": .number("12345678901234567890.000000001")],
            head: ["id": 1, "n": .number("1.0"), "m": 3],
            hlc: 50, merged: ["id": 1, "n": .number("12345678901234567890.000000001"), "m": 3]),
    ]

    // Proves each column comes from the side the merge rule says, and the outcome is always `merge`.
    @Test(arguments: cases)
    func mergesColumns(testCase: Case) throws {
        let head = Head(seq: 10, origin: "us", hlc: 100, image: testCase.head, prevForeignSeq: 4)
        let change = try Change(
            id: "eu:3", tx: "eu:3", table: "t", op: .update, key: ["id": 1], before: testCase.before,
            after: testCase.after, base: 4, hlc: testCase.hlc)
        let decision = ConflictResolver.decide(change: change, head: head, policy: .merge, priorities: [:])
        #expect(decision.isConflict)
        #expect(decision.outcome == .merge(row: testCase.merged))
        #expect(decision.conflict?.winner == .incoming)
        #expect(decision.conflict?.status == .auto)
        #expect(decision.newHead(seq: 11)?.hlc == max(100, testCase.hlc))
        #expect(decision.logEntry(seq: 11)?.rewritten == true)
        #expect(decision.logEntry(seq: 11)?.kind == .merge)
    }

    // Proves a both-sides column at equal HLC goes by priority, then by the smaller region name.
    @Test func columnTieBreaks() throws {
        let head = Head(seq: 10, origin: "us", hlc: 100, image: ["id": 1, "a": "head"], prevForeignSeq: 0)
        let change = try Change(
            id: "eu:3", tx: "eu:3", table: "t", op: .update, key: ["id": 1], before: ["id": 1, "a": "old"],
            after: ["id": 1, "a": "incoming"], base: 2, hlc: 100)
        let byName = ConflictResolver.decide(change: change, head: head, policy: .merge, priorities: [:])
        #expect(byName.outcome == .merge(row: ["id": 1, "a": "incoming"]))
        let byPriority = ConflictResolver.decide(change: change, head: head, policy: .merge, priorities: ["us": 1])
        #expect(byPriority.outcome == .merge(row: ["id": 1, "a": "head"]))
    }

    static let degenerate: [(ChangeOperation, Bool, Int64, Bool)] = [
        // (incoming op, head is a tombstone, incoming hlc vs head 100, incoming wins)
        (.insert, false, 150, true), (.insert, false, 50, false),
        (.delete, false, 150, true), (.delete, false, 50, false),
        (.update, true, 150, true), (.update, true, 50, false),
        (.insert, true, 150, true), (.delete, true, 50, false),
    ]

    // Proves merges without two live rows fall back to whole-row lww and are not rewritten.
    @Test(arguments: degenerate)
    func degenerateMergeFallsBackToLWW(op: ChangeOperation, isTombstone: Bool, hlc: Int64, incomingWins: Bool) throws {
        let head = Head(
            seq: 10, origin: "us", hlc: 100, image: isTombstone ? nil : ["id": 1, "a": 1], prevForeignSeq: 0)
        let change = try Change(
            id: "eu:3", tx: "eu:3", table: "t", op: op, key: ["id": 1],
            before: op == .insert ? nil : ["id": 1, "a": 0], after: op == .delete ? nil : ["id": 1, "a": 2],
            base: 2, hlc: hlc)
        let decision = ConflictResolver.decide(change: change, head: head, policy: .merge, priorities: [:])
        #expect(decision.isConflict)
        if incomingWins {
            #expect(
                decision.outcome
                    == .accept(row: change.after, isTombstone: op == .delete, kind: .change, rewritten: false))
            #expect(decision.conflict?.winner == .incoming)
        } else {
            #expect(decision.outcome == .reject)
            #expect(decision.conflict?.winner == .current)
        }
    }
}
