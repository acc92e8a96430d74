-- The database's DDL count (README "Apply"): an event trigger adds a row to starling.ddl_events in every
-- transaction that runs DDL in this database (the agent creates it when its role may: CREATE EVENT TRIGGER needs a
-- superuser). An apply reads the count (with the epoch below and the synced tables' row versions) after locking its
-- tables, and reads the synced tables' shapes and triggers from the catalog only when that key changed since its
-- last read: a DDL statement commits its row with it, so no change goes unseen. An insert, not an update of one
-- counter row: concurrent DDL transactions never wait for each other here (a counter row made an ALTER TABLE run
-- by hand and the agent's own ALTER from the log deadlock, each holding what the other wanted).
CREATE TABLE starling.ddl_events (
    id bigserial PRIMARY KEY
);
-- The agent deletes old rows now and then (all but the newest) and moves the epoch in the same transaction, so a
-- count that went down and up again never repeats a key. One row; its key lets a FOR ALL TABLES publication carry
-- it.
CREATE TABLE starling.ddl_epoch (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    epoch bigint NOT NULL DEFAULT 0
);
INSERT INTO starling.ddl_epoch DEFAULT VALUES;

-- Counts a DDL command, unless each object it created or changed is temporary (an application's temp tables do not
-- make every apply read the catalog again). A DROP reports no object here (sql_drop would): it counts.
-- SECURITY DEFINER: an application role that may run DDL but not write the starling schema still can.
CREATE FUNCTION starling.count_ddl() RETURNS event_trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands())
       OR EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() c WHERE c.schema_name IS DISTINCT FROM 'pg_temp') THEN
        INSERT INTO starling.ddl_events DEFAULT VALUES;
    END IF;
END
$$;
