import StarlingCore
import Testing

/// The compact verdicts of a chunked transaction: lossless, and as small as its exceptions.
struct TransactionVerdictsTests {
    static let winner = Verdict.Winner(seq: 3, origin: "r2", row: ["id": 1])

    /// Verdict lists in change order, as the sequencer produces them (and a re-push's stored ones).
    static let cases: [[Verdict.Outcome]] = [
        [],
        [.accepted(seq: 7)],
        [.accepted(seq: 7), .accepted(seq: 8), .accepted(seq: 9)],
        [.rejected(conflict: 1, winner: winner)],
        [.rejected(conflict: 1, winner: winner), .accepted(seq: 4), .accepted(seq: 5)],
        [.accepted(seq: 4), .merged(seq: 5, row: ["id": 2]), .accepted(seq: 6), .rejected(conflict: 2, winner: winner),
         .accepted(seq: 7)],
        // Stored verdicts of a re-push need not be contiguous: each jump is listed.
        [.accepted(seq: 4), .accepted(seq: 9), .accepted(seq: 10), .accepted(seq: 2)],
    ]

    @Test(arguments: cases)
    func compactsAndExpandsBackExactly(_ outcomes: [Verdict.Outcome]) throws {
        // Proves expand(compact(v)) == v, through the wire form too, and only unpredicted verdicts are listed.
        let verdicts = outcomes.enumerated().map { Verdict(id: "r1:\($0.offset)", outcome: $0.element) }
        let compact = TransactionVerdicts(tx: "r1:9", verdicts: verdicts)
        #expect(try compact.expand(ids: verdicts.map(\.id)) == verdicts)
        var wire: [UInt8] = []
        compact.write(to: &wire)
        let decoded = try TransactionVerdicts(json: try JSONValue(parsing: wire))
        #expect(decoded == compact)
        #expect(try decoded.expand(ids: verdicts.map(\.id)) == verdicts)
        // The versions alone, and the expansion slice by slice, say the same.
        #expect(compact.versions() == verdicts.map(\.version))
        var expander = TransactionVerdicts.Expander(compact)
        var sliced: [Verdict] = []
        for start in stride(from: 0, to: verdicts.count, by: 2) {
            sliced += try expander.next(ids: verdicts[start..<min(start + 2, verdicts.count)].map(\.id))
        }
        try expander.finish()
        #expect(sliced == verdicts)
        let predictable = zip(verdicts, verdicts.dropFirst()).filter { previous, next in
            if case .accepted(let seq) = next.outcome {
                return seq == previous.version + 1 && previous.status != "rejected"
            }
            return false
        }.count
        #expect(compact.exceptions.count <= verdicts.count - predictable)
        // The newest logged seq, read from the compact form, is what the expanded verdicts say (a rejection's
        // winner logs nothing new).
        let logged = verdicts.compactMap { verdict -> Int64? in
            if case .rejected = verdict.outcome { return nil }
            return verdict.version
        }
        #expect(compact.newestSeq == logged.max() ?? 0)
        // Built slice by slice, the same as at once.
        var builder = TransactionVerdicts.Builder(tx: "r1:9")
        for slice in stride(from: 0, to: verdicts.count, by: 2) {
            builder.append(verdicts[slice..<min(slice + 2, verdicts.count)])
        }
        #expect(builder.verdicts == compact)
    }

    @Test func aMillionAcceptedVerdictsCompactToNoException() {
        // Proves the answer of a large, conflict-free transaction does not grow with it.
        let verdicts = (0..<1_000_000).map { Verdict(id: "r1:\($0)", outcome: .accepted(seq: Int64(100 + $0))) }
        let compact = TransactionVerdicts(tx: "r1:big", verdicts: verdicts)
        var wire: [UInt8] = []
        compact.write(to: &wire)
        #expect(compact.exceptions.isEmpty && wire.count < 100, "\(String(decoding: wire, as: UTF8.self))")
    }

    @Test func verdictsForAnotherTransactionAreRefused() {
        // Proves an answer that does not fit the pushed ids (count or id) is an error, never misattributed.
        let verdicts = [Verdict(id: "r1:1", outcome: .rejected(conflict: 1, winner: Self.winner))]
        let compact = TransactionVerdicts(tx: "r1:9", verdicts: verdicts)
        #expect(throws: CoreError.self) { try compact.expand(ids: ["r1:1", "r1:2"]) }
        #expect(throws: CoreError.self) { try compact.expand(ids: ["r1:2"]) }
    }

    @Test func exceptionsOutOfOrderOrBeyondTheTransactionAreRefusedWhenRead() throws {
        // Proves a malformed answer is refused as it is read: readers index the transaction's changes by the
        // exceptions' indexes (the spilled path reads the file there), so one beyond the count would trap.
        func answer(_ indexes: [Int], changes: Int) -> String {
            let items = indexes.map { #"{"index":\#($0),"id":"r1:\#($0)","status":"accepted","seq":\#(50 + $0)}"# }
            return #"{"tx":"r1:9","changes":\#(changes),"first_seq":1,"exceptions":[\#(items.joined(separator: ","))]}"#
        }
        #expect(try TransactionVerdicts(json: try JSONValue(parsing: answer([1, 3], changes: 4))).exceptions.count == 2)
        #expect(throws: CoreError.self) { try TransactionVerdicts(json: try JSONValue(parsing: answer([4], changes: 4))) }
        #expect(throws: CoreError.self) { try TransactionVerdicts(json: try JSONValue(parsing: answer([2, 2], changes: 4))) }
        #expect(throws: CoreError.self) { try TransactionVerdicts(json: try JSONValue(parsing: answer([3, 1], changes: 4))) }
    }
}
