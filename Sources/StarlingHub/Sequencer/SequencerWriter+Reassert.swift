import StarlingCore
import StarlingPostgres

/// Re-assertions (``Change/reassert``) in a batch: regions re-asserting row images from log history the hub
/// lost (README "Restoring the hub's store"). A key's head set by a re-assertion keeps that re-assertion's
/// priority in `starling_hub.reasserted` (valid while the head's seq is the row's), so a region that had pulled
/// less of the lost history does not overwrite a further one, in whatever order they push.
extension SequencerWriter {
    /// Loads the stored priority of every re-asserted key of the batch (nothing when it re-asserts nothing).
    func loadReasserted(_ batch: [Sequencer.Item], into state: inout BatchState, connection: PostgresConnection)
        throws
    {
        var tables: [String] = []
        var keys: [String] = []
        for item in batch {
            guard case .push(_, let changes, let texts, _) = item else { continue }
            for (change, key) in zip(changes, texts.keys) where change.reassert != nil {
                tables.append(change.table)
                keys.append(key)
            }
        }
        guard !tables.isEmpty else { return }
        let rows = try connection.query(
            """
            SELECT r.table_name, r.key, r.seq, r.priority
            FROM unnest($1::text[], $2::text[]) AS k(t, k)
            JOIN starling_hub.reasserted r ON r.table_name = k.t AND r.key = k.k
            """, [.textArray(tables), .textArray(keys)], name: "sequencer.loadReasserted")
        for row in rows {
            state.reasserted[TableKey(table: try row.string(0), key: try row.string(1))] = BatchState.Reasserted(
                seq: try row.int64(2), priority: try row.int64(3))
        }
    }

    /// The decision for a re-assertion: the priority of the head's re-assertion counts while that head stands.
    func decideReassert(_ change: Change, tableKey: TableKey, policy: ConflictPolicy, state: BatchState)
        -> ReassertDecision
    {
        let head = state.heads[tableKey]
        let stored = state.reasserted[tableKey]
        let headPriority = stored.flatMap { stored in stored.seq == head?.seq ? stored.priority : nil }
        return ConflictResolver.decideReassert(
            change: change, head: head, headPriority: headPriority, policy: policy, priorities: settings.priorities)
    }

    /// The statement writing the priorities of the heads this batch's re-assertions set; nil when none did.
    func storeReasserted(_ state: BatchState) -> PostgresStatement? {
        let written = state.reasserted.filter(\.value.isNew)
        guard !written.isEmpty else { return nil }
        return PostgresStatement(
            """
            INSERT INTO starling_hub.reasserted (table_name, key, seq, priority)
            SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
            ON CONFLICT (table_name, key) DO UPDATE SET seq = excluded.seq, priority = excluded.priority
            """,
            [
                .textArray(written.map(\.key.table)), .textArray(written.map(\.key.key)),
                .int64Array(written.map(\.value.seq)), .int64Array(written.map(\.value.priority)),
            ], name: "sequencer.storeReasserted")
    }
}

extension BatchState {
    /// A key's head set by a re-assertion: its seq and priority; `isNew` when set in this batch (to store).
    struct Reasserted {
        var seq: Int64
        var priority: Int64
        var isNew = false
    }
}
