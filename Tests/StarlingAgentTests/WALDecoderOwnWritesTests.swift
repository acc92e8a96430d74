@testable import StarlingAgent
import StarlingCore
import StarlingPostgres
import StarlingTestSupport
import Testing

/// The decoder reads the agent's own transactions' rows only to find local changes they overwrote
/// (``CaptureLedger/own(marker:writtenKeys:)``). An apply's marker may promise that it deferred every key pending
/// up to a position (``CaptureLedger/Marker/deferredThrough``): then only changes decoded after that position can
/// have been overwritten, and with none the rows are skipped. These feed hand-built pgoutput messages.
@Suite("WAL decoder: the agent's own writes")
struct WALDecoderOwnWritesTests {
    static let origin = "starling_r1"
    static let relation: UInt32 = 16384
    static let shape = TableShape(
        name: "public.items", columns: [.init(name: "id", type: "bigint"), .init(name: "note", type: "text")],
        key: ["id"])

    static func decoder() throws -> WALDecoder {
        var decoder = WALDecoder(
            region: "r1", originName: origin, ledger: CaptureLedger(cursor: 0), switching: false, lastHLC: 0,
            clockOffsetMicros: 0, shapes: [shape], spill: .init(directory: "/nonexistent", threshold: 1_000_000))
        let relation = WireBuilder("R").u32(Self.relation).string("public").string("items").tag("f").i16(2)
            .u8(1).string("id").u32(20).i32(-1).u8(0).string("note").u32(25).i32(-1)
        #expect(try decoder.feed(relation.bytes, recordLSN: LSN(0x10)) == nil)
        return decoder
    }

    /// One transaction updating row `id`: the application's, or the agent's own with `marker`. `written`: the
    /// transaction lists its keys first (``WrittenKeys``), and its row is sent only with `rows` (a slot decoding with
    /// starling_pgoutput leaves it out).
    static func transaction(
        _ decoder: inout WALDecoder, commit: UInt64, id: Int, own marker: CaptureLedger.Marker? = nil,
        written: String? = nil, rows: Bool = true
    ) throws -> WALDecoder.Finished? {
        _ = try decoder.feed(WireBuilder("B").i64(Int64(commit)).i64(0).u32(700).bytes, recordLSN: LSN(commit - 8))
        func message(_ prefix: String, _ content: String, at lsn: UInt64) throws {
            let bytes = Array(content.utf8)
            _ = try decoder.feed(
                WireBuilder("M").u8(1).i64(Int64(lsn)).string(prefix).i32(Int32(bytes.count)).raw(bytes).bytes,
                recordLSN: LSN(lsn))
        }
        if let marker {
            _ = try decoder.feed(WireBuilder("O").i64(0).string(origin).bytes, recordLSN: LSN(commit - 7))
            try message(CaptureLedger.Marker.prefix, marker.text, at: commit - 6)
        }
        if let written { try message(WrittenKeys.prefix, written, at: commit - 5) }
        let old: [PgOutputValue] = [.text("\(id)"), .text("before")]
        let new: [PgOutputValue] = [.text("\(id)"), .text(marker == nil ? "local" : "applied")]
        if rows {
            _ = try decoder.feed(
                WireBuilder("U").u32(relation).tag("O").tuple(old).tag("N").tuple(new).bytes, recordLSN: LSN(commit - 4))
        }
        return try decoder.feed(
            WireBuilder("C").u8(0).i64(Int64(commit)).i64(Int64(commit + 8)).i64(0).bytes, recordLSN: LSN(commit))
    }

    /// Row `id`'s key as the decoder makes it (a bigint travels as a JSON string).
    static func key(_ id: Int) -> TableKey { TableKey(table: shape.name, key: ["id": .string("\(id)")]) }

    @Test("an apply that promises nothing has its rows read: a local change it overwrote is found")
    func withoutPromiseRowsAreRead() throws {
        var decoder = try Self.decoder()
        let local = try #require(try Self.transaction(&decoder, commit: 0x100, id: 1))
        let position = try #require(local.changes.first?.position)
        let apply = try #require(try Self.transaction(&decoder, commit: 0x200, id: 1, own: .init(cursor: 5)))
        #expect(apply.overwritten == [position])
    }

    @Test("an apply that deferred keys up to a position before the local change still finds the overwrite")
    func promiseBeforeTheChangeRowsAreRead() throws {
        // The apply took its pending keys before the decoder had seen the local change (it committed while the
        // apply waited on its row lock): that change is after the promise, so the rows are read.
        var decoder = try Self.decoder()
        let local = try #require(try Self.transaction(&decoder, commit: 0x100, id: 1))
        let position = try #require(local.changes.first?.position)
        let earlier = StreamPosition(commitLSN: 0x50, number: 0)
        let apply = try #require(
            try Self.transaction(&decoder, commit: 0x200, id: 1, own: .init(cursor: 5, deferredThrough: earlier)))
        #expect(apply.overwritten == [position])
    }

    @Test("an apply that deferred every key pending up to the newest change has its rows skipped")
    func promiseCoveringPendingSkipsRows() throws {
        // Row 1 is pending; the apply promises it deferred every key pending through that change. Its rows are not
        // decoded at all: even its (here, promise-breaking) write of row 1 is not seen.
        var decoder = try Self.decoder()
        let local = try #require(try Self.transaction(&decoder, commit: 0x100, id: 1))
        let position = try #require(local.changes.first?.position)
        let apply = try #require(
            try Self.transaction(&decoder, commit: 0x200, id: 1, own: .init(cursor: 5, deferredThrough: position)))
        #expect(apply.overwritten.isEmpty)
        #expect(decoder.ledger.cursor == 5, "the marker itself is still read")
        // A local change after the promise makes the next apply's rows count again.
        let later = try #require(try Self.transaction(&decoder, commit: 0x300, id: 1))
        let laterPosition = try #require(later.changes.first?.position)
        let next = try #require(
            try Self.transaction(&decoder, commit: 0x400, id: 1, own: .init(cursor: 6, deferredThrough: position)))
        #expect(next.overwritten == [laterPosition])
    }

    @Test("skipped rows of the agent's own transactions are not even parsed; other rows are")
    func skippedRowsAreNotParsed() throws {
        // With nothing pending, an own transaction's rows are skipped before decoding: a row message the decoder
        // could not read passes unnoticed there, and is refused in an application transaction.
        var decoder = try Self.decoder()
        let garbage = WireBuilder("I").u32(Self.relation).tag("N").i16(9).bytes
        _ = try decoder.feed(WireBuilder("B").i64(0x100).i64(0).u32(700).bytes, recordLSN: LSN(0xF0))
        _ = try decoder.feed(WireBuilder("O").i64(0).string(Self.origin).bytes, recordLSN: LSN(0xF1))
        #expect(try decoder.feed(garbage, recordLSN: LSN(0xF2)) == nil)
        let own = try #require(
            try decoder.feed(WireBuilder("C").u8(0).i64(0x100).i64(0x108).i64(0).bytes, recordLSN: LSN(0x100)))
        #expect(own.changes.isEmpty)
        _ = try decoder.feed(WireBuilder("B").i64(0x200).i64(0).u32(701).bytes, recordLSN: LSN(0x1F0))
        #expect(throws: AgentError.self) { try decoder.feed(garbage, recordLSN: LSN(0x1F2)) }
    }

    @Test("an apply that lists its keys has the overwrite found without its rows")
    func listedKeysFindTheOverwrite() throws {
        // As the race above, with the apply's rows left out of the stream (starling_pgoutput): its message names the
        // key. Without the message the overwrite would go unseen (the next apply, which lists another key, shows it).
        var decoder = try Self.decoder()
        let local = try #require(try Self.transaction(&decoder, commit: 0x100, id: 1))
        let position = try #require(local.changes.first?.position)
        let earlier = StreamPosition(commitLSN: 0x50, number: 0)
        let apply = try #require(
            try Self.transaction(
                &decoder, commit: 0x200, id: 1, own: .init(cursor: 5, deferredThrough: earlier),
                written: WrittenKeys.content([Self.key(1)]), rows: false))
        #expect(apply.overwritten == [position])
        let other = try #require(
            try Self.transaction(
                &decoder, commit: 0x300, id: 1, own: .init(cursor: 6, deferredThrough: earlier),
                written: WrittenKeys.content([Self.key(2)]), rows: false))
        #expect(other.overwritten.isEmpty)
    }

    @Test("a part's empty list means the keys its marker gives versions")
    func emptyListMeansMarkerVersions() throws {
        var decoder = try Self.decoder()
        let local = try #require(try Self.transaction(&decoder, commit: 0x100, id: 1))
        let position = try #require(local.changes.first?.position)
        let earlier = StreamPosition(commitLSN: 0x50, number: 0)
        let part = try #require(
            try Self.transaction(
                &decoder, commit: 0x200, id: 1, own: .init(versions: [Self.key(1): 7], deferredThrough: earlier),
                written: WrittenKeys.markerVersionsContent, rows: false))
        #expect(part.overwritten == [position])
    }

    @Test("a listed transaction's rows are not decoded even when sent; a malformed list is refused when read")
    func listedRowsAreNotDecoded() throws {
        // pgoutput sends the rows anyway: the list stands for them (an apply listing key 2 while writing row 1
        // breaks its word, and the decoder goes by the list).
        var decoder = try Self.decoder()
        _ = try #require(try Self.transaction(&decoder, commit: 0x100, id: 1))
        let earlier = StreamPosition(commitLSN: 0x50, number: 0)
        let apply = try #require(
            try Self.transaction(
                &decoder, commit: 0x200, id: 1, own: .init(cursor: 5, deferredThrough: earlier),
                written: WrittenKeys.content([Self.key(2)])))
        #expect(apply.overwritten.isEmpty)
        #expect(throws: AgentError.self) {
            try Self.transaction(
                &decoder, commit: 0x300, id: 1, own: .init(cursor: 6, deferredThrough: earlier), written: "{", rows: false)
        }
    }

    @Test("an application's transaction that lists keys is captured as any other")
    func applicationListIsIgnored() throws {
        var decoder = try Self.decoder()
        let application = try #require(
            try Self.transaction(&decoder, commit: 0x100, id: 1, written: WrittenKeys.content([Self.key(1)])))
        #expect(application.changes.map(\.key) == [Self.key(1)])
    }

    @Test("markers carry the promise through their text")
    func markerRoundTrip() throws {
        let marker = CaptureLedger.Marker(
            cursor: 9, observedHLC: 12, deferredThrough: StreamPosition(commitLSN: 0xFFFF_FFFF_0000_0001, number: 3))
        let parsed = try CaptureLedger.Marker(json: try JSONValue(parsing: marker.text))
        #expect(parsed == marker)
        #expect(try CaptureLedger.Marker(json: marker.json) == marker)
        #expect(throws: AgentError.self) { try CaptureLedger.Marker(json: try JSONValue(parsing: #"{"d":[1]}"#)) }
    }
}
