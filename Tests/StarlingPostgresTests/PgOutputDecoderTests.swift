import StarlingPostgres
import StarlingTestSupport
import Testing

/// Every message kind as hand-built bytes and what it must decode to.
let goldenMessages: [(name: String, bytes: [UInt8], message: PgOutputMessage)] = {
    let tuple = PgOutputTuple([.text("eu"), .text("42"), .null, .unchangedToast, .binary([0, 1, 255]), .text("")])
    let key = PgOutputTuple([.text("eu"), .text("42"), .null, .null, .null, .null])
    var cases: [(String, [UInt8], PgOutputMessage)] = []
    var b = WireBuilder("B")
    b.i64(0x16_B374_D848).i64(786_000_000_123_456).u32(0xFFFF_FFF0)
    cases.append(
        (
            "begin", b.bytes,
            .begin(
                .init(
                    finalLSN: LSN(0x16_B374_D848), commitTime: .init(microsecondsSince2000: 786_000_000_123_456),
                    xid: 0xFFFF_FFF0))
        ))
    b = WireBuilder("C")
    b.u8(0).i64(0x10).i64(0x40).i64(-5)
    cases.append(
        (
            "commit", b.bytes,
            .commit(
                .init(flags: 0, commitLSN: LSN(0x10), endLSN: LSN(0x40), commitTime: .init(microsecondsSince2000: -5)))
        ))
    b = WireBuilder("O")
    b.i64(0x1_0ABC_DEF0).string("région ✓")
    cases.append(("origin", b.bytes, .origin(.init(originLSN: LSN(0x1_0ABC_DEF0), name: "région ✓"))))
    b = WireBuilder("R")
    b.u32(16384).string("public").string("items").tag("d").i16(3)
    b.u8(1).string("region").u32(25).i32(-1)
    b.u8(1).string("id").u32(20).i32(-1)
    b.u8(0).string("").u32(1043).i32(24)
    cases.append(
        (
            "relation", b.bytes,
            .relation(
                .init(
                    oid: 16384, namespace: "public", name: "items", replicaIdentity: .default,
                    columns: [
                        .init(flags: 1, name: "region", typeOID: 25, typeModifier: -1),
                        .init(flags: 1, name: "id", typeOID: 20, typeModifier: -1),
                        .init(flags: 0, name: "", typeOID: 1043, typeModifier: 24),
                    ]))
        ))
    b = WireBuilder("R")
    b.u32(7).string("").string("empty").tag("n").i16(0)
    cases.append(
        (
            "relation without columns", b.bytes,
            .relation(.init(oid: 7, namespace: "", name: "empty", replicaIdentity: .nothing, columns: []))
        ))
    b = WireBuilder("Y")
    b.u32(90001).string("public").string("mood")
    cases.append(("type", b.bytes, .type(.init(oid: 90001, namespace: "public", name: "mood"))))
    b = WireBuilder("I")
    b.u32(16384).tag("N").tuple(tuple.values)
    cases.append(("insert", b.bytes, .insert(.init(relationOID: 16384, newTuple: tuple))))
    b = WireBuilder("I")
    b.u32(1).tag("N").tuple([])
    cases.append(("insert of no columns", b.bytes, .insert(.init(relationOID: 1, newTuple: PgOutputTuple([])))))
    b = WireBuilder("U")
    b.u32(16384).tag("N").tuple(tuple.values)
    cases.append(("update", b.bytes, .update(.init(relationOID: 16384, oldTuple: nil, newTuple: tuple))))
    b = WireBuilder("U")
    b.u32(16384).tag("K").tuple(key.values).tag("N").tuple(tuple.values)
    cases.append(("update with key", b.bytes, .update(.init(relationOID: 16384, oldTuple: .key(key), newTuple: tuple))))
    b = WireBuilder("U")
    b.u32(16384).tag("O").tuple(tuple.values).tag("N").tuple(key.values)
    cases.append(
        ("update with old row", b.bytes, .update(.init(relationOID: 16384, oldTuple: .full(tuple), newTuple: key))))
    b = WireBuilder("D")
    b.u32(16384).tag("K").tuple(key.values)
    cases.append(("delete by key", b.bytes, .delete(.init(relationOID: 16384, oldTuple: .key(key)))))
    b = WireBuilder("D")
    b.u32(16384).tag("O").tuple(tuple.values)
    cases.append(("delete with old row", b.bytes, .delete(.init(relationOID: 16384, oldTuple: .full(tuple)))))
    b = WireBuilder("T")
    b.i32(2).u8(3).u32(16384).u32(16390)
    cases.append(
        ("truncate", b.bytes, .truncate(.init(isCascade: true, isRestartIdentity: true, relationOIDs: [16384, 16390]))))
    b = WireBuilder("T")
    b.i32(1).u8(2).u32(5)
    cases.append(
        (
            "truncate restart identity", b.bytes,
            .truncate(.init(isCascade: false, isRestartIdentity: true, relationOIDs: [5]))
        ))
    b = WireBuilder("M")
    b.u8(1).i64(0x2A).string("starling").i32(3).raw([0, 0x78, 0xFF])
    cases.append(
        (
            "message", b.bytes,
            .message(.init(isTransactional: true, lsn: LSN(0x2A), prefix: "starling", content: [0, 0x78, 0xFF]))
        ))
    b = WireBuilder("M")
    b.u8(0).i64(1).string("").i32(0)
    cases.append(
        (
            "empty non-transactional message", b.bytes,
            .message(.init(isTransactional: false, lsn: LSN(1), prefix: "", content: []))
        ))
    return cases
}()

@Suite struct PgOutputDecoderTests {
    /// Proves each message kind decodes field by field from hand-built bytes (every tuple value kind included).
    @Test(arguments: goldenMessages.indices)
    func decodesEveryKind(_ index: Int) throws {
        let golden = goldenMessages[index]
        #expect(try PgOutputDecoder.decode(golden.bytes) == golden.message, "\(golden.name)")
    }

    /// Proves every strict prefix of every message is refused with malformedMessage (never a crash), and so is
    /// any extra byte after it.
    @Test(arguments: goldenMessages.indices)
    func truncatedOrLongerInputIsRefused(_ index: Int) {
        let golden = goldenMessages[index]
        for length in 0..<golden.bytes.count {
            let error = #expect(throws: PostgresError.self, "\(golden.name) cut at \(length)") {
                try PgOutputDecoder.decode(Array(golden.bytes[..<length]))
            }
            #expect(error?.code == .malformedMessage)
        }
        let longer = #expect(throws: PostgresError.self) { try PgOutputDecoder.decode(golden.bytes + [0]) }
        #expect(longer?.code == .malformedMessage)
        #expect(longer?.message.contains("trailing") == true)
    }

    /// Proves lengths and counts that do not fit, unknown tags and kinds, and invalid UTF-8 are refused with a
    /// message naming the message kind.
    @Test func malformedFieldsAreRefused() {
        var cases: [(String, [UInt8], String)] = []
        var b = WireBuilder("I")
        b.u32(1).tag("N").i16(1).tag("t").i32(-1)
        cases.append(("negative length", b.bytes, "pgoutput Insert: negative length -1"))
        b = WireBuilder("I")
        b.u32(1).tag("N").i16(1).tag("t").i32(Int32.max).raw([1, 2, 3])
        cases.append(("length beyond the end", b.bytes, "pgoutput Insert"))
        b = WireBuilder("I")
        b.u32(1).tag("N").i16(-1)
        cases.append(("negative column count", b.bytes, "pgoutput Insert"))
        b = WireBuilder("I")
        b.u32(1).tag("N").i16(Int16.max).tag("n")
        cases.append(("column count beyond the end", b.bytes, "pgoutput Insert"))
        b = WireBuilder("I")
        b.u32(1).tag("N").i16(1).tag("x")
        cases.append(("unknown column kind", b.bytes, "unknown column kind"))
        b = WireBuilder("I")
        b.u32(1).tag("K").i16(0)
        cases.append(("insert without a new tuple", b.bytes, "expected new tuple"))
        b = WireBuilder("U")
        b.u32(1).tag("K").i16(0).tag("K").i16(0)
        cases.append(("update with two old tuples", b.bytes, "pgoutput Update"))
        b = WireBuilder("D")
        b.u32(1).tag("N").i16(0)
        cases.append(("delete with a new tuple", b.bytes, "pgoutput Delete"))
        b = WireBuilder("R")
        b.u32(1).string("s").string("t").tag("d").i16(30_000).raw(Array(repeating: 0, count: 40))
        cases.append(("relation column count beyond the end", b.bytes, "pgoutput Relation"))
        b = WireBuilder("R")
        b.u32(1).string("s").raw([0x74])
        cases.append(("unterminated string", b.bytes, "unterminated"))
        b = WireBuilder("T")
        b.i32(Int32.max).u8(0).u32(1)
        cases.append(("truncate count beyond the end", b.bytes, "pgoutput Truncate"))
        b = WireBuilder("T")
        b.i32(-3).u8(0)
        cases.append(("negative truncate count", b.bytes, "pgoutput Truncate"))
        b = WireBuilder("M")
        b.u8(1).i64(1).string("p").i32(-5)
        cases.append(("negative message length", b.bytes, "pgoutput Message"))
        b = WireBuilder("M")
        b.u8(2).i64(1).string("p").i32(0)
        cases.append(("unknown message flag", b.bytes, "pgoutput Message: unknown flags 0x2"))
        b = WireBuilder("T")
        b.i32(1).u8(4).u32(1)
        cases.append(("unknown truncate option", b.bytes, "pgoutput Truncate: unknown options 0x4"))
        b = WireBuilder("O")
        b.i64(1).raw([0xC3, 0x28, 0])
        cases.append(("invalid UTF-8 name", b.bytes, "UTF-8"))
        b = WireBuilder("I")
        b = WireBuilder("I")
        b.u32(1).tag("N").i16(1).tag("t").i32(2).raw([0xFF, 0xFE])
        cases.append(("invalid UTF-8 text value", b.bytes, "UTF-8"))
        cases.append(("unknown tag", [UInt8(ascii: "Z")], "unknown or unsupported tag 0x5a"))
        cases.append(("stream start (protocol 2)", [UInt8(ascii: "S"), 0, 0, 0, 1, 1], "unsupported tag"))
        cases.append(("empty", [], "truncated tag"))
        for (name, bytes, fragment) in cases {
            let error = #expect(throws: PostgresError.self, "\(name)") { try PgOutputDecoder.decode(bytes) }
            #expect(error?.code == .malformedMessage, "\(name)")
            #expect(error?.message.contains(fragment) == true, "\(name): \(error?.message ?? "")")
        }
    }

    /// Text values are read eight bytes a step while ASCII: a value of every length 0–20 with an ASCII run, a
    /// multi-byte character or an invalid byte at each offset reads back exactly or is refused naming UTF-8.
    @Test func textValuesAtEveryOffset() throws {
        func insert(_ value: [UInt8]) -> [UInt8] {
            var b = WireBuilder("I")
            b.u32(1).tag("N").i16(1).tag("t").i32(Int32(value.count)).raw(value)
            return b.bytes
        }
        func decoded(_ bytes: [UInt8]) throws -> String? {
            guard case .insert(let insert) = try PgOutputDecoder.decode(bytes), case .text(let text) = insert.newTuple[0]
            else { return nil }
            return text
        }
        for length in 0...20 {
            let ascii = (0..<length).map { UInt8(ascii: "a") + UInt8($0 % 26) }
            #expect(try decoded(insert(ascii)) == String(decoding: ascii, as: UTF8.self))
            for offset in 0..<length {
                var wide = ascii
                wide.replaceSubrange(offset..<(offset + 1), with: Array("é".utf8))
                #expect(try decoded(insert(wide)) == String(decoding: wide, as: UTF8.self), "é at \(offset)")
                var invalid = ascii
                invalid[offset] = 0xFF
                let error = #expect(throws: PostgresError.self, "0xFF at \(offset)") { try PgOutputDecoder.decode(insert(invalid)) }
                #expect(error?.message.contains("UTF-8") == true)
            }
        }
    }

    /// Proves garbage never crashes the decoder: random bytes, random tags with random bodies, and single-byte
    /// corruptions of every golden message either decode or throw malformedMessage.
    @Test func garbageNeverCrashes() {
        var generator = SplitMix64(seed: 0x5EED)
        let tags: [UInt8] = Array("BCORYIUDTMSEcAbPKr".utf8)
        for round in 0..<20_000 {
            let length = Int(generator.next() % 64)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            if round % 2 == 0, !bytes.isEmpty { bytes[0] = tags[Int(generator.next() % UInt64(tags.count))] }
            expectDecodesOrRefuses(bytes)
        }
        for golden in goldenMessages {
            for index in golden.bytes.indices {
                for replacement: UInt8 in [0x00, 0x7F, 0x80, 0xFF] {
                    var bytes = golden.bytes
                    bytes[index] = replacement
                    expectDecodesOrRefuses(bytes)
                }
            }
        }
    }

    private func expectDecodesOrRefuses(_ bytes: [UInt8]) {
        do {
            _ = try PgOutputDecoder.decode(bytes)
        } catch {
            #expect(error.code == .malformedMessage)
        }
    }

    /// Proves the relation cache answers for announced relations, replaces a relation re-announced with a new
    /// shape, and refuses a change for an unknown relation or with the wrong number of values.
    @Test func relationCache() throws {
        var cache = PgOutputRelationCache()
        let first = PgOutputRelation(
            oid: 9, namespace: "public", name: "t", replicaIdentity: .default,
            columns: [.init(flags: 1, name: "id", typeOID: 23, typeModifier: -1)])
        let recordedBegin = cache.record(
            .begin(.init(finalLSN: .invalid, commitTime: .init(microsecondsSince2000: 0), xid: 1)))
        #expect(!recordedBegin)
        let recordedRelation = cache.record(.relation(first))
        #expect(recordedRelation)
        #expect(cache[9] == first)
        #expect(try cache.relation(for: 9, matching: .texts(["1"])) == first)
        let wrongCount = #expect(throws: PostgresError.self) {
            try cache.relation(for: 9, matching: .texts(["1", "2"]))
        }
        #expect(wrongCount?.code == .malformedMessage)
        let unknown = #expect(throws: PostgresError.self) { try cache.relation(for: 10, matching: .texts([])) }
        #expect(unknown?.code == .malformedMessage)
        var second = first
        second.columns.append(.init(flags: 0, name: "name", typeOID: 25, typeModifier: -1))
        cache.record(.relation(second))
        #expect(cache.count == 1)
        #expect(try cache.relation(for: 9, matching: .texts(["1", nil])) == second)
        cache.removeAll()
        #expect(cache[9] == nil)
    }
}

@Suite struct ReplicationFrameTests {
    /// Proves XLogData and keepalive frames decode field by field, an XLogData's payload may be empty, and
    /// short, long or unknown frames are refused.
    @Test func framesDecode() throws {
        let w = WireBuilder("w")
        w.i64(0x100).i64(0x200).i64(786_000_000_000_000).raw([1, 2, 3])
        #expect(
            try PostgresReplicationMessage.decode(w.bytes)
                == .xLogData(
                    .init(
                        walStart: LSN(0x100), walEnd: LSN(0x200),
                        serverTime: .init(microsecondsSince2000: 786_000_000_000_000), payload: [1, 2, 3])))
        let empty = WireBuilder("w")
        empty.i64(1).i64(2).i64(3)
        #expect(
            try PostgresReplicationMessage.decode(empty.bytes)
                == .xLogData(
                    .init(walStart: LSN(1), walEnd: LSN(2), serverTime: .init(microsecondsSince2000: 3), payload: [])))
        let k = WireBuilder("k")
        k.i64(0x300).i64(42).u8(1)
        #expect(
            try PostgresReplicationMessage.decode(k.bytes)
                == .keepalive(
                    .init(walEnd: LSN(0x300), serverTime: .init(microsecondsSince2000: 42), isReplyRequested: true)))
        for bad in [Array(w.bytes[..<24]), Array(k.bytes[..<17]), k.bytes + [0], [UInt8(ascii: "x")], []] {
            let error = #expect(throws: PostgresError.self) { try PostgresReplicationMessage.decode(bad) }
            #expect(error?.code == .malformedMessage)
        }
    }

    /// Proves the standby status update is the 34-byte 'r' message with big-endian positions and clock.
    @Test func standbyStatusUpdateLayout() {
        let bytes = PostgresReplicationMessage.standbyStatusUpdate(
            written: LSN(0x0102_0304_0506_0708), flushed: LSN(0x10), applied: .invalid,
            time: .init(microsecondsSince2000: 0x0A0B), isReplyRequested: true)
        let expected = WireBuilder("r")
        expected.i64(0x0102_0304_0506_0708).i64(0x10).i64(0).i64(0x0A0B).u8(1)
        #expect(bytes == expected.bytes)
        #expect(bytes.count == 34)
    }

    /// Proves timestamps convert between PostgreSQL's 2000 epoch and Unix time, and `now()` is after 2024.
    @Test func timestamps() {
        #expect(PostgresTimestamp(microsecondsSince2000: 0).unixMicroseconds == 946_684_800_000_000)
        #expect(PostgresTimestamp(unixMicroseconds: 946_684_800_000_001).microsecondsSince2000 == 1)
        #expect(PostgresTimestamp.now().unixMicroseconds > 1_704_067_200_000_000)
    }
}

@Suite struct LSNTests {
    /// Proves `X/Y` parsing accepts PostgreSQL's spellings and refuses everything else.
    @Test(arguments: [
        ("0/0", UInt64(0)), ("16/B374D848", 0x16_B374_D848), ("0/1", 1), ("FFFFFFFF/FFFFFFFF", .max),
        ("a/b", 0xA_0000_000B), ("00000001/00000000", 0x1_0000_0000),
    ])
    func parses(_ text: String, _ value: UInt64) {
        #expect(LSN(text) == LSN(value))
    }

    @Test(arguments: ["", "/", "0/", "/0", "0", "1/2/3", "G/0", "0/-1", " 0/0", "0/0 ", "0x1/0", "123456789/0", "+1/0"])
    func refuses(_ text: String) {
        #expect(LSN(text) == nil)
        #expect(throws: PostgresError.self) { try LSN(parsing: text, what: "test") }
    }

    /// Proves printing matches PostgreSQL (upper case, no leading zeros) and round-trips; order is numeric.
    @Test func printsAndOrders() {
        #expect(LSN(0x16_B374_D848).description == "16/B374D848")
        #expect(LSN.invalid.description == "0/0")
        #expect(LSN(UInt64.max).description == "FFFFFFFF/FFFFFFFF")
        var generator = SplitMix64(seed: 7)
        for _ in 0..<1000 {
            let lsn = LSN(generator.next())
            #expect(LSN(lsn.description) == lsn)
        }
        #expect(LSN("1/0")! > LSN("0/FFFFFFFF")!)
        #expect(LSN(5).distance(to: LSN(12)) == 7)
        #expect(LSN(12).distance(to: LSN(5)) == 0)
    }
}
