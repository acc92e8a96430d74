import Foundation
import StarlingCore
import Testing

/// The documents hub and agent exchange besides changes and verdicts (table registration, `/v1/config`, the
/// pull page, the status report, dead letters): one codec each in Core, golden JSON and round trips.
struct WireDocumentTests {
    static let shape = TableShape(
        name: "public.items",
        columns: [.init(name: "id", type: "bigint"), .init(name: "note", type: "text"), .init(name: "n", type: "numeric(30,10)")],
        key: ["id"])

    // Proves a table registration's exact JSON and that decoding gives back names, types and key.
    @Test func tableShapeGoldenAndRoundTrip() throws {
        #expect(
            Self.shape.json.canonicalText
                == #"{"columns":[{"name":"id","type":"bigint"},{"name":"note","type":"text"},{"name":"n","type":"numeric(30,10)"}],"key":["id"],"name":"public.items"}"#)
        #expect(try TableShape(json: JSONValue(parsing: Self.shape.json.serialized())) == Self.shape)
    }

    // Proves the agent-only column facts do not travel: a decoded shape has their defaults.
    @Test func tableShapeDropsCatalogFacts() throws {
        var local = Self.shape
        local.columns[0].encoding = .native
        local.columns[0].valueType = "int8"
        local.columns[1].isGenerated = true
        #expect(local.json == Self.shape.json)
        #expect(try TableShape(json: local.json) == Self.shape)
    }

    static let badShapes: [(String, String)] = [
        (#"{"columns":[],"key":[]}"#, "name"),
        (#"{"name":"t","columns":[{"name":"a"}],"key":[]}"#, "columns[0]"),
        (#"{"name":"t","columns":{},"key":[]}"#, "columns"),
        (#"{"name":"t","columns":[{"name":"a","type":"int"}],"key":[1]}"#, "key[0]"),
        (#"{"name":"t","columns":[{"name":"a","type":"int"}],"key":["b"]}"#, "key[0]"),
        (#"{"name":"t","columns":[{"name":"a","type":"int"}],"key":"a"}"#, "key"),
    ]

    // Proves a malformed registration is refused naming the member.
    @Test(arguments: badShapes)
    func tableShapeRefusals(text: String, field: String) throws {
        let error = #expect(throws: CoreError.self) { try TableShape(json: JSONValue(parsing: text)) }
        #expect(error?.field == field)
    }

    // Proves /v1/config's exact JSON (optional members absent when unset) and its round trip.
    @Test func hubConfigGoldenAndRoundTrip() throws {
        let config = HubConfig(
            region: "us-east",
            tables: [
                .init(name: "public.items", policy: "lww", shape: Self.shape),
                .init(name: "public.notes", policy: "manual", manualProvisional: "keep"),
            ], regionID: 3)
        #expect(
            config.json.canonicalText
                == #"{"region":"us-east","region_id":3,"tables":[{"columns":[{"name":"id","type":"bigint"},{"name":"note","type":"text"},{"name":"n","type":"numeric(30,10)"}],"key_columns":["id"],"name":"public.items","policy":"lww"},{"manual_provisional":"keep","name":"public.notes","policy":"manual"}]}"#)
        #expect(try HubConfig(json: JSONValue(parsing: config.json.serialized())) == config)
        let bare = HubConfig(region: "eu", tables: [])
        #expect(bare.json.canonicalText == #"{"region":"eu","tables":[]}"#)
        #expect(try HubConfig(json: bare.json) == bare)
        var limited = bare
        limited.pushLimits = .init(maxChanges: 100, maxBodyBytes: 1 << 20)
        #expect(
            limited.json.canonicalText
                == #"{"limits":{"max_body_bytes":1048576,"max_push_changes":100},"region":"eu","tables":[]}"#)
        #expect(try HubConfig(json: limited.json) == limited)
    }

    // Proves a config from an older hub (tables as bare names, a region id out of range) still decodes.
    @Test func hubConfigLenientForms() throws {
        let config = try HubConfig(json: JSONValue(parsing: #"{"region":"r","region_id":5000,"tables":["public.a"]}"#))
        #expect(config == HubConfig(region: "r", tables: [.init(name: "public.a", policy: "lww")]))
        #expect(throws: CoreError.self) { try HubConfig(json: JSONValue(parsing: #"{"tables":[]}"#)) }
    }

    /// Log entries of every shape the writer distinguishes: with and without `base`, `row` and `rewritten`,
    /// strings that need escaping, and integers at the limits.
    static let generatedEntries: [LogEntry] = {
        var entries: [LogEntry] = []
        let kinds: [LogEntryKind] = Array(LogEntryKind.allCases)
        for index in 0..<48 {
            let op: ChangeOperation = [.insert, .update, .delete][index % 3]
            let row: JSONObject? =
                op == .delete
                ? nil : ["id": .integer(Int64(index)), "t": .string("q\"\\\u{1}é\(index)"), "n": .number("-0.5e3")]
            entries.append(
                LogEntry(
                    seq: index == 47 ? Int64.max : Int64(index), origin: index % 2 == 0 ? "eu-west" : "hub",
                    id: "r:\(index)", tx: "r:\u{7f}\(index)", table: "public.t\(index % 4)", op: op,
                    key: ["id": .integer(Int64(index)), "k": "a/b"], row: row,
                    hlc: index == 46 ? Int64.min : Int64(index) * 1_000_003, kind: kinds[index % kinds.count],
                    rewritten: index % 5 == 0, base: index % 4 == 0 ? Int64(index * 7) : nil))
        }
        return entries
    }()

    // Proves the hub's byte writer of a pull page (entries written one by one, then the page) gives exactly
    // the canonical JSON of the page, and that the agent's decoder inverts it, for pages of 0 to 48 entries.
    @Test(arguments: [0, 1, 2, 7, 48])
    func pullPageWriterAgrees(count: Int) throws {
        let entries = Array(Self.generatedEntries.prefix(count))
        let page = PullPage(entries: entries, next: Int64(count) + 5, head: Int64(count) + 9)
        var entriesJSON: [UInt8] = []
        for (index, entry) in entries.enumerated() {
            if index > 0 { entriesJSON.append(UInt8(ascii: ",")) }
            entry.write(to: &entriesJSON)
        }
        var bytes: [UInt8] = []
        PullPage.write(entriesJSON: entriesJSON, head: page.head, next: page.next, to: &bytes)
        #expect(bytes == page.json.serialized())
        #expect(try PullPage(json: JSONValue(parsing: bytes)) == page)
        // From the bytes, the rows kept as the text they came as: the same entries, and that text is the row's.
        let fromBytes = try PullPage(bytes: bytes)
        #expect(fromBytes == page)
        for (kept, entry) in zip(fromBytes.entries, entries) {
            #expect(try kept.rowJSON.map { try JSONValue(parsing: $0) } == entry.row.map(JSONValue.object))
            var rewritten: [UInt8] = []
            kept.write(to: &rewritten)
            #expect(rewritten == entry.json.serialized(), "an entry with a kept row writes the same bytes")
        }
    }

    // Proves the raw-member parse skips with the parser's checks: malformed text inside a kept row is refused,
    // nesting and escapes are stepped over, an absent row stays absent and a null row is a delete.
    @Test func keptRowsAreCheckedAndPlaced() throws {
        let (value, raw) = try JSONParser().parse(
            Array(#"{"a":[{"row":{"x":[1,{"y":"\u00e9\""}],"z":-1.5e2},"k":1},{"k":2},{"row":null}]}"#.utf8),
            keepingRaw: "row", atDepth: 3)
        #expect(raw.count == 2)
        #expect(value["a"]?[0]?["row"] == .null && value["a"]?[0]?["k"] == .integer(1))
        #expect(value["a"]?[1]?["row"] == nil)
        for bad in [#"{"a":[{"row":{"x":01}}]}"#, #"{"a":[{"row":{"x":"\q"}}]}"#, #"{"a":[{"row":{"x":tru}}]}"#,
                    #"{"a":[{"row":{"x" 1}}]}"#, #"{"a":[{"row":[1,]}]}"#] {
            #expect(throws: CoreError.self, "\(bad)") {
                try JSONParser().parse(Array(bad.utf8), keepingRaw: "row", atDepth: 3)
            }
        }
        let page = try PullPage(
            bytes: Array(#"{"entries":[{"hlc":1,"id":"r:1","key":{"id":1},"kind":"change","op":"delete","origin":"r","rewritten":false,"row":null,"seq":1,"table":"public.t","tx":"r:1"}],"head":1,"next":1}"#.utf8))
        #expect(page.entries[0].row == nil && page.entries[0].rowJSON == nil)
        #expect(throws: CoreError.self) {
            try PullPage(
                bytes: Array(#"{"entries":[{"hlc":1,"id":"r:1","key":{"id":1},"kind":"change","op":"update","origin":"r","rewritten":false,"row":[1],"seq":1,"table":"public.t","tx":"r:1"}],"head":1,"next":1}"#.utf8))
        }
    }

    // Proves a page read straight from its bytes refuses what the tree decoder refuses, naming the entry and the
    // field: a missing or mistyped field, an unknown op or kind, a negative seq, a duplicate member, trailing text.
    @Test func pagesFromBytesRefuseWhatTheTreeRefuses() throws {
        let good = #"{"hlc":1,"id":"r:1","key":{"id":1},"kind":"change","op":"delete","origin":"r","rewritten":false,"row":null,"seq":1,"table":"public.t","tx":"r:1"}"#
        func page(_ entry: String, tail: String = "") -> [UInt8] {
            Array(#"{"entries":[\#(good),\#(entry)],"head":2,"next":2}\#(tail)"#.utf8)
        }
        #expect(try PullPage(bytes: page(good.replacingFirst("\"seq\":1", with: "\"seq\":2"))).entries.count == 2)
        let refusals: [(String, String)] = [
            (good.replacingFirst("\"hlc\":1,", with: ""), "entries[1].hlc"),
            (good.replacingFirst("\"op\":\"delete\"", with: "\"op\":\"upsert\""), "entries[1].op"),
            (good.replacingFirst("\"kind\":\"change\"", with: "\"kind\":7"), "entries[1].kind"),
            (good.replacingFirst("\"seq\":1", with: "\"seq\":-1"), "entries[1].seq"),
            (good.replacingFirst("\"key\":{\"id\":1}", with: "\"key\":[1]"), "entries[1].key"),
            (good.replacingFirst("\"rewritten\":false", with: "\"rewritten\":\"no\""), "entries[1].rewritten"),
            (good.replacingFirst("\"seq\":1", with: "\"seq\":1.5"), "entries[1].seq"),
            (good.replacingFirst("\"hlc\":1", with: "\"hlc\":1e3"), "entries[1].hlc"),
            (good.replacingFirst("\"hlc\":1", with: "\"hlc\":true"), "entries[1].hlc"),
            (good.replacingFirst("\"seq\":1", with: "\"seq\":9223372036854775808"), "entries[1].seq"),
            (good.replacingFirst("\"seq\":1", with: "\"seq\":\"01\""), "entries[1].seq"),
        ]
        for (entry, field) in refusals {
            do {
                _ = try PullPage(bytes: page(entry))
                Issue.record("accepted: \(entry)")
            } catch {
                #expect(error.field == field, "\(entry): \(error)")
            }
        }
        #expect(throws: CoreError.self) { try PullPage(bytes: page(good.replacingFirst("\"seq\":1", with: "\"seq\":1,\"seq\":2"))) }
        #expect(throws: CoreError.self) { try PullPage(bytes: page(good.replacingFirst("\"row\":null", with: "\"row\":null,\"row\":{}"))) }
        #expect(throws: CoreError.self) { try PullPage(bytes: page(good.replacingFirst("\"seq\":1", with: "\"seq\":1,\"x\":1,\"x\":2"))) }
        #expect(try PullPage(bytes: page(good.replacingFirst("\"seq\":1", with: "\"seq\":2,\"x\":1,\"y\":2"))).entries.count == 2)
        // Integers as the tree decoder takes them: a decimal string too, and the largest 64-bit value.
        let strings = try PullPage(
            bytes: page(good.replacingFirst("\"seq\":1", with: "\"seq\":\"2\",\"base\":\"7\"").replacingFirst(
                "\"hlc\":1", with: "\"hlc\":9223372036854775807")))
        #expect(strings.entries[1].seq == 2 && strings.entries[1].base == 7 && strings.entries[1].hlc == .max)
        let odd = try PullPage(bytes: page(good.replacingFirst("\"seq\":1", with: "\"seq\":2,\"base\":{\"a\":1}")))
        #expect(odd.entries[1].base == nil, "a base that is no integer is no base, as in the tree decoder")
        #expect(throws: CoreError.self) {
            try PullPage(bytes: page(good.replacingFirst("\"seq\":1", with: "\"seq\":2,\"base\":{\"a\":1,\"a\":2}")))
        }
        #expect(throws: CoreError.self) { try PullPage(bytes: page(good, tail: " x")) }
        #expect(throws: CoreError.self) { try PullPage(bytes: Array(#"{"entries":[],"head":1}"#.utf8)) }
    }

    // Proves the entry reader matches member names by their bytes as the tree parser matches their text: a name
    // spelled with escapes is the same member (and a duplicate of its plain spelling), an escaped unknown name is
    // ignored, and a name that only starts like a member is no member.
    @Test func escapedMemberNamesAreTheSameMembers() throws {
        let plain = #"{"hlc":1,"id":"r:1","key":{"id":1},"kind":"change","op":"delete","origin":"r","rewritten":false,"row":null,"seq":1,"table":"public.t","tx":"r:1"}"#
        func page(_ entry: String) -> [UInt8] { Array(#"{"entries":[\#(entry)],"head":1,"next":1}"#.utf8) }
        let expected = try PullPage(bytes: page(plain))
        let escaped = plain.replacingFirst("\"seq\"", with: #""\u0073eq""#)
            .replacingFirst("\"origin\"", with: #""orig\u0069n""#).replacingFirst("\"key\"", with: #""k\u0065y""#)
        #expect(try PullPage(bytes: page(escaped)) == expected)
        #expect(try PullPage(json: JSONValue(parsing: page(escaped))) == expected, "the tree decoder agrees")
        #expect(try PullPage(bytes: page(plain.replacingFirst("\"seq\":1", with: #""seq":1,"\u00e9x":[1]"#))) == expected)
        #expect(throws: CoreError.self) { try PullPage(bytes: page(plain.replacingFirst("\"seq\":1", with: #""seq":1,"\u0073eq":1"#))) }
        #expect(throws: CoreError.self) { try PullPage(bytes: page(plain.replacingFirst("\"seq\":1", with: #""seqs":1"#))) }
        #expect(try PullPage(bytes: page(plain.replacingFirst("\"seq\":1", with: #""seq":1,"sex":2,"rows":3"#))) == expected)
    }

    // Proves every generated log entry's byte writer agrees with its canonical JSON.
    @Test func logEntryWriterAgreesOnGeneratedEntries() throws {
        for entry in Self.generatedEntries {
            var bytes: [UInt8] = []
            entry.write(to: &bytes)
            #expect(bytes == entry.json.serialized())
            #expect(try LogEntry(json: JSONValue(parsing: bytes)) == entry)
        }
    }

    // Proves a pull page with an invalid entry is refused naming the entry.
    @Test func pullPageNamesTheBadEntry() throws {
        let error = #expect(throws: CoreError.self) {
            try PullPage(json: JSONValue(parsing: #"{"entries":[{"seq":1}],"head":1,"next":1}"#))
        }
        #expect(error?.field?.hasPrefix("entries[0]") == true)
    }

    // Proves the status report's exact JSON (times to the millisecond, a negative lag sent as 0) and that the
    // hub's lenient decoder reads it back.
    @Test func agentStatusGoldenAndRoundTrip() throws {
        var status = AgentStatus(
            outboxDepth: 12, applyLagSeconds: 0.12345, lastError: "boom", busy: .init(what: "apply", seconds: 61.0004))
        status.capture = .init(mode: "wal", reason: "configured", retainedWALBytes: 4096)
        #expect(
            status.json.canonicalText
                == #"{"apply_lag_seconds":0.123,"busy":{"seconds":61.0,"what":"apply"},"capture":{"mode":"wal","reason":"configured","retained_wal_bytes":4096},"last_error":"boom","outbox_depth":12}"#)
        var expected = status
        expected.applyLagSeconds = 0.123
        expected.busy?.seconds = 61.0
        #expect(AgentStatus(json: try JSONValue(parsing: status.json.serialized())) == expected)
        let negative = AgentStatus(outboxDepth: 0, applyLagSeconds: -3, lastError: nil)
        #expect(negative.json["apply_lag_seconds"] == .number("0.0"))
    }

    // Proves a partial or malformed report reads as unknown figures instead of failing.
    @Test func agentStatusLenientDecoding() throws {
        let status = AgentStatus(
            json: try JSONValue(
                parsing: #"{"apply_lag":2.5,"busy":{"what":"x","seconds":-1},"capture":{"reason":"r"},"outbox_depth":"7"}"#))
        #expect(status.outboxDepth == 7)
        #expect(status.applyLagSeconds == 2.5)
        #expect(status.busy == nil)
        #expect(status.capture == nil)
        #expect(status.lastError == nil)
        #expect(AgentStatus(json: .object([:])).outboxDepth == nil)
    }

    // Proves a dead letter's exact JSON, its round trip, and each refusal naming the member.
    @Test func deadLetterGoldenRoundTripAndRefusals() throws {
        let letter = DeadLetter(
            id: 4, seq: 17, table: "public.items", entry: ["id": "r:1"], sqlState: "23505", error: "duplicate key")
        #expect(
            letter.json.canonicalText
                == #"{"entry":{"id":"r:1"},"error":"duplicate key","id":4,"seq":17,"sqlstate":"23505","table":"public.items"}"#)
        #expect(try DeadLetter(json: JSONValue(parsing: letter.json.serialized())) == letter)
        var noState = letter
        noState.sqlState = nil
        #expect(try DeadLetter(json: noState.json) == noState)
        let refusals: [(String, String?)] = [
            (#"{"id":1,"seq":1,"table":"t","entry":{}}"#, nil),
            (#"{"id":1,"seq":-1,"table":"t","entry":{},"error":"e"}"#, "seq"),
            (#"{"id":1,"seq":1,"table":"t","entry":[],"error":"e"}"#, "entry"),
            (#"{"id":1,"seq":1,"table":"t","entry":{},"error":"e","sqlstate":5}"#, "sqlstate"),
        ]
        for (text, field) in refusals {
            let error = #expect(throws: CoreError.self) { try DeadLetter(json: JSONValue(parsing: text)) }
            #expect(error?.field == field)
        }
    }

    // Proves the hub's byte writer of a snapshot page (rows from stored key and row texts, then the page)
    // gives exactly its canonical JSON with and without the optional members, and the agent's decoder inverts it.
    @Test(arguments: [false, true])
    func snapshotPageWriterAgrees(isFirstPage: Bool) throws {
        var rows: [SnapshotPage.Row] = []
        for index in 0..<5 {
            let id = JSONValue.integer(Int64(index))
            let key: JSONObject = ["id": id, "k": .string("é\"\(index)")]
            let image: JSONObject? = index == 3 ? nil : ["id": id, "v": .number("1.50")]
            let origin = index % 2 == 0 ? "eu-west" : "hub"
            rows.append(SnapshotPage.Row(key: key, row: image, seq: Int64(index * 3), origin: origin))
        }
        let page = SnapshotPage(
            table: "public.items", seq: 99, rows: rows, next: isFirstPage ? "{\"id\":4}" : nil,
            heads: isFirstPage ? 12 : nil, adoptedBy: isFirstPage ? "us-east" : nil, adoptedRows: isFirstPage ? 7 : nil)
        var rowsJSON: [UInt8] = []
        for (index, row) in rows.enumerated() {
            if index > 0 { rowsJSON.append(UInt8(ascii: ",")) }
            SnapshotPage.Row.write(
                keyJSON: JSONValue.object(row.key).canonicalText, origin: row.origin,
                rowJSON: row.row.map { JSONValue.object($0).canonicalText }, seq: row.seq, to: &rowsJSON)
        }
        var bytes: [UInt8] = []
        SnapshotPage.write(
            table: page.table, seq: page.seq, rowsJSON: rowsJSON, next: page.next, heads: page.heads,
            adoptedBy: page.adoptedBy, adoptedRows: page.adoptedRows, to: &bytes)
        #expect(bytes == page.json.serialized())
        #expect(try SnapshotPage(json: JSONValue(parsing: bytes)) == page)
    }

    // Proves a snapshot page with a row lacking its origin is refused naming the row.
    @Test func snapshotPageNamesTheBadRow() throws {
        let error = #expect(throws: CoreError.self) {
            try SnapshotPage(json: JSONValue(parsing: #"{"rows":[{"key":{},"seq":1}],"seq":1}"#))
        }
        #expect(error?.field == "rows[0]")
    }
}

extension String {
    /// The text with the first occurrence of `target` replaced.
    fileprivate func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}
