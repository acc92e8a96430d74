import StarlingCore
import Testing

/// Delta (counter) columns, exhaustively: every policy × op × head state × race × delta listed or not, then the
/// arithmetic table (kinds, JSON forms, nulls, absent columns, overflow of smallint/integer/bigint, inexact
/// values), each against the rule of ConflictResolver+Delta.swift written out independently here.
struct ConflictResolverDeltaTests {
    typealias Scenario = ConflictResolverTests.Scenario

    static let headImage: JSONObject = ["id": 1, "a": "h", "qty": 100]
    static let before: JSONObject = ["id": 1, "a": "a0", "qty": 10]
    static let after: JSONObject = ["id": 1, "a": "a1", "qty": 13]

    static func change(for scenario: Scenario) throws -> Change {
        let plain = try ConflictResolverTests.change(for: scenario)
        return try Change(
            id: plain.id, tx: plain.tx, table: plain.table, op: plain.op, key: plain.key,
            before: plain.before == nil ? nil : before, after: plain.after == nil ? nil : after, base: plain.base,
            hlc: plain.hlc)
    }

    static func head(for scenario: Scenario) -> Head? {
        guard let plain = ConflictResolverTests.head(for: scenario) else { return nil }
        return Head(
            seq: plain.seq, origin: plain.origin, hlc: plain.hlc, image: plain.image == nil ? nil : headImage,
            prevForeignSeq: plain.prevForeignSeq, op: plain.op)
    }

    // Proves, for every combination: without delta columns nothing changes; with them an update conflicting
    // with a live head becomes `merge` of the policy's row with qty = head + (after − before), keeping the
    // policy's winner and status; everything else (no conflict, insert, delete, tombstone) is the policy's.
    @Test(arguments: ConflictResolverTests.policies, ConflictResolverTests.scenarios)
    func everyPolicyAndOperation(policy: ConflictPolicy, scenario: Scenario) throws {
        let change = try Self.change(for: scenario)
        let head = Self.head(for: scenario)
        let priorities = ConflictResolverTests.priorities(for: scenario)
        let plain = ConflictResolver.decide(change: change, head: head, policy: policy, priorities: priorities)
        let absent = ConflictResolver.decide(
            change: change, head: head, policy: policy, priorities: priorities, deltaColumns: [:])
        #expect(absent == plain)
        let unlisted = ConflictResolver.decide(
            change: change, head: head, policy: policy, priorities: priorities, deltaColumns: ["other": .integer])
        #expect(unlisted == plain, "a delta column in none of the images changes nothing")

        let decision = ConflictResolver.decide(
            change: change, head: head, policy: policy, priorities: priorities, deltaColumns: ["qty": .integer])
        guard plain.isConflict, scenario.op == .update, scenario.head == .live, let plainRecord = plain.conflict
        else {
            #expect(decision == plain)
            return
        }
        let policyRow: JSONObject =
            switch plain.outcome {
            case .accept(let row, _, _, _): try #require(row)
            case .merge(let row): row
            case .reject, .unchanged: Self.headImage
            }
        var expected = policyRow
        expected["qty"] = 103  // 100 + (13 − 10)
        #expect(decision.outcome == .merge(row: expected))
        let record = try #require(decision.conflict)
        #expect(record.status == plainRecord.status)
        #expect(record.winner == plainRecord.winner)
        #expect(record.current == plainRecord.current && record.incoming == plainRecord.incoming)
        let entry = try #require(decision.logEntry(seq: 51))
        #expect(entry.rewritten && entry.kind == .merge && entry.op == .update && entry.row == expected)
        #expect(decision.newHead(seq: 51)?.image == expected)
        #expect(decision.verdict(seq: 51, conflictID: 9).outcome == .merged(seq: 51, row: expected))
    }

    enum Expected: Sendable, Equatable {
        /// The merged row's counter.
        case value(JSONValue)
        /// The counter keeps the policy's row value (lww here: the incoming change is newer, so `after`'s).
        case policy
        /// Not exact or out of range: head stays, conflict open.
        case open
    }

    struct Arithmetic: CustomTestStringConvertible, Sendable {
        var name: String
        var kind: DeltaColumn.Kind
        var head: JSONValue
        var before: JSONValue
        var after: JSONValue
        var expected: Expected
        var testDescription: String { name }
    }

    static let int32Max: JSONValue = 2_147_483_647
    static let int64Max = JSONValue.string("9223372036854775807")
    static let int64Min = JSONValue.string("-9223372036854775808")

    static let arithmeticCases: [Arithmetic] = [
        .init(name: "integer increment", kind: .integer, head: 100, before: 10, after: 13, expected: .value(103)),
        .init(name: "integer decrement", kind: .integer, head: 5, before: 10, after: 3, expected: .value(-2)),
        .init(name: "unchanged counter keeps the head", kind: .integer, head: 100, before: 10, after: 10,
              expected: .value(100)),
        .init(name: "smallint at its top", kind: .smallint, head: 32_766, before: 0, after: 1,
              expected: .value(32_767)),
        .init(name: "smallint overflow", kind: .smallint, head: 32_767, before: 0, after: 1, expected: .open),
        .init(name: "smallint underflow", kind: .smallint, head: -32_768, before: 0, after: -1, expected: .open),
        .init(name: "integer at its top", kind: .integer, head: 2_147_483_646, before: 0, after: 1,
              expected: .value(int32Max)),
        .init(name: "integer overflow", kind: .integer, head: int32Max, before: 0, after: 1, expected: .open),
        .init(name: "integer underflow", kind: .integer, head: -2_147_483_648, before: 1, after: 0, expected: .open),
        .init(name: "bigint as strings beyond 2^53", kind: .bigint, head: .string("9007199254740993"),
              before: .string("1"), after: .string("2"), expected: .value(.string("9007199254740994"))),
        .init(name: "bigint keeps the head's JSON form", kind: .bigint, head: 7, before: .string("1"),
              after: .string("2"), expected: .value(8)),
        .init(name: "bigint at its top", kind: .bigint, head: .string("9223372036854775806"), before: 0, after: 1,
              expected: .value(int64Max)),
        .init(name: "bigint overflow", kind: .bigint, head: int64Max, before: 0, after: 1, expected: .open),
        .init(name: "bigint underflow", kind: .bigint, head: int64Min, before: 0, after: -1, expected: .open),
        .init(name: "bigint difference beyond 64 bits, sum in range", kind: .bigint, head: int64Min,
              before: int64Min, after: int64Max, expected: .value(int64Max)),
        .init(name: "bigint difference beyond 64 bits, sum out of range", kind: .bigint, head: 0, before: int64Min,
              after: int64Max, expected: .open),
        .init(name: "numeric exact", kind: .numeric, head: .string("10.50"), before: .string("1.00"),
              after: .string("3.25"), expected: .value(.string("12.75"))),
        .init(name: "numeric as numbers", kind: .numeric, head: .number("0.1"), before: .number("0.2"),
              after: .number("0.5"), expected: .value(.number("0.4"))),
        .init(name: "numeric keeps the larger scale", kind: .numeric, head: .string("1"), before: .string("0.5"),
              after: .string("1.25"), expected: .value(.string("1.75"))),
        .init(name: "numeric beyond any Double", kind: .numeric, head: .string("12345678901234567890.000000001"),
              before: .string("0"), after: .string("1"), expected: .value(.string("12345678901234567891.000000001"))),
        .init(name: "numeric crossing zero", kind: .numeric, head: .string("1.00"), before: .string("5.00"),
              after: .string("2.50"), expected: .value(.string("-1.50"))),
        .init(name: "numeric unbounded", kind: .numeric, head: int64Max, before: 0, after: 1,
              expected: .value(.string("9223372036854775808"))),
        .init(name: "numeric NaN", kind: .numeric, head: .string("NaN"), before: 1, after: 2, expected: .open),
        .init(name: "numeric Infinity", kind: .numeric, head: 1, before: 1, after: .string("Infinity"),
              expected: .open),
        .init(name: "integer kind given a fraction", kind: .integer, head: .number("1.5"), before: 1, after: 2,
              expected: .open),
        .init(name: "exponent refused", kind: .numeric, head: .number("1e3"), before: 1, after: 2, expected: .open),
        .init(name: "a string that is no number", kind: .integer, head: "ten", before: 1, after: 2, expected: .open),
        .init(name: "a bool", kind: .integer, head: .bool(true), before: 1, after: 2, expected: .open),
        .init(name: "null head keeps the policy's value", kind: .integer, head: nil, before: 1, after: 2,
              expected: .policy),
        .init(name: "null before keeps the policy's value", kind: .integer, head: 5, before: nil, after: 2,
              expected: .policy),
        .init(name: "null after keeps the policy's value", kind: .integer, head: 5, before: 1, after: nil,
              expected: .policy),
    ]

    // Proves each counter value, JSON form and the open outcome for inexact or overflowing sums.
    @Test(arguments: arithmeticCases)
    func arithmetic(testCase: Arithmetic) throws {
        let head = Head(seq: 10, origin: "us", hlc: 100, image: ["id": 1, "n": testCase.head], prevForeignSeq: 0)
        let change = try Change(
            id: "eu:3", tx: "eu:3", table: "t", op: .update, key: ["id": 1], before: ["id": 1, "n": testCase.before],
            after: ["id": 1, "n": testCase.after], base: 2, hlc: 150)
        let decision = ConflictResolver.decide(
            change: change, head: head, policy: .lww, priorities: [:], deltaColumns: ["n": testCase.kind])
        let record = try #require(decision.conflict)
        switch testCase.expected {
        case .value(let value):
            #expect(decision.outcome == .merge(row: ["id": 1, "n": value]))
            #expect(record.status == .auto && record.winner == .incoming)
        case .policy:
            #expect(decision.outcome == .merge(row: ["id": 1, "n": testCase.after]))
        case .open:
            #expect(decision.outcome == .reject)
            #expect(record.status == .open && record.winner == .current)
            #expect(decision.logEntry(seq: 11) == nil)
        }
    }

    // Proves a counter the head lacks (or a side lacks) is not combined, while another present one is.
    @Test func absentColumns() throws {
        let head = Head(seq: 10, origin: "us", hlc: 100, image: ["id": 1, "a": 1], prevForeignSeq: 0)
        let change = try Change(
            id: "eu:3", tx: "eu:3", table: "t", op: .update, key: ["id": 1], before: ["id": 1, "a": 1, "b": 1],
            after: ["id": 1, "a": 4, "b": 9], base: 2, hlc: 50)
        let decision = ConflictResolver.decide(
            change: change, head: head, policy: .lww, priorities: [:], deltaColumns: ["a": .integer, "b": .integer])
        // lww keeps the head (older incoming); a is combined (1 + 3); b is absent from the head, so not a counter.
        #expect(decision.outcome == .merge(row: ["id": 1, "a": 4]))
        #expect(decision.conflict?.winner == .current)
    }

    // Proves two regions' concurrent increments both count, in either order of arrival.
    @Test func concurrentIncrementsAllCount() throws {
        let start = Head(seq: 1, origin: "us", hlc: 1, image: ["id": 1, "n": 0], prevForeignSeq: 0)
        let eu = try Change(
            id: "eu:1", tx: "eu:1", table: "t", op: .update, key: ["id": 1], before: ["id": 1, "n": 0],
            after: ["id": 1, "n": 5], base: 1, hlc: 10)
        let ap = try Change(
            id: "ap:1", tx: "ap:1", table: "t", op: .update, key: ["id": 1], before: ["id": 1, "n": 0],
            after: ["id": 1, "n": 7], base: 1, hlc: 20)
        for (first, second) in [(eu, ap), (ap, eu)] {
            let one = ConflictResolver.decide(
                change: first, head: start, policy: .lww, priorities: [:], deltaColumns: ["n": .integer])
            #expect(!one.isConflict)
            let head = try #require(one.newHead(seq: 2))
            let two = ConflictResolver.decide(
                change: second, head: head, policy: .lww, priorities: [:], deltaColumns: ["n": .integer])
            #expect(two.isConflict)
            #expect(two.newHead(seq: 3)?.image == ["id": 1, "n": 12])
        }
    }

    static let types: [(String, DeltaColumn.Kind?)] = [
        ("smallint", .smallint), ("integer", .integer), ("bigint", .bigint), ("numeric", .numeric),
        ("numeric(12,2)", .numeric), ("real", nil), ("double precision", nil), ("money", nil), ("text", nil),
        ("numeric(", nil), ("integer[]", nil), ("timestamp with time zone", nil),
    ]

    // Proves which registered column types may be delta columns.
    @Test(arguments: types)
    func kindOfType(type: String, kind: DeltaColumn.Kind?) {
        #expect(DeltaColumn.Kind(formatType: type) == kind)
    }
}

/// Exact decimal arithmetic: parse, print, add and subtract without `Double`.
struct ExactDecimalTests {
    static let sums: [(String, String, String, String)] = [
        // (a, b, a + b, a − b)
        ("0", "0", "0", "0"), ("1", "2", "3", "-1"), ("-1", "1", "0", "-2"), ("0.10", "0.2", "0.30", "-0.10"),
        ("999", "1", "1000", "998"), ("-0.5", "-0.5", "-1.0", "0.0"), ("00012", "3", "15", "9"),
        ("9223372036854775807", "1", "9223372036854775808", "9223372036854775806"),
        ("12345678901234567890.000000001", "0.000000009", "12345678901234567890.000000010",
         "12345678901234567889.999999992"),
        ("-0", "0", "0", "0"), ("1.000", "-1", "0.000", "2.000"),
    ]

    // Proves sums and differences are exact and printed in PostgreSQL's form.
    @Test(arguments: sums)
    func arithmetic(a: String, b: String, sum: String, difference: String) throws {
        let x = try #require(ExactDecimal(a))
        let y = try #require(ExactDecimal(b))
        #expect((x + y).text == sum)
        #expect((x - y).text == difference)
    }

    // Proves what is refused on input.
    @Test(arguments: ["", "-", ".", "1.", ".5", "1e3", "NaN", "Infinity", "-Infinity", "+1", "1.2.3", "0x10", " 1",
                      String(repeating: "9", count: ExactDecimal.maxDigits + 2)])
    func refuses(text: String) {
        #expect(ExactDecimal(text) == nil)
    }

    static let integers: [(String, Int64?)] = [
        ("0", 0), ("-0", 0), ("42", 42), ("42.000", 42), ("42.5", nil), ("0.00", 0),
        ("9223372036854775807", .max), ("-9223372036854775808", .min), ("9223372036854775808", nil),
        ("-9223372036854775809", nil), ("99999999999999999999", nil),
    ]

    // Proves the integral value and its bounds.
    @Test(arguments: integers)
    func int64Value(text: String, value: Int64?) throws {
        #expect(try #require(ExactDecimal(text)).int64Value == value)
    }
}
