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
    /// `CREATE OR REPLACE FUNCTION apply_wal_rows(p_upserts jsonb, p_deletes jsonb) → (error_state,
    /// error_message)`.
    ///
    /// `p_upserts` is a JSON array of row objects, `p_deletes` one of key objects, each NULL when there is none; at
    /// most one entry per key in both. (Until 2026-12-06 the batch function was `apply_wal_batch`, with its members
    /// wrapped, `{"r": row}` and `{"k": key}`: given bare members it would delete nothing and report no error, so the
    /// new form has a new name, and a drifted table that keeps the old function gets a shim, ``walRowsShimSQL()``.)
    ///
    /// Deletes, then upserts in primary-key order: the order applications that lock several rows are told to use, so
    /// the apply never deadlocks with one of them (in seq order it locked rows in whatever order the origins wrote
    /// them, and W3 of the peers' benchmark, whose transactions update sorted keys, lost a transaction to a deadlock
    /// now and then). With a delete among other rows the caller locks them all in key order first
    /// (``AgentStore/lockRows(_:connection:)``). A row giving up a
    /// unique value that another takes in the same batch may then clash: the batch raises and is applied entry
    /// by entry, in seq order, as the origin did. Two documents, so a batch without deletes (most) reads its
    /// entries once: with one document, the DELETE's pass over it took 10–25% of the function's time for 5,000
    /// upserts. When a statement raises (say a unique clash on another column),
    /// nothing of the batch remains and the error is returned: the caller applies entry by entry with
    /// ``applyWALFunctionSQL()``, so one bad row cannot lose the others. Deadlocks, serialization failures and
    /// lock timeouts are re-raised: the whole pulled batch retries.
    func applyWALRowsFunctionSQL() throws -> String {
        let list = try keyList
        return """
            CREATE OR REPLACE FUNCTION \(applyWALRowsFunction)(p_upserts jsonb, p_deletes jsonb,
                OUT error_state text, OUT error_message text)
            \(Self.applyFunctionClauses)
            BEGIN
                BEGIN
                    IF p_deletes IS NOT NULL THEN
                        DELETE FROM \(table) t USING jsonb_populate_recordset(NULL::\(table), p_deletes) kr
                            WHERE (\(list("t"))) = (\(list("kr")));
                    END IF;
                    IF p_upserts IS NOT NULL THEN
                        \(try upsertSQL(rows: "p_upserts", tail: " ORDER BY \(list("r"))"));
                    END IF;
                \(Self.applyErrorHandler)
                END;
            END
            \(Self.dollar)
            """
    }

    /// The upserts of ``applyWALRowsFunctionSQL()`` as one statement of its own, `$1` the rows' document (jsonb text):
    /// what the one-trip apply sends for a table whose images are all upserts (AgentStore+OneTripApply.swift). No
    /// function around it: the function's thirteen `SET` clauses, its exception block (a subtransaction) and its
    /// PL/pgSQL frame took about half of the database's CPU of a one-row apply transaction (pgbench, 2026-12-07:
    /// 139–165 µs against 78–110 µs a transaction). The settings the function's image parsing runs under are set
    /// with the transaction's `BEGIN` instead (``AgentStore/oneTripSettings``), and a failing row raises: the page is
    /// then applied the full way, through the function, which makes the row a dead letter.
    func upsertRowsSQL() throws -> String {
        let list = try keyList
        return try upsertSQL(rows: "$1::jsonb", tail: " ORDER BY \(list("r"))")
    }

    /// The batch functions of earlier versions (`apply_wal_batch`, one document, then two of wrapped members): dropped
    /// at install.
    func legacyWALBatchFunctionSQL() -> String {
        "DROP FUNCTION IF EXISTS \(applyWALBatchFunction)(jsonb), \(applyWALBatchFunction)(jsonb, jsonb)"
    }

    /// For a table whose install is skipped (its shape drifted) and that has only a batch function of earlier
    /// versions: the current one (``applyWALRowsFunctionSQL()``'s signature and bare members) as a shim over it, so its
    /// held entries apply through it once the shape is back. The two-document `apply_wal_batch` gets each member
    /// wrapped (`{"r": row}`, `{"k": key}`); the one-document one of before (deletes `{"k"}` and upserts `{"r"}` as
    /// entries of its `{"k","r","s"}` document, the missing members NULL) gets a two-document shim first. Nothing when
    /// the current function exists or no old one does. The next install of the table replaces the shims with the real
    /// function and drops the old ones.
    func walRowsShimSQL() -> String {
        let rows = "\(applyWALRowsFunction)(jsonb, jsonb)"
        let twoDocuments = "\(applyWALBatchFunction)(jsonb, jsonb)"
        let oneDocument = "\(applyWALBatchFunction)(jsonb)"
        return """
            DO \(Self.dollar)
            BEGIN
                IF to_regprocedure('\(rows)') IS NOT NULL THEN
                    RETURN;
                END IF;
                IF to_regprocedure('\(twoDocuments)') IS NULL AND to_regprocedure('\(oneDocument)') IS NOT NULL THEN
                    CREATE FUNCTION \(applyWALBatchFunction)(p_upserts jsonb, p_deletes jsonb,
                        OUT error_state text, OUT error_message text)
                    LANGUAGE sql SET search_path = pg_catalog
                    AS 'SELECT * FROM \(applyWALBatchFunction)(coalesce($2, ''[]''::jsonb) || coalesce($1, ''[]''::jsonb))';
                END IF;
                IF to_regprocedure('\(twoDocuments)') IS NOT NULL THEN
                    CREATE FUNCTION \(applyWALRowsFunction)(p_upserts jsonb, p_deletes jsonb,
                        OUT error_state text, OUT error_message text)
                    LANGUAGE sql SET search_path = pg_catalog
                    AS 'SELECT * FROM \(applyWALBatchFunction)(
                            (SELECT jsonb_agg(jsonb_build_object(''r'', u)) FROM jsonb_array_elements($1) u),
                            (SELECT jsonb_agg(jsonb_build_object(''k'', d)) FROM jsonb_array_elements($2) d))';
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
