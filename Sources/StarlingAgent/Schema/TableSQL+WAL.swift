import StarlingPostgres

/// The apply functions of WAL capture (DESIGN.md "Engine v2": no per-change bookkeeping writes). They write
/// the user table only: no version row, no outbox check. What the trigger-capture functions decide in SQL is
/// decided by the agent before it calls them, from what it holds in memory (``CaptureQueue``):
/// * an entry is skipped when the key's version above the cursor (a verdict's image) is at least its seq;
/// * an entry on a key with a local change waiting for its verdict is deferred;
/// * an application change committed while the apply waited for its row lock is found in the decoded stream
///   afterwards (the agent's transaction follows it there), and its accepted verdict writes its image back.
/// So the agent hands them only entries to write, one per key (the newest), in seq order.
extension TableSQL {
    /// `CREATE OR REPLACE FUNCTION apply_wal_batch(p_entries jsonb) → (error_state, error_message)`.
    ///
    /// `p_entries` is a JSON array of `{"k": key, "r": row|null, "s": seq}` in seq order, at most one per key.
    /// Deletes, then upserts in seq order (a row giving up a unique value before another takes it, as in the
    /// origin). When a statement raises (say a unique clash on another column), nothing of the batch remains
    /// and the error is returned: the caller applies entry by entry with ``applyWALFunctionSQL()``, so one
    /// bad row cannot lose the others. Deadlocks, serialization failures and lock timeouts are re-raised: the
    /// whole pulled batch retries.
    func applyWALBatchFunctionSQL() throws -> String {
        let list = try keyList
        let entries = "jsonb_to_recordset(p_entries) AS w(k jsonb, r jsonb, s bigint)"
        return """
            CREATE OR REPLACE FUNCTION \(applyWALBatchFunction)(p_entries jsonb,
                OUT error_state text, OUT error_message text)
            \(Self.applyFunctionClauses)
            BEGIN
                BEGIN
                    DELETE FROM \(table) t
                        USING \(entries), jsonb_populate_record(NULL::\(table), w.k) kr
                        WHERE w.r IS NULL AND (\(list("t"))) = (\(list("kr")));
                    \(try upsertSQL(image: "w.r", from: entries, tail: " WHERE w.r IS NOT NULL ORDER BY w.s"));
                \(Self.applyErrorHandler)
                END;
            END
            \(Self.dollar)
            """
    }

    /// `CREATE OR REPLACE FUNCTION apply_wal(p_key, p_row) → (error_state, error_message)`: writes one image
    /// (deletes the key when `p_row` is NULL); both NULL when it was written, else nothing of it remains.
    func applyWALFunctionSQL() throws -> String {
        let keyMatch = try keyMatch(key: "p_key")
        return """
            CREATE OR REPLACE FUNCTION \(applyWALFunction)(p_key jsonb, p_row jsonb,
                OUT error_state text, OUT error_message text)
            \(Self.applyFunctionClauses)
            BEGIN
                BEGIN
                    IF p_row IS NULL THEN
                        DELETE FROM \(table) t WHERE \(keyMatch);
                    ELSE
                        \(try upsertSQL(image: "p_row"));
                    END IF;
                \(Self.applyErrorHandler)
                END;
            END
            \(Self.dollar)
            """
    }
}
