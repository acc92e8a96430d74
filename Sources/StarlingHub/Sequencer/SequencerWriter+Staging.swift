import StarlingCore
import StarlingPostgres

extension SequencerWriter {
    /// The changes a staged transaction is decided and written in at a time: what the hub holds of it in memory
    /// (with their heads, texts and log rows), whatever the transaction's size.
    static let stagedSliceChanges = 5_000

    /// Sequences a staged transaction of `total` changes, alone in its batch and in one database transaction, slice
    /// by slice: each slice's changes are read from its chunks, decided against the heads as the slices before it
    /// left them, written (log rows, heads, conflicts), and dropped before the next is read. The seqs stay
    /// contiguous and the transaction commits whole, with its chunks deleted; its verdicts are compacted as they
    /// are decided (``TransactionVerdicts/Builder``). The entries do not go to the log cache (pulls read them
    /// from the table). Before, the whole transaction was assembled and decided in memory: 2.4 GB of hub memory per
    /// million rows (README "Large transactions").
    func applyStaged(region: String, key: Sequencer.StagedKey, total: Int, connection: PostgresConnection) throws
        -> BatchOutcome
    {
        try partitioner.ensure(through: nextSeq + Int64(total), connection: connection)
        var verdicts = TransactionVerdicts.Builder(tx: key.tx)
        var outcome = BatchOutcome()
        var (seq, conflictID) = (nextSeq, nextConflictID)
        var marks: [String: Int64] = [:]
        var written = 0
        try connection.transaction(name: "sequencer.staged") { connection in
            var reader = StagedReader(origin: key.origin, tx: key.tx, total: total)
            while let read = try reader.next(Self.stagedSliceChanges, connection: connection, region: region) {
                let (changes, texts) = conformed(read, texts: Sequencer.PushTexts(read))
                let slice: [Sequencer.Item] = [.push(region: region, changes: changes, texts: texts, continuation: nil)]
                var state = BatchState(nextSeq: seq, nextConflictID: conflictID)
                try load(slice, into: &state, connection: connection)
                try loadDeltaKinds(slice, connection: connection)
                try loadReasserted(slice, into: &state, connection: connection)
                verdicts.append(decide(changes, texts: texts, region: region, state: &state, outcome: &outcome))
                let statements = try store(state, connection: connection)
                if !statements.isEmpty { _ = try connection.pipeline(statements) }
                written += state.logged.count
                (seq, conflictID) = (state.nextSeq, state.nextConflictID)
                marks.merge(state.raisedMarks) { max($0, $1) }
            }
            // Stored data, not code, decides this count: a chunk shorter than recorded fails the batch, not the hub.
            guard verdicts.verdicts.count == total else {
                throw HubError(
                    code: .storageFailed,
                    message: "transaction \(key.tx): its staged chunks hold \(verdicts.verdicts.count) changes, not \(total)")
            }
            try ChunkStaging.delete(connection, origin: key.origin, tx: key.tx)
        }
        precondition(seq - nextSeq == Int64(written), "the staged batch took \(seq - nextSeq) seqs, wrote \(written)")
        (nextSeq, nextConflictID) = (seq, conflictID)
        originMarks.merge(marks) { max($0, $1) }
        outcome.results = [.transaction(verdicts.verdicts)]
        outcome.head = head
        return outcome
    }
}

/// Reads a staged transaction's changes in order, one stored chunk at a time (overlapping chunks of a
/// transaction cut differently after an agent restart are read once), on the sequencer's connection.
struct StagedReader {
    let origin: String
    let tx: String
    let total: Int
    private var parts: [(first: Int, drop: Int)]?
    private var read = 0

    init(origin: String, tx: String, total: Int) {
        self.origin = origin
        self.tx = tx
        self.total = total
    }

    /// The next up to `limit` changes (whole chunks: a slice may exceed it by a chunk), nil at the end.
    mutating func next(_ limit: Int, connection: PostgresConnection, region: String) throws -> [Change]? {
        if parts == nil {
            let extents = try ChunkStaging.extents(connection, origin: origin, tx: tx)
            let (coverage, through) = ChunkStaging.coverage(extents)
            guard through >= total else {
                throw HubError(
                    code: .storageFailed,
                    message: "transaction \(tx): the staged chunks hold 0..<\(through) of its \(total) changes")
            }
            parts = coverage.map { (extents[$0.index].first, $0.drop) }
        }
        var slice: [Change] = []
        while slice.count < limit, read < total, var remaining = parts, !remaining.isEmpty {
            let part = remaining.removeFirst()
            parts = remaining
            let body = try ChunkStaging.body(connection, origin: origin, tx: tx, first: part.first)
            guard case .array(let items) = try JSONValue(parsing: body) else {
                throw HubError(code: .storageFailed, message: "staged chunk \(part.first) of \(tx) is not an array")
            }
            for item in items.dropFirst(part.drop) where read < total {
                slice.append(try Change(json: item, requiredRegion: region))
                read += 1
            }
        }
        return slice.isEmpty ? nil : slice
    }
}
