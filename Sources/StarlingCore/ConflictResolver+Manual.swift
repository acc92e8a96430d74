/// Manual resolution: an operator picks a side (or writes a row) for a recorded conflict.
extension ConflictResolver {
    /// Resolves `record` against the key's present `head`: the picked image becomes a `resolution` entry at
    /// `seq` from ``LogEntry/hubOrigin`` (rewritten, so every region including the origin applies it) and the
    /// new head. The picked image replaces whatever the head holds now, even if the key changed since the
    /// conflict was recorded; the operator chose it having seen both sides.
    ///
    /// `hlc` is the hub's clock now; the entry and head carry `max(hlc, head.hlc)` so the resolution is not
    /// older than the version it replaces. The op is `delete` for a picked delete, `insert` onto a missing or
    /// deleted head, `update` otherwise.
    ///
    /// Fails with `.invalidResolution` when the record is already resolved or a written row lacks or changes
    /// the conflict's key.
    public static func resolveManually(
        record: ConflictRecord, head: Head?, pick: ManualPick, seq: Int64, hlc: Int64
    ) throws(CoreError) -> ManualResolution {
        guard record.status != .resolved else {
            throw CoreError(code: .invalidResolution, message: "the conflict is already resolved", field: "status")
        }
        var resolved = record
        resolved.status = .resolved
        let row: JSONObject?
        switch pick {
        case .current:
            row = record.current.row
            resolved.winner = .current
        case .incoming:
            row = record.incoming.row
            resolved.winner = .incoming
        case .row(let written):
            try checkKey(of: written, matches: record.key)
            row = written
        }
        let op: ChangeOperation = row == nil ? .delete : (head?.isTombstone ?? true) ? .insert : .update
        let stamp = max(hlc, head?.hlc ?? hlc)
        let id = "\(LogEntry.hubOrigin):\(seq)"
        let entry = LogEntry(
            seq: seq, origin: LogEntry.hubOrigin, id: id, tx: id, table: record.table, op: op, key: record.key,
            row: row, hlc: stamp, kind: .resolution, rewritten: true)
        let newHead = Head(
            seq: seq, origin: LogEntry.hubOrigin, hlc: stamp, image: row,
            prevForeignSeq: Head.prevForeignSeq(after: head, newOrigin: LogEntry.hubOrigin), op: op)
        return ManualResolution(entry: entry, head: newHead, record: resolved)
    }

    private static func checkKey(of row: JSONObject, matches key: JSONObject) throws(CoreError) {
        for (column, value) in key where row[column] != value {
            throw CoreError(
                code: .invalidResolution,
                message: "the row's \"\(column)\" must equal the conflict's key value \(value.canonicalText)",
                field: "row.\(column)")
        }
    }
}
