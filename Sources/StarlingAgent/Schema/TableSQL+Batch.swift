import StarlingPostgres

extension TableSQL {
    /// `CREATE OR REPLACE FUNCTION apply_batch(p_entries jsonb) → (statuses, error_state, error_message)`:
    /// the set-based twin of ``applyFunctionSQL()`` for a whole pulled batch of this table.
    ///
    /// `p_entries` is a JSON array of `{"o": ordinal 0…n-1, "k": key, "r": row|null, "s": seq, "g": origin}`
    /// in seq order. `statuses` has one character per entry, by ordinal: `a` applied, `v` skipped (local
    /// version ≥ seq), `p` skipped (a local change of the key waits in the outbox), the same verdicts the
    /// per-entry function gives when called entry by entry in seq order. Steps, each a statement with its own
    /// snapshot (read committed), so the checks see what the lock waits let commit:
    /// 1. row locks on the batch's existing rows in key order;
    /// Every lookup by key is a LATERAL subquery fenced by `OFFSET 0`, so each key is one index probe whatever
    /// the statistics say: with the statistics of a freshly bulk-loaded `starling.versions` (51 rows estimated,
    /// 5 562 real) the planner otherwise scanned every version of the table once per entry (a 700-entry batch
    /// took 580 ms instead of 5; seen with auto_explain in the replication benchmark).
    /// 2. the statuses from `starling.versions` and `starling.outbox`;
    /// 3. per key only the newest applied entry is written (the ones before it would be overwritten within
    ///    this transaction anyway): deletes, then upserts in seq order;
    /// 4. the outbox again: a written key with a pending change now (an application insert that committed
    ///    while the upsert waited on it, see the type's locking note) gets the image of its newest outbox row
    ///    back (or is deleted when that is a delete), and its entries become `p`;
    /// 5. the versions of the other written keys.
    /// When any step raises (say a unique clash on another column), the subtransaction rolls back, nothing
    /// of the batch remains, `statuses` is NULL and the caller applies entry by entry, so one bad row
    /// cannot lose the others. Deadlocks, serialization failures and lock timeouts are re-raised: the whole
    /// pulled batch retries.
    func applyBatchFunctionSQL() throws -> String {
        let list = try keyList
        let entries = "jsonb_to_recordset(p_entries) AS e(o integer, k jsonb, r jsonb, s bigint, g text)"
        return """
            CREATE OR REPLACE FUNCTION \(applyBatchFunction)(p_entries jsonb,
                OUT statuses text, OUT error_state text, OUT error_message text)
            \(Self.applyFunctionClauses)
            DECLARE
                w_k jsonb[];
                w_r jsonb[];
                w_s bigint[];
                w_g text[];
                p_k jsonb[];
                p_set jsonb;
                s_arr text[];
                p_op text[];
                p_after jsonb[];
            BEGIN
                BEGIN
                    PERFORM 1 FROM (SELECT DISTINCT \(list("kr")) FROM \(entries),
                                        jsonb_populate_record(NULL::\(table), e.k) kr ORDER BY \(list("kr"))) k
                        CROSS JOIN LATERAL (SELECT 1 FROM \(table) t WHERE (\(list("t"))) = (\(list("k")))
                                            OFFSET 0 FOR UPDATE OF t) l;
                    SELECT string_agg(CASE WHEN v.seq >= e.s THEN 'v'
                                           WHEN EXISTS (SELECT 1 FROM starling.outbox o
                                                        WHERE o.table_name = \(tableLiteral) AND o.key = e.k) THEN 'p'
                                           ELSE 'a' END, '' ORDER BY e.o)
                        INTO statuses
                        FROM \(entries)
                        LEFT JOIN LATERAL (SELECT v.seq FROM starling.versions v
                                           WHERE v.table_name = \(tableLiteral) AND v.key = e.k OFFSET 0) v ON true;
                    -- One element per status: `substr` on a UTF-8 text walks it from the start each time.
                    s_arr := string_to_array(statuses, NULL);
                    SELECT array_agg(n.k ORDER BY n.s), array_agg(n.r ORDER BY n.s), array_agg(n.s ORDER BY n.s),
                           array_agg(n.g ORDER BY n.s)
                        INTO w_k, w_r, w_s, w_g
                        FROM (SELECT DISTINCT ON (e.k) e.k, e.r, e.s, e.g FROM \(entries)
                              WHERE s_arr[e.o + 1] = 'a' ORDER BY e.k, e.s DESC, e.o DESC) n;
                    IF w_k IS NULL THEN RETURN; END IF;
                    DELETE FROM \(table) t
                        USING unnest(w_k, w_r) AS w(k, r), jsonb_populate_record(NULL::\(table), w.k) kr
                        WHERE w.r IS NULL AND (\(list("t"))) = (\(list("kr")));
                    \(try upsertSQL(image: "w.r", from: "unnest(w_r, w_s) AS w(r, s)", tail: " WHERE w.r IS NOT NULL ORDER BY w.s"));
                    \(try restoreSQL());
                    INSERT INTO starling.versions (table_name, key, seq, origin, last_sync_time)
                        SELECT \(tableLiteral), w.k, w.s, w.g, now() FROM unnest(w_k, w_s, w_g) AS w(k, s, g)
                        WHERE p_set IS NULL OR NOT p_set ? (w.k::text)
                        ON CONFLICT (table_name, key) DO UPDATE
                        SET seq = EXCLUDED.seq, origin = EXCLUDED.origin, last_sync_time = EXCLUDED.last_sync_time;
                \(Self.applyErrorHandler)
                        statuses := NULL;
                        RETURN;
                END;
            END
            \(Self.dollar)
            """
    }

    /// Step 4 of ``applyBatchFunctionSQL()``: finds the written keys (`w_k`, distinct) that have a pending
    /// outbox row now (a new statement, so a new snapshot), restores the image of each one's newest row, and
    /// turns their `a` statuses into `p`. Leaves those keys in `p_k` (NULL when none). One index probe per
    /// written key (a LATERAL lookup with LIMIT): written as `o.key = ANY (w_k)`, a generic plan of PL/pgSQL
    /// scanned every pending row of the table and tested it against the whole array (W1 at R=8: 35,700
    /// outbox rows × 5,000 keys, 62 s for one batch; ApplyBacklogTests).
    private func restoreSQL() throws -> String {
        let list = try keyList
        let entries = "jsonb_to_recordset(p_entries) AS e(o integer, k jsonb)"
        return """
            SELECT array_agg(n.key), array_agg(n.op), array_agg(n.after) INTO p_k, p_op, p_after
                        FROM unnest(w_k) AS w(k)
                        CROSS JOIN LATERAL (SELECT o.key, o.op, o.after FROM starling.outbox o
                                            WHERE o.table_name = \(tableLiteral) AND o.key = w.k
                                            ORDER BY o.id DESC LIMIT 1) n;
                    IF p_k IS NOT NULL THEN
                        -- The restored keys as the members of one jsonb object: `?` finds a member by binary
                        -- search, so testing every entry against them stays n log m (an `= ANY` is n × m).
                        SELECT jsonb_object_agg(k::text, true) INTO p_set FROM unnest(p_k) AS p(k);
                        DELETE FROM \(table) t
                            USING unnest(p_k, p_op) AS p(k, op), jsonb_populate_record(NULL::\(table), p.k) kr
                            WHERE p.op = 'delete' AND (\(list("t"))) = (\(list("kr")));
                        \(try upsertSQL(image: "p.after", from: "unnest(p_op, p_after) AS p(op, after)", tail: " WHERE p.op <> 'delete'"));
                        SELECT string_agg(CASE WHEN p_set ? (e.k::text) AND s_arr[e.o + 1] = 'a' THEN 'p'
                                               ELSE s_arr[e.o + 1] END, '' ORDER BY e.o)
                            INTO statuses
                            FROM \(entries);
                    END IF
            """
    }
}
