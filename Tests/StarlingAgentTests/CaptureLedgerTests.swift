import StarlingAgent
import StarlingCore
import StarlingTestSupport
import Testing

@Suite("Capture ledger (bases from the decoded stream)")
struct CaptureLedgerTests {
    static func key(_ n: Int) -> TableKey { TableKey(table: "public.t", key: ["id": .integer(n)]) }
    static func at(_ lsn: UInt64, _ number: Int64 = 0) -> StreamPosition {
        StreamPosition(commitLSN: lsn, number: number)
    }

    @Test("a key's JSON in markers and lists is the canonical serialization of its object")
    func keyJSONIsCanonical() throws {
        let keys: [TableKey] = [
            Self.key(7),
            TableKey(table: "public.é t", key: ["b": .string("x\"y\\z\n"), "a": .integer(-1), "é": .string("😀")]),
            TableKey(table: "s.t", key: ["region": .string("r1"), "id": .number("12345678901234567890")]),
            TableKey(table: "t", key: [:]),
        ]
        for key in keys {
            var copied: [UInt8] = []
            key.writeKeyJSON(to: &copied)
            var serialized: [UInt8] = []
            JSONSerializer.writeObject(key.key, to: &serialized)
            #expect(copied == serialized, "\(String(decoding: copied, as: UTF8.self))")
        }
    }

    @Test("a change's base is the cursor announced before it in the stream")
    func baseIsTheCursorAtThatPoint() {
        var ledger = CaptureLedger(cursor: 10)
        #expect(ledger.capture(Self.key(1), at: Self.at(100)) == 10)
        _ = ledger.own(marker: .init(cursor: 25), writtenKeys: [Self.key(2)])
        #expect(ledger.capture(Self.key(3), at: Self.at(200)) == 25)
    }

    @Test("a pending key keeps its first change's base until the verdicts through it are handled")
    func pendingKeyKeepsItsBase() {
        var ledger = CaptureLedger(cursor: 10)
        #expect(ledger.capture(Self.key(1), at: Self.at(100)) == 10)
        _ = ledger.own(marker: .init(cursor: 30), writtenKeys: [])
        #expect(ledger.capture(Self.key(1), at: Self.at(200)) == 10, "still pending: entries on it were deferred")
        // The verdict of the first change only: the second is still pending.
        _ = ledger.own(marker: .init(handledThrough: Self.at(100), versions: [Self.key(1): 31]), writtenKeys: [])
        #expect(ledger.capture(Self.key(1), at: Self.at(300)) == 10)
        _ = ledger.own(marker: .init(handledThrough: Self.at(300), versions: [Self.key(1): 33]), writtenKeys: [])
        #expect(ledger.pending.isEmpty)
        #expect(ledger.capture(Self.key(1), at: Self.at(400)) == 33, "the verdict's version is above the cursor")
        #expect(ledger.capture(Self.key(2), at: Self.at(400, 1)) == 30)
    }

    @Test("a parallel part's versions give its keys their base until the cursor moves past the page")
    func partVersionsBeforeTheCursor() {
        // A part (AgentStore+Parallel.swift) commits keys 1 and 2 of the page (10, 20] before the cursor moves: a
        // local change of key 1 then is based on what the part wrote there (15), one of key 3 (not in the part)
        // on the cursor (10); once the cursor's transaction moved to 20, every key is based on 20.
        var ledger = CaptureLedger(cursor: 10)
        _ = ledger.own(marker: .init(versions: [Self.key(1): 15, Self.key(2): 18]), writtenKeys: [])
        #expect(ledger.capture(Self.key(1), at: Self.at(100)) == 15)
        #expect(ledger.capture(Self.key(3), at: Self.at(100, 1)) == 10)
        _ = ledger.own(marker: .init(handledThrough: Self.at(100, 1)), writtenKeys: [])
        _ = ledger.own(marker: .init(cursor: 20), writtenKeys: [])
        #expect(ledger.capture(Self.key(2), at: Self.at(200)) == 20)
        #expect(ledger.capture(Self.key(1), at: Self.at(200, 1)) == 20)
    }

    @Test("a version below the cursor gives way to the cursor")
    func versionBelowCursor() {
        var ledger = CaptureLedger(cursor: 10)
        _ = ledger.own(marker: .init(versions: [Self.key(1): 12]), writtenKeys: [])
        _ = ledger.own(marker: .init(cursor: 50), writtenKeys: [])
        #expect(ledger.capture(Self.key(1), at: Self.at(100)) == 50)
    }

    @Test("an agent write on a pending key names the newest pending change as overwritten")
    func overwrittenPendingChange() {
        var ledger = CaptureLedger(cursor: 0)
        _ = ledger.capture(Self.key(1), at: Self.at(100, 1))
        _ = ledger.capture(Self.key(1), at: Self.at(100, 2))
        _ = ledger.capture(Self.key(2), at: Self.at(100, 3))
        let overwritten = ledger.own(marker: .init(cursor: 5), writtenKeys: [Self.key(1), Self.key(3)])
        #expect(overwritten == [Self.at(100, 2)])
        // Once handled, a write on the key overwrites nothing pending.
        _ = ledger.own(marker: .init(handledThrough: Self.at(100, 3)), writtenKeys: [])
        #expect(ledger.own(marker: .init(cursor: 6), writtenKeys: [Self.key(1)]).isEmpty)
    }

    @Test("the handling of verdicts is settled before the transaction's own writes")
    func markerBeforeWrites() {
        var ledger = CaptureLedger(cursor: 0)
        _ = ledger.capture(Self.key(1), at: Self.at(100))
        // A verdict transaction writing the winner's image of the very key it settles overwrote nothing.
        #expect(ledger.own(marker: .init(handledThrough: Self.at(100), versions: [Self.key(1): 7]), writtenKeys: [Self.key(1)]).isEmpty)
    }

    @Test("the persisted state decodes to the same ledger and bases")
    func persistedRoundTrip() throws {
        var ledger = CaptureLedger(cursor: 10)
        _ = ledger.capture(Self.key(1), at: Self.at(100, 4))
        _ = ledger.own(marker: .init(cursor: 20, versions: [Self.key(2): 25, Self.key(3): 15]), writtenKeys: [])
        var restored = try CaptureLedger(json: try JSONValue(parsing: ledger.json.canonicalText))
        #expect(restored == ledger)
        #expect(restored.capture(Self.key(1), at: Self.at(200)) == 10)
        #expect(restored.capture(Self.key(2), at: Self.at(200, 1)) == 25)
        #expect(restored.capture(Self.key(3), at: Self.at(200, 2)) == 20)
        _ = restored.own(marker: .init(handledThrough: Self.at(100, 4)), writtenKeys: [])
        #expect(restored.pending[Self.key(1)] != nil, "the change at 200 is still pending")
        #expect(throws: AgentError.self) { try CaptureLedger(json: .object(["cursor": .integer(1)])) }
    }

    @Test("a key written several times in one transaction settles with it; one written again later waits for that")
    func keysSettleWithTheirLastTransaction() {
        // Proves the settle order with one item per key and transaction: a key changed twice in transaction A is
        // settled when A's verdicts are; one changed again in B stays pending (with its first base) until B's are.
        var ledger = CaptureLedger(cursor: 5)
        #expect(ledger.capture(Self.key(1), at: Self.at(100, 1)) == 5)
        #expect(ledger.capture(Self.key(2), at: Self.at(100, 2)) == 5)
        _ = ledger.capture(Self.key(1), at: Self.at(100, 3))
        _ = ledger.capture(Self.key(2), at: Self.at(200, 1))
        _ = ledger.own(marker: .init(handledThrough: Self.at(100, 3)), writtenKeys: [])
        #expect(ledger.pending[Self.key(1)] == nil, "settled with A")
        #expect(ledger.pending[Self.key(2)]?.base == 5, "changed again in B: pending, with its first base")
        _ = ledger.own(marker: .init(handledThrough: Self.at(200, 1)), writtenKeys: [])
        #expect(ledger.pending.isEmpty)
    }

    @Test("markers round-trip through their JSON form")
    func markerRoundTrip() throws {
        let marker = CaptureLedger.Marker(cursor: 9, handledThrough: Self.at(1 << 40, 77), versions: [Self.key(5): 12])
        #expect(try CaptureLedger.Marker(json: try JSONValue(parsing: marker.json.canonicalText)) == marker)
        // The text written without a JSONValue is the canonical text, member for member.
        let full = CaptureLedger.Marker(
            cursor: 9, handledThrough: Self.at(1 << 40, 77), versions: [Self.key(5): 12, Self.key(6): 13],
            observedHLC: 1234, rewind: 3)
        #expect(full.text == full.json.canonicalText)
        #expect(CaptureLedger.Marker().text == "{}")
        var ledger = CaptureLedger(cursor: 10, versions: [Self.key(1): 11, Self.key(2): 5])
        _ = ledger.capture(Self.key(3), at: Self.at(1 << 41, 2))
        #expect(ledger.text == ledger.json.canonicalText)
        #expect(try CaptureLedger(json: try JSONValue(parsing: ledger.text)) == ledger)
        #expect(try CaptureLedger.Marker(json: .object([:])) == CaptureLedger.Marker())
        #expect(throws: AgentError.self) { try CaptureLedger.Marker(json: .object(["c": .string("x")])) }
    }

    @Test("a rewind brings the cursor, versions and pending bases above its point down to it")
    func rewindLowersWhatReferredToLostHistory() throws {
        var ledger = CaptureLedger(cursor: 10)
        #expect(ledger.capture(Self.key(1), at: Self.at(100)) == 10)
        _ = ledger.own(marker: .init(cursor: 60, versions: [Self.key(2): 70, Self.key(3): 40]), writtenKeys: [])
        #expect(ledger.capture(Self.key(4), at: Self.at(200)) == 60, "a change after the lost entries")
        _ = ledger.own(marker: .init(rewind: 30), writtenKeys: [])
        #expect(ledger.cursor == 30)
        #expect(ledger.pending[Self.key(1)]?.base == 10, "a base below the point stays")
        #expect(ledger.pending[Self.key(4)]?.base == 30, "a base above the point comes down to it")
        #expect(ledger.capture(Self.key(2), at: Self.at(300)) == 30, "a version above the point is forgotten")
        // A marker's cursor moves only forward, a rewind only back: the next pull's marker moves on from 30.
        _ = ledger.own(marker: .init(cursor: 35), writtenKeys: [])
        #expect(ledger.capture(Self.key(5), at: Self.at(400)) == 35)
        let marker = CaptureLedger.Marker(rewind: 30)
        #expect(try CaptureLedger.Marker(json: try JSONValue(parsing: marker.json.canonicalText)) == marker)
    }

    @Test("WAL change numbers are stable, ordered and apart from outbox ids")
    func changeNumbers() {
        let a = WALChangeNumber.make(recordLSN: 0x1_6B37_4D48, ordinal: 0)
        let b = WALChangeNumber.make(recordLSN: 0x1_6B37_4D48, ordinal: 1)
        let c = WALChangeNumber.make(recordLSN: 0x1_6B37_4D50, ordinal: 0)
        #expect(a != nil && a! < b! && b! < c! && a! >= 1 << 62)
        #expect(WALChangeNumber.make(recordLSN: 1 << 53, ordinal: 0) == nil)
        #expect(WALChangeNumber.make(recordLSN: 1, ordinal: 512) == nil)
    }

    /// A reference that keeps the whole history: the base of a change is, at its point of the stream, the
    /// base of the oldest change of its key not yet handled, else the highest of the cursor and every version
    /// given to the key.
    @Test("random streams: bases equal a reference that keeps the whole history", arguments: 0..<20)
    func randomStreamsMatchReference(seed: Int) {
        var random = SplitMix64(seed: UInt64(seed) &+ 0x5eed)
        var ledger = CaptureLedger(cursor: 0)
        var captured: [(position: StreamPosition, key: TableKey, base: Int64)] = []
        var handled = StreamPosition(commitLSN: 0, number: 0)
        var cursor: Int64 = 0
        var given: [TableKey: Int64] = [:]
        var lsn: UInt64 = 1
        for _ in 0..<400 {
            lsn += 1 + random.next() % 5
            let key = Self.key(Int(random.next() % 6))
            switch random.next() % 3 {
            case 0:
                let position = StreamPosition(commitLSN: lsn, number: Int64(random.next() % 3))
                let oldestOpen = captured.first { $0.key == key && $0.position > handled }
                let expected = oldestOpen?.base ?? max(cursor, given[key] ?? 0)
                #expect(ledger.capture(key, at: position) == expected)
                captured.append((position, key, expected))
            case 1:
                cursor += Int64(random.next() % 4)
                _ = ledger.own(marker: .init(cursor: cursor), writtenKeys: [])
            default:
                guard let candidate = captured.filter({ $0.position > handled }).randomElement(using: &random) else { continue }
                let version = cursor + Int64(random.next() % 5)
                handled = candidate.position
                given[candidate.key] = max(given[candidate.key] ?? 0, version)
                _ = ledger.own(marker: .init(handledThrough: handled, versions: [candidate.key: version]), writtenKeys: [])
            }
        }
    }
}
