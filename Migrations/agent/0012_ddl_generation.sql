-- The database's DDL count (README "Apply"): an event trigger adds one in every transaction that runs DDL in this
-- database (the agent creates it when its role may: CREATE EVENT TRIGGER needs a superuser). An apply reads it
-- after locking its tables and checks the synced tables' shapes (a catalog query per table, ShapeGuard) only when
-- the count, or a row of starling.synced_tables, changed since the last check: a DDL statement commits its count
-- with it, so no shape changes unseen. One row; its key lets a FOR ALL TABLES publication carry it.
CREATE TABLE starling.ddl_generation (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    generation bigint NOT NULL DEFAULT 0
);
INSERT INTO starling.ddl_generation DEFAULT VALUES;

-- Counts a DDL command, unless each object it created or changed is temporary (an application's temp tables do not
-- make every apply check the shapes again). A DROP reports no object here (sql_drop would): it counts.
-- SECURITY DEFINER: an application role that may run DDL but not write the starling schema still can.
CREATE FUNCTION starling.count_ddl() RETURNS event_trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands())
       OR EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() c WHERE c.schema_name IS DISTINCT FROM 'pg_temp') THEN
        UPDATE starling.ddl_generation SET generation = generation + 1;
    END IF;
END
$$;
