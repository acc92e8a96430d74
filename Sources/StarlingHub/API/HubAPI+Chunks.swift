import StarlingCore
import StarlingHTTP2
import StarlingIO

/// Chunked pushes of origin transactions too large for one push (README "Large transactions"):
/// `POST /v1/changes` with `{"chunk":{"tx":"…","first":N,"last":false|true},"changes":[…]}`.
///
/// Every chunk is validated like a push (each within `max_push_changes` and `max_body_bytes`, every change of
/// the chunk's `tx`) and staged (``ChunkStaging``), idempotently: a re-sent chunk changes nothing. A chunk that
/// is not the last is answered `{"staged":{"tx":"…","through":N|null}}` (`through`, the contiguous run of
/// staged changes from ordinal 0, is computed for a chunk at `first` 0 only: an agent resuming after a restart
/// skips what is staged). The last chunk checks that the staged chunks cover the transaction (409
/// `chunks_missing` when a part is missing: the agent re-sends the transaction from its start), and the sequencer
/// logs the whole transaction in one batch, reading it from its chunks slice by slice (SequencerWriter+Staging),
/// contiguous seqs, deleting its chunks in the same database transaction (a re-sent last chunk
/// arriving meanwhile joins that completion, ``ChunkCompletions``). The answer is
/// `{"transaction":<TransactionVerdicts>}`: only the verdicts that are not "accepted at the next seq".
extension HubAPI {
    /// The `chunk` member of a chunked push.
    struct ChunkHeader {
        var tx: String
        var first: Int
        var isLast: Bool

        init(_ value: JSONValue) throws(HTTPError) {
            guard let tx = value["tx"]?.stringValue, !tx.isEmpty, let first = value["first"]?.int64Value,
                first >= 0, first <= Int64(Int32.max), case .bool(let isLast)? = value["last"]
            else {
                throw HTTPError(
                    400, code: "invalid_request",
                    #"chunk must be {"tx":"…","first":N,"last":true|false} with N the ordinal of its first change"#)
            }
            self.tx = tx
            self.first = Int(first)
            self.isLast = isLast
        }
    }

    func pushChunk(_ chunkValue: JSONValue, body: JSONValue, region: String) async throws -> HTTPResponse {
        let started = clock.monotonicNanos()
        let header = try ChunkHeader(chunkValue)
        let items = try changeItems(body)
        let limits = settings.limits
        guard !items.isEmpty, items.count <= limits.maxPushChanges else {
            throw HTTPError(
                items.isEmpty ? 400 : 413, code: items.isEmpty ? "invalid_request" : "too_many_changes",
                "a chunk holds 1 to \(limits.maxPushChanges) changes (limits.max_push_changes), not \(items.count)")
        }
        let changes = try validate(items, region: region, firstIndex: header.first)
        if let index = changes.firstIndex(where: { $0.tx != header.tx }) {
            throw HTTPError(
                400, code: "invalid_change",
                "changes[\(header.first + index)].tx: \"\(changes[index].tx)\" in a chunk of transaction \(header.tx)")
        }
        activity.pushed(region, at: clock.wallClockMicros())
        let extent = ChunkStaging.Extent(first: header.first, count: changes.count)
        let text = String(decoding: JSONValue.array(items).serialized(), as: UTF8.self)
        let tx = header.tx
        let isLast = header.isLast
        let stagedExtents = try await pool.withConnection { connection in
            try ChunkStaging.stage(connection, origin: region, tx: tx, extent: extent, body: text)
            return extent.first == 0 && !isLast ? try ChunkStaging.extents(connection, origin: region, tx: tx) : []
        }
        guard header.isLast else {
            var output: [UInt8] = Array(#"{"staged":{"through":"#.utf8)
            if extent.first == 0 {
                JSONSerializer.writeInt64(Int64(ChunkStaging.coverage(stagedExtents).through), to: &output)
            } else {
                JSONSerializer.writeNull(to: &output)
            }
            output.append(contentsOf: #","tx":"#.utf8)
            JSONSerializer.writeString(header.tx, to: &output)
            output.append(contentsOf: "}}".utf8)
            return .json(200, output)
        }
        let key = Sequencer.StagedKey(origin: region, tx: header.tx)
        let total = extent.first + extent.count
        let verdicts = try await completions.complete(key) { [self] in
            try await checkStaged(region: region, tx: tx, total: total)
            return try await sequencer.submitStaged(region: region, key: key, total: total)
        }
        var output: [UInt8] = Array(#"{"transaction":"#.utf8)
        verdicts.write(to: &output)
        appendCurrentTerm(to: &output)
        output.append(UInt8(ascii: "}"))
        metrics.recordPush(seconds: Double(clock.monotonicNanos() - started) / 1e9)
        return .json(200, output)
    }

    /// 409 `chunks_missing` unless the stored chunks hold the transaction's changes 0..<total (chunks lost with a
    /// hub's database failover, or deleted when a previous last chunk completed the transaction and its answer was
    /// lost: the agent re-sends from the first chunk). The sequencer reads them itself, slice by slice; each chunk
    /// was validated whole when it was staged.
    private func checkStaged(region: String, tx: String, total: Int) async throws {
        let extents = try await pool.withConnection { connection in
            try ChunkStaging.extents(connection, origin: region, tx: tx)
        }
        let through = ChunkStaging.coverage(extents).through
        guard through >= total else {
            throw HTTPError(
                409, code: "chunks_missing",
                "transaction \(tx): the staged chunks hold its changes 0..<\(through) of \(total); "
                    + "re-send it from its first chunk")
        }
    }
}
