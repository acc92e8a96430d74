-- Schema changes as log entries (README "Schema changes").
--
-- renamed: old column name -> new name, for every column a schema change renamed; a pulled image written before
-- the rename (by a region that had not applied it yet) is read with the new names.
ALTER TABLE starling.synced_tables ADD COLUMN renamed jsonb NOT NULL DEFAULT '{}';
-- column_history: every list of (non-generated) column names the table's capture was installed for, in order:
-- WAL capture decodes rows of any of them (a restart reads WAL from before a schema change again); a row with
-- names never installed is a schema change the region made without announcing it, and stops the table's stream.
ALTER TABLE starling.synced_tables ADD COLUMN column_history jsonb NOT NULL DEFAULT '[]';
-- stopped: why the table's stream is stopped by a schema change from the log that could not be applied here (the
-- entry waits first among the table's held entries and is tried again at each apply; NULL: not stopped).
ALTER TABLE starling.synced_tables ADD COLUMN stopped text;

-- A synced table's columns as the catalog has them now: [{"number","name","type","not_null","default"}] in
-- attnum order (what a schema change is computed from: columns keep their number across a rename or a type
-- change, an added column gets a new one).
CREATE FUNCTION starling.table_columns(p_relation oid) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT coalesce(json_agg(json_build_object(
               'number', a.attnum, 'name', a.attname::text, 'type', format_type(a.atttypid, a.atttypmod),
               'not_null', a.attnotnull, 'default', pg_get_expr(d.adbin, d.adrelid)) ORDER BY a.attnum), '[]')
    FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = p_relation AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
$$;

-- The event trigger function (the trigger itself is created by the agent when its role may: CREATE EVENT
-- TRIGGER needs a superuser). An ALTER TABLE of a synced table run in this region is
-- * under WAL capture: announced in the WAL at its place among the region's changes, with the table's columns
--   after it (a transactional logical message, prefix `starling.schema`); the agent pushes it to the hub, which
--   sequences it for every region;
-- * under trigger capture: refused (the capture trigger builds its images from the columns it was generated
--   for and would drop the new ones): give the statement to the hub (`starling admin ddl`), which replicates it.
-- The agent's own application of a schema change from the log sets starling.schema_apply and is not announced.
-- SECURITY DEFINER: an application role that may alter its tables but not read the starling schema still can.
CREATE FUNCTION starling.capture_schema_change() RETURNS event_trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
BEGIN
    IF current_setting('starling.schema_apply', true) = 'on' THEN
        RETURN;
    END IF;
    FOR t IN
        SELECT s.table_name, s.relation_oid, s.shape
        FROM starling.synced_tables s
        -- A table not bootstrapped yet is not synced yet: the agent installs its capture for the shape it has then.
        WHERE s.bootstrapped_at IS NOT NULL AND s.relation_oid IN (SELECT c.objid FROM pg_event_trigger_ddl_commands() c
                                 WHERE c.classid = 'pg_class'::regclass AND c.command_tag = 'ALTER TABLE')
        ORDER BY s.table_name
    LOOP
        IF EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = t.relation_oid AND g.tgname = 'starling_capture') THEN
            -- Only a change of columns is refused (not REPLICA IDENTITY, a constraint, statistics…).
            CONTINUE WHEN (SELECT coalesce(jsonb_agg(jsonb_build_array(c ->> 'name', c ->> 'type') ORDER BY o), '[]')
                           FROM jsonb_array_elements(t.shape::jsonb -> 'columns') WITH ORDINALITY AS e(c, o)
                           WHERE NOT coalesce((c ->> 'generated')::boolean, false))
                        = (SELECT coalesce(jsonb_agg(jsonb_build_array(c ->> 'name', c ->> 'type') ORDER BY o), '[]')
                           FROM jsonb_array_elements(starling.table_columns(t.relation_oid)::jsonb) WITH ORDINALITY
                                AS e(c, o));
            RAISE EXCEPTION 'schema change of synced table % refused: this region captures changes with triggers, '
                'which cannot follow a schema change made here', t.table_name
                USING HINT = 'Give the statement to the hub instead (starling admin ddl ' || t.table_name
                    || ' ''ALTER TABLE …'' or POST /v1/schema): every region applies it at the same point of the log.';
        END IF;
        PERFORM pg_logical_emit_message(true, 'starling.schema', json_build_object(
            'table', t.table_name, 'statement', current_query(),
            'columns', starling.table_columns(t.relation_oid))::text);
    END LOOP;
END
$$;
