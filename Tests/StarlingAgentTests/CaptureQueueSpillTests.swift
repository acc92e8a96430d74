@testable import StarlingAgent
import StarlingCore
import StarlingPostgres
import Testing

/// The capture queue with spilled transactions (README "Large transactions"), without a database: the scratch file
/// gives back exactly what was written, a spilled transaction goes out alone and in commit order between the
/// others, its keys count once as pending, and a rewind lowers the bases it is read back with.
@Suite("Capture queue with spilled transactions")
struct CaptureQueueSpillTests {
    static let directory = AgentConfiguration.Tuning.defaultSpillDirectory

    /// A captured insert of key `id` in the transaction committed at `commit`, with `base`.
    static func captured(_ id: Int64, commit: UInt64, base: Int64 = 50, note: String = "n") throws -> CaptureQueue.Captured {
        let number = try #require(WALChangeNumber.make(recordLSN: commit - 100 + UInt64(id), ordinal: 0))
        let change = try Change(
            id: ChangeID(origin: "r1", number: number).description,
            tx: ChangeID(origin: "r1", number: WALChangeNumber.transaction(commitLSN: commit)).description,
            table: "public.items", op: .insert, key: ["id": .integer(id)], before: nil,
            after: ["id": .integer(id), "note": .string(note)], base: base, hlc: 1000 + id)
        return CaptureQueue.Captured(
            change: change, position: StreamPosition(commitLSN: commit, number: number),
            key: TableKey(table: "public.items", key: ["id": .integer(id)]), commitEnd: LSN(rawValue: commit + 8),
            approximateBytes: 100)
    }

    static func spill(_ changes: [CaptureQueue.Captured], commit: UInt64) throws -> SpilledTransaction {
        var writer = try SpilledTransaction.Writer(directory: directory, captured: Array(changes.prefix(1)))
        for change in changes.dropFirst() { try writer.append(change) }
        return try writer.finish(commitEnd: LSN(rawValue: commit + 8))
    }

    @Test("a spilled transaction reads back exactly, with each key's last ordinal")
    func spillRoundTrip() throws {
        // Changes of one key twice and a value with characters JSON escapes: what is read back is what was written.
        let changes = try (1...5).map { try Self.captured($0, commit: 1000, note: "q\"\\\u{1}é \($0)") }
            + [try Self.captured(2, commit: 1000, note: "again")]
        let spilled = try Self.spill(changes, commit: 1000)
        #expect(spilled.count == 6)
        #expect(try spilled.changes(0..<6) == changes.map(\.change))
        #expect(try spilled.changes(2..<4) == Array(changes[2..<4].map(\.change)))
        #expect(spilled.lastOrdinal[changes[1].key] == 5 && spilled.lastOrdinal[changes[0].key] == 0)
        #expect(spilled.sizes == changes.map { $0.change.json.serialized().count })
        #expect(spilled.first == changes[0].position && spilled.last == changes[5].position)
    }

    @Test("a spilled transaction goes out alone, in commit order; its keys pend once; a rewind lowers its bases")
    func queueOrderPendingAndRewind() throws {
        let queue = CaptureQueue(arrived: WakeUp())
        let before = try Self.captured(1, commit: 500)
        let big = try Self.spill([try Self.captured(2, commit: 1000), try Self.captured(3, commit: 1000),
                                  try Self.captured(2, commit: 1000)], commit: 1000)
        let after = try Self.captured(3, commit: 2000)
        queue.append([before], commitEnd: before.commitEnd)
        queue.append(spilled: big)
        queue.append([after], commitEnd: after.commitEnd)
        #expect(queue.depth == 5)
        let keys = [before.key, after.key, TableKey(table: "public.items", key: ["id": .integer(2)])]
        #expect(queue.pending(among: keys) == Set(keys))

        guard case .changes(let first)? = queue.nextBatch(maxCount: 100, maxBytes: 1 << 20) else {
            Issue.record("the change before the spilled transaction goes first, alone of its kind")
            return
        }
        #expect(first.map(\.position) == [before.position])
        #expect(queue.nextBatch(maxCount: 100, maxBytes: 1 << 20) == nil, "one batch in flight")
        queue.handled(session: nil)

        queue.rewind(to: 30)
        guard case .spilled(let spilled)? = queue.nextBatch(maxCount: 100, maxBytes: 1 << 20) else {
            Issue.record("the spilled transaction goes next, alone")
            return
        }
        #expect(spilled.transaction === big && spilled.baseCeiling == 30)
        let read = try SpilledChanges(transaction: spilled.transaction, baseCeiling: spilled.baseCeiling).changes(0..<3)
        #expect(read.allSatisfy { $0.base == 30 }, "bases above the rewind point come down to it")
        // Key 3 changes again after the transaction: pending beyond it; key 2 only in it.
        #expect(queue.pendingBeyond(big) == [after.key])
        queue.handled(session: nil)
        #expect(queue.pending(among: keys) == [after.key])
        #expect(queue.depth == 1)

        guard case .changes(let last)? = queue.nextBatch(maxCount: 100, maxBytes: 1 << 20) else {
            Issue.record("the change after the spilled transaction goes last")
            return
        }
        #expect(last.map(\.position) == [after.position])
        #expect(last[0].change.base == 30, "a queued change is rebased in memory")
        queue.handled(session: nil)
        #expect(queue.depth == 0 && queue.pending(among: keys).isEmpty)
    }

    @Test("an overwritten change of a spilled transaction is found by its position")
    func overwrittenInSpill() throws {
        let queue = CaptureQueue(arrived: WakeUp())
        let changes = [try Self.captured(7, commit: 3000), try Self.captured(8, commit: 3000)]
        let big = try Self.spill(changes, commit: 3000)
        queue.append(spilled: big)
        queue.markOverwritten([changes[1].position, StreamPosition(commitLSN: 9999, number: 1)])
        #expect(queue.overwritten(in: big) == [changes[1].position])
    }
}

/// A schema change made in a transaction goes out before the transaction's row changes, and the slot may not
/// confirm the transaction until those are handled too (a kill -9 in between must decode them again).
@Suite("Capture queue with schema changes")
struct CaptureQueueSchemaTests {
    @Test("a handled schema change does not complete its transaction's checkpoint before its rows")
    func schemaChangeDoesNotConfirmItsRows() throws {
        let commit: UInt64 = 10_000
        let queue = CaptureQueue(arrived: WakeUp())
        let schema = CaptureQueue.CapturedSchema(
            id: "r1:1", table: "public.items", statement: "ALTER TABLE items ADD COLUMN note text", previous: [],
            columns: [], position: WALDecoder.schemaPosition(commitLSN: commit, index: 0),
            commitEnd: LSN(rawValue: commit + 8))
        let rows = try [1, 2].map { try CaptureQueueSpillTests.captured($0, commit: commit) }
        #expect(rows.allSatisfy { schema.position < $0.position })
        queue.append(schemaChanges: [schema])
        queue.append(rows, commitEnd: LSN(rawValue: commit + 8))
        queue.offer(resume: LSN(rawValue: commit + 8), ledger: CaptureLedger(cursor: 0), switching: false, hlc: 0)
        guard case .schema(let first)? = queue.nextBatch(maxCount: 100, maxBytes: 1 << 20) else {
            Issue.record("the schema change is not first")
            return
        }
        #expect(first.id == "r1:1")
        queue.handled(session: nil)
        #expect(queue.completedCheckpoint() == nil, "the rows after it are not handled yet")
        guard case .changes(let batch)? = queue.nextBatch(maxCount: 100, maxBytes: 1 << 20) else {
            Issue.record("the rows do not follow")
            return
        }
        #expect(batch.count == 2)
        queue.handled(session: nil)
        #expect(queue.completedCheckpoint() != nil)
    }
}
