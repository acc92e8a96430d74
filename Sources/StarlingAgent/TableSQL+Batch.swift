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
    /// 1. row locks on the batch's existing rows in key order, then the advisory key locks in hash order
    ///    (the order the application's triggers take them: see the type's locking note);
    /// 2. the statuses from `starling.versions` and `starling.outbox`;
    /// 3. per key only the newest applied entry is written (the ones before it would be overwritten within
    ///    this transaction anyway): deletes, then upserts in seq order, then the versions.
    /// When any step raises (say a unique clash on another column), the subtransaction rolls back, nothing
    /// of the batch remains, `statuses` is NULL and the caller applies entry by entry, so one bad row
    /// cannot lose the others. Deadlocks, serialization failures and lock timeouts are re-raised: the whole
    /// pulled batch retries.
    func applyBatchFunctionSQL() throws -> String {
        let keyColumns = try shape.key.map(PostgresIdentifier.quoteName)
        func list(_ alias: String) -> String { keyColumns.map { "\(alias).\($0)" }.joined(separator: ", ") }
        let writableColumns = shape.columns.filter { !$0.isGenerated }
        let writable = try writableColumns.map { try PostgresIdentifier.quoteName($0.name) }
        // json columns travel as their exact text (ColumnEncoding.jsonText), as in applyFunctionSQL.
        let selected = zip(writableColumns, writable).map { column, quoted in
            column.encoding == .jsonText ? "(w.r ->> \(Self.literal(column.name)))::json" : "rr.\(quoted)"
        }
        let nonKey = try shape.columns.filter { !$0.isGenerated && !shape.key.contains($0.name) }
            .map { try PostgresIdentifier.quoteName($0.name) }
        let onConflict =
            nonKey.isEmpty
            ? "DO NOTHING"
            : "DO UPDATE SET " + nonKey.map { "\($0) = EXCLUDED.\($0)" }.joined(separator: ", ")
        let entries = "jsonb_to_recordset(p_entries) AS e(o integer, k jsonb, r jsonb, s bigint, g text)"
        return """
            CREATE OR REPLACE FUNCTION \(applyBatchFunction)(p_entries jsonb,
                OUT statuses text, OUT error_state text, OUT error_message text)
            LANGUAGE plpgsql
            \(Self.settings)
            SET starling.applying = 'on'
            AS \(Self.dollar)
            DECLARE
                w_k jsonb[];
                w_r jsonb[];
                w_s bigint[];
                w_g text[];
            BEGIN
                BEGIN
                    PERFORM 1 FROM \(table) t
                        WHERE (\(list("t"))) IN (SELECT \(list("kr")) FROM \(entries),
                                                 jsonb_populate_record(NULL::\(table), e.k) kr)
                        ORDER BY \(list("t")) FOR UPDATE OF t;
                    PERFORM pg_advisory_xact_lock(x.h)
                        FROM (SELECT DISTINCT hashtextextended(\(tableLiteral) || ' ' || e.k::text, 0) AS h
                              FROM \(entries)) x
                        ORDER BY x.h;
                    SELECT string_agg(CASE WHEN v.seq >= e.s THEN 'v'
                                           WHEN EXISTS (SELECT 1 FROM starling.outbox o
                                                        WHERE o.table_name = \(tableLiteral) AND o.key = e.k) THEN 'p'
                                           ELSE 'a' END, '' ORDER BY e.o)
                        INTO statuses
                        FROM \(entries)
                        LEFT JOIN starling.versions v ON v.table_name = \(tableLiteral) AND v.key = e.k;
                    SELECT array_agg(n.k ORDER BY n.s), array_agg(n.r ORDER BY n.s), array_agg(n.s ORDER BY n.s),
                           array_agg(n.g ORDER BY n.s)
                        INTO w_k, w_r, w_s, w_g
                        FROM (SELECT DISTINCT ON (e.k) e.k, e.r, e.s, e.g FROM \(entries)
                              WHERE substr(statuses, e.o + 1, 1) = 'a' ORDER BY e.k, e.s DESC, e.o DESC) n;
                    IF w_k IS NULL THEN RETURN; END IF;
                    DELETE FROM \(table) t
                        USING unnest(w_k, w_r) AS w(k, r), jsonb_populate_record(NULL::\(table), w.k) kr
                        WHERE w.r IS NULL AND (\(list("t"))) = (\(list("kr")));
                    INSERT INTO \(table) AS t (\(writable.joined(separator: ", "))) OVERRIDING SYSTEM VALUE
                        SELECT \(selected.joined(separator: ", "))
                        FROM unnest(w_r, w_s) AS w(r, s), jsonb_populate_record(NULL::\(table), w.r) rr
                        WHERE w.r IS NOT NULL ORDER BY w.s
                        ON CONFLICT (\(keyColumns.joined(separator: ", "))) \(onConflict);
                    INSERT INTO starling.versions (table_name, key, seq, origin, last_sync_time)
                        SELECT \(tableLiteral), w.k, w.s, w.g, now() FROM unnest(w_k, w_s, w_g) AS w(k, s, g)
                        ON CONFLICT (table_name, key) DO UPDATE
                        SET seq = EXCLUDED.seq, origin = EXCLUDED.origin, last_sync_time = EXCLUDED.last_sync_time;
                EXCEPTION
                    WHEN deadlock_detected OR serialization_failure OR lock_not_available THEN RAISE;
                    WHEN OTHERS THEN
                        GET STACKED DIAGNOSTICS error_state = RETURNED_SQLSTATE, error_message = MESSAGE_TEXT;
                        statuses := NULL;
                        RETURN;
                END;
            END
            \(Self.dollar)
            """
    }
}
