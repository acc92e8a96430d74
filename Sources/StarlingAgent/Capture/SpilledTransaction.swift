import StarlingCore
import StarlingIO
import StarlingPostgres

/// A decoded origin transaction too large to keep in memory (more than `tuning.large_transaction_changes` changes,
/// README "Large transactions"): its changes sit in an unnamed scratch file (``AnonymousFile``) in their push
/// form, one JSON object after another; memory keeps per change its offset, and per key the ordinal of its last
/// change (the queue's pending keys, the verdicts' "superseded in this transaction"). Written by ``Writer`` on
/// the decoder thread, then immutable and read by the push and the verdict handling from any thread.
///
/// Nothing in it needs to survive a crash: the slot confirms no position inside an unhandled transaction, so a
/// restarted agent decodes it again (with the same ids, bases and stamps) into a new file. The file's space is
/// freed with the object, or by the kernel when the process dies.
final class SpilledTransaction: Sendable {
    /// The transaction's `tx` id, as its changes carry it.
    let tx: String
    let commitLSN: UInt64
    /// Its commit's end: the slot may confirm it once the verdicts are handled.
    let commitEnd: LSN
    /// The first and last change's positions.
    let first: StreamPosition
    let last: StreamPosition
    /// Byte offset of each change in the file, and the file's length last (`count + 1` items).
    private let offsets: [Int64]
    /// For each key the transaction writes, the ordinal of its last change there.
    let lastOrdinal: [TableKey: Int]
    /// The changes' size as the push batches count it (``CaptureQueue/Captured/approximateBytes``).
    let approximateBytes: Int
    private let file: AnonymousFile

    private init(writer: Writer, last: StreamPosition) {
        (tx, commitLSN, commitEnd, first) = (writer.tx, writer.commitLSN, writer.commitEnd, writer.first)
        self.last = last
        offsets = writer.offsets + [writer.written]
        lastOrdinal = writer.lastOrdinal
        approximateBytes = writer.approximateBytes
        file = writer.file
    }

    /// How many changes the transaction holds.
    var count: Int { offsets.count - 1 }

    /// Each change's serialized size, in order (what ``ChunkPlan`` cuts by).
    var sizes: [Int] { (0..<count).map { Int(offsets[$0 + 1] - offsets[$0]) } }

    /// The changes at ordinals `range`, read back from the file (one read).
    func changes(_ range: Range<Int>) throws(AgentError) -> [Change] {
        guard !range.isEmpty else { return [] }
        let start = offsets[range.lowerBound]
        let bytes: [UInt8]
        do {
            bytes = try file.read(at: start, count: Int(offsets[range.upperBound] - start))
        } catch {
            throw AgentError(code: .capture, message: "reading spilled transaction \(tx) back: \(error)", isRetryable: true)
        }
        var changes: [Change] = []
        changes.reserveCapacity(range.count)
        for ordinal in range {
            let slice = Array(bytes[Int(offsets[ordinal] - start)..<Int(offsets[ordinal + 1] - start)])
            do {
                changes.append(try Change(json: try JSONValue(parsing: slice)))
            } catch {
                throw AgentError(code: .capture, message: "spilled change \(ordinal) of \(tx) does not read back: \(error)")
            }
        }
        return changes
    }

    /// Writes one transaction's changes, in order, to a new scratch file.
    struct Writer {
        let tx: String
        let commitLSN: UInt64
        fileprivate var commitEnd = LSN.invalid
        let first: StreamPosition
        fileprivate let file: AnonymousFile
        fileprivate var offsets: [Int64] = []
        fileprivate var lastOrdinal: [TableKey: Int] = [:]
        fileprivate var approximateBytes = 0
        /// Bytes in the file, and the ones still in `buffer` beyond them.
        fileprivate var written: Int64 = 0
        private var buffer: [UInt8] = []
        private var flushed: Int64 = 0
        private var last: StreamPosition

        /// Opens the file in `directory` and writes the changes decoded so far (`captured`, in order).
        init(directory: String, captured: [CaptureQueue.Captured]) throws(AgentError) {
            guard let head = captured.first else {
                throw AgentError(code: .capture, message: "a spilled transaction starts with a change")
            }
            do {
                file = try AnonymousFile(directory: directory)
            } catch {
                throw AgentError(
                    code: .capture,
                    message: "cannot spill a large transaction to tuning.spill_directory \(directory): \(error)",
                    key: "tuning.spill_directory", isRetryable: true)
            }
            (tx, commitLSN, first, last) = (head.change.tx, head.position.commitLSN, head.position, head.position)
            buffer.reserveCapacity(Self.flushBytes + 4096)
            for item in captured { try append(item) }
        }

        /// Bytes gathered before one write to the file.
        private static let flushBytes = 1 << 20

        /// Appends the next change of the transaction.
        mutating func append(_ captured: CaptureQueue.Captured) throws(AgentError) {
            lastOrdinal[captured.key] = offsets.count
            offsets.append(written)
            let bytes = captured.change.json.serialized()
            buffer.append(contentsOf: bytes)
            written += Int64(bytes.count)
            approximateBytes += captured.approximateBytes
            last = captured.position
            if buffer.count >= Self.flushBytes { try flush() }
        }

        private mutating func flush() throws(AgentError) {
            guard !buffer.isEmpty else { return }
            do {
                try file.write(buffer, at: flushed)
            } catch {
                throw AgentError(
                    code: .capture, message: "spilling a large transaction to tuning.spill_directory: \(error)",
                    key: "tuning.spill_directory", isRetryable: true)
            }
            flushed += Int64(buffer.count)
            buffer.removeAll(keepingCapacity: true)
        }

        /// The transaction, written whole; `commitEnd`: its commit's end.
        mutating func finish(commitEnd: LSN) throws(AgentError) -> SpilledTransaction {
            try flush()
            self.commitEnd = commitEnd
            return SpilledTransaction(writer: self, last: last)
        }
    }
}
