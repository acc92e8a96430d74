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
/// skips what is staged). The last chunk assembles the staged chunks (409 `chunks_missing` when a part is
/// missing: the agent re-sends the transaction from its start), and the sequencer logs the whole transaction in
/// one batch, contiguous seqs, deleting its chunks in the same database transaction (a re-sent last chunk
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
        guard header.first + items.count <= limits.maxTransactionChanges else {
            throw HTTPError(
                413, code: "transaction_too_large",
                "transaction \(header.tx) has more than \(limits.maxTransactionChanges) changes, the most the hub "
                    + "stages and sequences as one transaction (limits.max_transaction_changes)")
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
            let whole = try await assemble(region: region, tx: tx, total: total)
            return try await sequencer.submit(region: region, changes: whole, staged: key)
        }
        var output: [UInt8] = Array(#"{"transaction":"#.utf8)
        TransactionVerdicts(tx: header.tx, verdicts: verdicts).write(to: &output)
        appendCurrentTerm(to: &output)
        output.append(UInt8(ascii: "}"))
        metrics.recordPush(seconds: Double(clock.monotonicNanos() - started) / 1e9)
        return .json(200, output)
    }

    /// The staged transaction's changes in order, ordinals 0..<total; 409 `chunks_missing` when the stored
    /// chunks leave a gap (chunks lost with a hub's database failover, or deleted when a previous last chunk
    /// completed the transaction and its answer was lost: the agent re-sends from the first chunk).
    private func assemble(region: String, tx: String, total: Int) async throws -> [Change] {
        let chunks = try await pool.withConnection { connection in
            try ChunkStaging.load(connection, origin: region, tx: tx)
        }
        let (parts, through) = ChunkStaging.coverage(chunks.map(\.extent))
        guard through >= total else {
            throw HTTPError(
                409, code: "chunks_missing",
                "transaction \(tx): the staged chunks hold its changes 0..<\(through) of \(total); "
                    + "re-send it from its first chunk")
        }
        var changes: [Change] = []
        changes.reserveCapacity(total)
        for part in parts {
            let chunk = chunks[part.index]
            let value = try parseBody(Array(chunk.body.utf8))
            guard case .array(let items) = value else {
                throw HTTPError(500, code: "internal", "staged chunk \(chunk.extent.first) of \(tx) is not an array")
            }
            let kept = Array(items.dropFirst(part.drop))
            changes.append(contentsOf: try validate(kept, region: region, firstIndex: chunk.extent.first + part.drop))
        }
        guard changes.count == through else {
            throw HTTPError(500, code: "internal", "staged chunks of \(tx) hold other counts than recorded")
        }
        // A last chunk that ends before chunks staged beyond it (a transaction cut differently) is the end.
        return Array(changes.prefix(total))
    }
}
