import StarlingCore
import Testing

/// Golden JSON for the hub → agent wire types, and the byte-writers' agreement with the canonical serializer.
struct WireTests {
    static let entry = LogEntry(
        seq: 9_007_199_254_740_993, origin: "eu-west", id: "eu-west:1842", tx: "eu-west:90211", table: "public.items",
        op: .update, key: ["id": 42], row: ["id": 42, "note": "a\"b\n", "n": .number("1.50")],
        hlc: 1_764_000_000_123_456,
        kind: .merge, rewritten: true)

    // Proves the log entry's exact canonical JSON.
    @Test func logEntryGolden() {
        #expect(
            Self.entry.json.canonicalText == #"""
                {"hlc":1764000000123456,"id":"eu-west:1842","key":{"id":42},"kind":"merge","op":"update","origin":"eu-west","rewritten":true,"row":{"id":42,"n":1.50,"note":"a\"b\n"},"seq":9007199254740993,"table":"public.items","tx":"eu-west:90211"}
                """#)
    }

    // Proves an entry is a value: its fields live behind one shared reference (copy on write), and changing
    // every field of a copy leaves the original and other copies as they were.
    @Test func logEntryCopiesAreIndependent() {
        let original = Self.entry
        let other = original
        var copy = original
        copy.seq = 1
        copy.origin = "us-east"
        copy.id = "us-east:1"
        copy.tx = "us-east:2"
        copy.table = "public.other"
        copy.op = .insert
        copy.key = ["id": 7]
        copy.row = ["id": 7]
        copy.hlc = 3
        copy.kind = .change
        copy.rewritten = false
        copy.base = 4
        #expect(original == Self.entry && other == Self.entry)
        #expect(original.json.canonicalText == Self.entry.json.canonicalText)
        #expect(copy.seq == 1 && copy.origin == "us-east" && copy.id == "us-east:1" && copy.tx == "us-east:2")
        #expect(copy.table == "public.other" && copy.op == .insert && copy.key == ["id": 7] && copy.row == ["id": 7])
        #expect(copy.hlc == 3 && copy.kind == .change && !copy.rewritten && copy.base == 4)
    }

    static let entries: [LogEntry] = {
        var delete = entry
        delete.op = .delete
        delete.row = nil
        delete.kind = .change
        delete.rewritten = false
        var resolution = entry
        resolution.kind = .resolution
        resolution.origin = "hub"
        return [entry, delete, resolution]
    }()

    // Proves LogEntry.write(to:) gives exactly json.serialized() and decoding inverts it.
    @Test(arguments: entries)
    func logEntryWriterAgrees(entry: LogEntry) throws {
        var bytes: [UInt8] = []
        entry.write(to: &bytes)
        #expect(bytes == entry.json.serialized())
        #expect(try LogEntry(json: JSONValue(parsing: bytes)) == entry)
    }

    static let verdicts: [(Verdict, String)] = [
        (Verdict(id: "r:1", outcome: .accepted(seq: 7)), #"{"id":"r:1","seq":7,"status":"accepted"}"#),
        (
            Verdict(id: "r:2", outcome: .merged(seq: 8, row: ["id": 1, "b": "y"])),
            #"{"id":"r:2","row":{"b":"y","id":1},"seq":8,"status":"merged"}"#
        ),
        (
            Verdict(id: "r:3", outcome: .rejected(conflict: 5, winner: .init(seq: 6, origin: "us", row: ["id": 1]))),
            #"{"conflict":5,"id":"r:3","status":"rejected","winner":{"origin":"us","row":{"id":1},"seq":6}}"#
        ),
        (
            Verdict(id: "r:4", outcome: .rejected(conflict: 5, winner: .init(seq: 6, origin: "us", row: nil))),
            #"{"conflict":5,"id":"r:4","status":"rejected","winner":{"origin":"us","row":null,"seq":6}}"#
        ),
    ]

    // Proves each verdict's exact JSON (DESIGN.md push verdicts), the writer's agreement, and decoding.
    @Test(arguments: verdicts)
    func verdictGolden(verdict: Verdict, text: String) throws {
        #expect(verdict.json.canonicalText == text)
        var bytes: [UInt8] = []
        verdict.write(to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == text)
        #expect(try Verdict(json: JSONValue(parsing: text)) == verdict)
    }

    // Proves a stored rejection re-sent for a retry names the current head as winner; others are unchanged.
    @Test func verdictWithCurrentWinner() {
        let head = Head(seq: 99, origin: "ap", hlc: 1, image: ["id": 1, "x": 2], prevForeignSeq: 0)
        let rejected = Verdict(
            id: "r:3", outcome: .rejected(conflict: 5, winner: .init(seq: 6, origin: "us", row: nil)))
        #expect(rejected.withCurrentWinner(head).outcome == .rejected(conflict: 5, winner: .init(head: head)))
        let accepted = Verdict(id: "r:1", outcome: .accepted(seq: 7))
        #expect(accepted.withCurrentWinner(head) == accepted)
    }

    // Proves verdict decoding names the bad field.
    @Test func verdictDecodingErrors() throws {
        for (text, field) in [
            (#"{"id":"a","status":"nope"}"#, "status"), (#"{"id":"a","status":"accepted"}"#, "seq"),
            (#"{"id":"a","status":"rejected","conflict":1,"winner":{"seq":1}}"#, "winner.origin"),
        ] {
            #expect { try Verdict(json: JSONValue(parsing: text)) } throws: { ($0 as? CoreError)?.field == field }
        }
    }

    static let record = ConflictRecord(
        id: 17, table: "public.items", key: ["id": 42], policy: .lww, status: .auto, winner: .incoming,
        current: .init(seq: 10, origin: "us-east", op: .update, row: ["id": 42, "qty": 1]),
        incoming: .init(id: "eu-west:5", origin: "eu-west", op: .delete, base: 9, row: nil),
        detectedAt: "2026-11-25T01:02:03.000004+00:00")

    // Proves the conflict record's exact JSON (DESIGN.md GET /v1/conflicts element) and decoding.
    @Test func conflictRecordGolden() throws {
        let text = #"""
            {"current":{"op":"update","origin":"us-east","row":{"id":42,"qty":1},"seq":10},"detected_at":"2026-11-25T01:02:03.000004+00:00","id":17,"incoming":{"base":9,"id":"eu-west:5","op":"delete","origin":"eu-west","row":null},"key":{"id":42},"policy":"lww","status":"auto","table":"public.items","winner":"incoming"}
            """#
        #expect(Self.record.json.canonicalText == text)
        #expect(try ConflictRecord(json: JSONValue(parsing: text)) == Self.record)
    }

    // Proves a manual record carries and restores its provisional mode, and id/time are omitted when unset.
    @Test func conflictRecordManual() throws {
        var record = Self.record
        record.policy = .manual(provisional: .lww)
        record.status = .open
        record.id = nil
        record.detectedAt = nil
        let json = record.json
        #expect(json["provisional"] == "lww")
        #expect(json["id"] == nil && json["detected_at"] == nil)
        #expect(try ConflictRecord(json: json) == record)
    }

    // Proves a head round-trips and derives tombstone and op from its image.
    @Test func headRoundTrip() throws {
        let live = Head(seq: 5, origin: "us", hlc: 7, image: ["id": 1], prevForeignSeq: 3)
        let tombstone = Head(seq: 6, origin: "eu", hlc: 8, image: nil, prevForeignSeq: 5)
        #expect(!live.isTombstone && live.op == .update)
        #expect(tombstone.isTombstone && tombstone.op == .delete)
        #expect(try Head(json: live.json) == live)
        #expect(try Head(json: tombstone.json) == tombstone)
        #expect(tombstone.json["tombstone"] == true)
    }

    static let policies: [(String, ConflictPolicy)] = [
        ("lww", .lww), ("priority", .priority), ("merge", .merge), ("manual", .manual(provisional: .keepHead)),
        ("reject", .reject),
    ]

    // Proves every configuration name parses to its policy and back.
    @Test(arguments: policies)
    func policyNames(name: String, policy: ConflictPolicy) throws {
        #expect(try ConflictPolicy(name: name) == policy)
        #expect(policy.name == name)
    }

    // Proves manual takes its provisional mode and unknown names are refused naming the field.
    @Test func policyParsing() throws {
        #expect(try ConflictPolicy(name: "manual", manualProvisional: .lww) == .manual(provisional: .lww))
        #expect(try ConflictPolicy(name: "lww", manualProvisional: .lww) == .lww)
        for bad in ["LWW", "", "first-writer", "manual:lww"] {
            #expect { try ConflictPolicy(name: bad) } throws: {
                ($0 as? CoreError)?.code == .invalidPolicy && ($0 as? CoreError)?.field == "policy"
            }
        }
    }

    // Proves the resolve request body parses into a pick, and refuses ambiguous or unknown picks.
    @Test func manualPickParsing() throws {
        #expect(try ManualPick(json: ["pick": "current"]) == .current)
        #expect(try ManualPick(json: ["pick": "incoming"]) == .incoming)
        #expect(try ManualPick(json: ["row": ["id": 1]]) == .row(["id": 1]))
        for bad: JSONValue in [["pick": "both"], ["pick": "current", "row": ["id": 1]], [:], ["row": 1]] {
            #expect { try ManualPick(json: bad) } throws: { ($0 as? CoreError)?.code == .invalidResolution }
        }
        for pick in [ManualPick.current, .incoming, .row(["id": 2])] {
            #expect(try ManualPick(json: pick.json) == pick)
        }
    }
}
