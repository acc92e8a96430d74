-- Row locks in primary-key order before a transaction writes a table's rows in more than one run (README "Apply"):
-- a verdict transaction writes its images and then the deferred entries the verdicts release; a table's batch with
-- deletes deletes before it upserts. Each run is in key order, but not the runs together, and an application
-- transaction updating rows in key order (what applications are told to do) could deadlock with the agent's and
-- be the one PostgreSQL aborts (seen in W3 of the replication benchmark). Locking the union first, in key order,
-- leaves no such cycle.
--
-- p_table is the synced table's name (starling.synced_tables), p_keys a JSON array of key objects, read as records of
-- the key columns alone (a constraint of another column, a NOT NULL domain say, cannot fail them). Returns the rows
-- locked, or -1 when the stored key no longer fits the table (a shape change not yet installed: the caller's shape
-- check holds such a table's entries, and nothing is locked). A lock wait longer than the apply's lock timeout (the
-- same as TableSQL.applyLockTimeout's, which LockOrderTests compares), a deadlock or a serialization failure raises as
-- it would in the write.
CREATE FUNCTION starling.lock_rows(p_table text, p_keys jsonb) RETURNS bigint LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET lock_timeout = '2s'
    SET enable_seqscan = off
    SET enable_bitmapscan = off
    SET enable_hashjoin = off
    SET enable_mergejoin = off
    SET jit = off
AS $$
DECLARE
    v_relation regclass;
    v_target text;
    v_source text;
    v_columns text;
    v_missing bigint;
    v_locked bigint;
BEGIN
    SELECT s.relation_oid::regclass,
           string_agg('t.' || quote_ident(k.name), ', ' ORDER BY k.position),
           string_agg('w.' || quote_ident(k.name), ', ' ORDER BY k.position),
           string_agg(quote_ident(k.name) || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY k.position),
           count(*) FILTER (WHERE a.attname IS NULL)
      INTO v_relation, v_target, v_source, v_columns, v_missing
      FROM starling.synced_tables s
           CROSS JOIN LATERAL jsonb_array_elements_text(s.shape::jsonb -> 'key') WITH ORDINALITY AS k(name, position)
           LEFT JOIN pg_attribute a ON a.attrelid = s.relation_oid AND a.attname = k.name AND a.attnum > 0
                                       AND NOT a.attisdropped
     WHERE s.table_name = p_table
     GROUP BY s.relation_oid;
    IF v_relation IS NULL OR v_target IS NULL OR v_missing > 0 THEN
        RETURN -1;
    END IF;
    BEGIN
        EXECUTE format(
            'SELECT count(*) FROM (SELECT 1 FROM %s t WHERE (%s) IN (SELECT %s FROM jsonb_to_recordset($1) AS w(%s)) '
            'ORDER BY %s FOR UPDATE OF t) l',
            v_relation, v_target, v_source, v_columns, v_target)
            INTO v_locked USING p_keys;
    EXCEPTION
        WHEN deadlock_detected OR serialization_failure OR lock_not_available OR query_canceled THEN RAISE;
        WHEN OTHERS THEN RETURN -1;
    END;
    RETURN v_locked;
END
$$;
