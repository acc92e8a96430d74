import StarlingCore
import StarlingPostgres

/// Repair entries for one region, found by a reconciliation.
struct RepairRequest: Sendable {
    var run: Int64
    var region: String
    var table: String
    /// Canonical key texts (as stored in `starling_hub.heads.key`).
    var keys: [String]
}

extension SequencerWriter {
    /// Appends one `repair` entry per key, written in the sequencer's batch so it gets the next gap-free seqs.
    ///
    /// A repair re-asserts the key's *current* head (read here, under the sequencer lock, so a change decided
    /// earlier in the same batch is seen): the head's image, or a delete when the head is a tombstone or the
    /// hub never had the key. The head itself is not changed: other regions hold it already and their
    /// versions must stay equal to its seq, or their next write would conflict. Hence the entry is `target`ed
    /// at the one region (the pull path filters it for the others) and carries `base` = the head's seq, which
    /// the region records as its version (0 when there is no head). Origin `hub`, `rewritten` true (the region
    /// must apply it even for a key it wrote), hlc the head's (now for a missing head).
    func repair(_ request: RepairRequest, state: inout BatchState, connection: PostgresConnection, nowMicros: Int64)
        throws -> ItemResult
    {
        guard !request.keys.isEmpty else { return .recorded([]) }
        var stored: [String: (head: Head, rowText: String?)] = [:]
        let missing = request.keys.filter { state.heads[TableKey(table: request.table, key: $0)] == nil }
        if !missing.isEmpty {
            let rows = try connection.query(
                "SELECT h.key, h.seq, h.origin, h.hlc, h.row, h.op, h.prev_foreign_seq FROM unnest($2::text[]) AS u(k) "
                    + "CROSS JOIN LATERAL (SELECT * FROM starling_hub.heads WHERE table_name = $1 AND key = u.k "
                    + "OFFSET 0) AS h",
                [.text(request.table), .textArray(missing)], name: "sequencer.repairHeads")
            for row in rows {
                let rowText = try row.optionalString(4)
                let head = Head(
                    seq: try row.int64(1), origin: try row.string(2), hlc: try row.int64(3),
                    image: try HubJSON.optionalObject(rowText), prevForeignSeq: try row.int64(6),
                    op: ChangeOperation(rawValue: try row.string(5)))
                stored[try row.string(0)] = (head, rowText)
            }
        }
        var rows: [[PostgresValue]] = []
        var seqs: [Int64] = []
        for key in request.keys {
            let tableKey = TableKey(table: request.table, key: key)
            let head: Head?
            let rowText: String?
            if let current = state.heads[tableKey] {
                head = current
                rowText = state.headRowTexts[tableKey] ?? current.image.map(HubJSON.text)
            } else {
                head = stored[key]?.head
                rowText = stored[key]?.rowText
            }
            let seq = state.takeSeq(state.nextSeq)
            seqs.append(seq)
            let live = rowText != nil && head?.isTombstone == false
            rows.append([
                .int64(seq), .text(LogEntry.hubOrigin), .text("repair:\(request.run):\(seq)"),
                .text("repair:\(request.run):\(request.region)"), .text(request.table),
                .text(live ? (head?.op == .insert ? "insert" : "update") : "delete"), .text(key),
                live ? rowText.map(PostgresValue.text) ?? .null : .null, .int64(head?.hlc ?? nowMicros),
                .text("repair"), .bool(true), .text(request.region), .int64(head?.seq ?? 0),
            ])
        }
        state.repairRowCount += rows.count
        try connection.copyIn(
            table: "starling_hub.log", columns: Self.logColumns.map(\.name) + ["target", "base"], rows: rows,
            name: "sequencer.copyRepairs")
        try connection.execute(
            "INSERT INTO starling_hub.audit (actor, action, target, detail) VALUES ('reconcile', 'repair', $1, $2)",
            [.text(request.region), .text("run \(request.run), \(request.table): \(request.keys.count) keys")],
            name: "sequencer.repairAudit")
        return .recorded(seqs)
    }
}
