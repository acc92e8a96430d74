import StarlingPostgres

/// The apply functions of WAL capture (DESIGN.md "Engine v2": no per-change bookkeeping writes). They write
/// the user table only: no version row, no outbox check. What the trigger-capture functions decide in SQL is
/// decided by the agent before it calls them, from what it holds in memory (``CaptureQueue``):
/// * an entry is skipped when the key's version above the cursor (a verdict's image) is at least its seq;
/// * an entry on a key with a local change waiting for its verdict is deferred;
/// * an application change committed while the apply waited for its row lock is found in the decoded stream
///   afterwards (the agent's transaction follows it there), and its accepted verdict writes its image back.
/// So the agent hands them only entries to write, one per key (the newest).
extension TableSQL {
    /// `CREATE OR REPLACE FUNCTION apply_wal_batch(p_upserts jsonb, p_deletes jsonb) → (error_state,
    /// error_message)`.
    ///
    /// `p_upserts` is a JSON array of `{"r": row}`, `p_deletes` one of `{"k": key}`, each
    /// NULL when there is none; at most one entry per key in both. Deletes, then upserts in primary-key order: the
    /// order applications that lock several rows are told to use, so the apply never deadlocks with one of them
    /// (in seq order it locked rows in whatever order the origins wrote them, and W3 of the peers' benchmark,
    /// whose transactions update sorted keys, lost a transaction to a deadlock now and then). A row giving up a
    /// unique value that another takes in the same batch may then clash: the batch raises and is applied entry
    /// by entry, in seq order, as the origin did. Two documents, so a batch without deletes (most) reads its
    /// entries once: with one document, the DELETE's pass over it took 10–25% of the function's time for 5,000
    /// upserts. When a statement raises (say a unique clash on another column),
    /// nothing of the batch remains and the error is returned: the caller applies entry by entry with
    /// ``applyWALFunctionSQL()``, so one bad row cannot lose the others. Deadlocks, serialization failures and
    /// lock timeouts are re-raised: the whole pulled batch retries.
    func applyWALBatchFunctionSQL() throws -> String {
        let list = try keyList
        let upserts = "jsonb_to_recordset(p_upserts) AS w(r jsonb)"
        return """
            CREATE OR REPLACE FUNCTION \(applyWALBatchFunction)(p_upserts jsonb, p_deletes jsonb,
                OUT error_state text, OUT error_message text)
            \(Self.applyFunctionClauses)
            BEGIN
                BEGIN
                    IF p_deletes IS NOT NULL THEN
                        DELETE FROM \(table) t
                            USING jsonb_to_recordset(p_deletes) AS w(k jsonb), jsonb_populate_record(NULL::\(table), w.k) kr
                            WHERE (\(list("t"))) = (\(list("kr")));
                    END IF;
                    IF p_upserts IS NOT NULL THEN
                        \(try upsertSQL(image: "w.r", from: upserts, tail: " ORDER BY \(list("r"))"));
                    END IF;
                \(Self.applyErrorHandler)
                END;
            END
            \(Self.dollar)
            """
    }

    /// The signature of the batch function of earlier versions (one document): dropped at install.
    func legacyWALBatchFunctionSQL() -> String {
        "DROP FUNCTION IF EXISTS \(applyWALBatchFunction)(jsonb)"
    }

    /// For a table whose install is skipped (its shape drifted) and that has only the one-document batch function
    /// of earlier versions: the current signature as a shim calling it (deletes `{"k"}` and upserts `{"r"}` are
    /// entries of its `{"k","r","s"}` document, the missing members NULL). Nothing when the current function
    /// exists or the old one does not. The next install of the table replaces the shim with the real function
    /// and drops the old one.
    func legacyWALBatchShimSQL() -> String {
        let current = "\(applyWALBatchFunction)(jsonb, jsonb)"
        let legacy = "\(applyWALBatchFunction)(jsonb)"
        return """
            DO \(Self.dollar)
            BEGIN
                IF to_regprocedure('\(current)') IS NULL AND to_regprocedure('\(legacy)') IS NOT NULL THEN
                    CREATE FUNCTION \(applyWALBatchFunction)(p_upserts jsonb, p_deletes jsonb,
                        OUT error_state text, OUT error_message text)
                    LANGUAGE sql SET search_path = pg_catalog
                    AS 'SELECT * FROM \(applyWALBatchFunction)(coalesce($2, ''[]''::jsonb) || coalesce($1, ''[]''::jsonb))';
                END IF;
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
