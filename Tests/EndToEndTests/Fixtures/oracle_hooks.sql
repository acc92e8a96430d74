-- Test-only instrumentation of one region for the end-to-end oracles (Oracles.swift). Installed by the test after
-- the agent has installed `starling` (it hooks starling.outbox and starling.versions); idempotent, so it runs again
-- after every agent start. Nothing here changes what the agent does: every trigger only appends to e2e_oracle.
-- The per-table row trigger is created by the test for each synced table (e2e_oracle.record_row is generic).

CREATE SCHEMA IF NOT EXISTS e2e_oracle;

-- Every table records the writing transaction (`xid`): a transaction that removes outbox rows is a verdict's, so
-- the oracle can tell the verdicts' writes (winner images, released deferred entries) from the pulls' applies.

-- Every captured change exactly as it was pushed: the outbox row (hlc stamped) at the moment its verdict removed it.
-- `removals` counts deletes of the same outbox id (more than 1 would mean an id was reused).
CREATE TABLE IF NOT EXISTS e2e_oracle.pushed (
    id          bigint PRIMARY KEY,
    tx          bigint NOT NULL,
    table_name  text NOT NULL,
    op          text NOT NULL,
    key         jsonb NOT NULL,
    before      jsonb,
    after       jsonb,
    base        bigint NOT NULL,
    captured_at bigint NOT NULL,
    hlc         bigint,
    removals    integer NOT NULL DEFAULT 1,
    xid         bigint NOT NULL DEFAULT txid_current()
);

CREATE OR REPLACE FUNCTION e2e_oracle.record_pushed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO e2e_oracle.pushed (id, tx, table_name, op, key, before, after, base, captured_at, hlc)
    VALUES (OLD.id, OLD.tx, OLD.table_name, OLD.op, OLD.key, OLD.before, OLD.after, OLD.base, OLD.captured_at, OLD.hlc)
    ON CONFLICT (id) DO UPDATE SET removals = e2e_oracle.pushed.removals + 1;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS e2e_oracle_pushed ON starling.outbox;
CREATE TRIGGER e2e_oracle_pushed AFTER DELETE ON starling.outbox
    FOR EACH ROW EXECUTE FUNCTION e2e_oracle.record_pushed();

-- Under WAL capture there is no outbox: the agent journals each pushed change (`journal: true`) in the transaction
-- that handles its verdict, which is what the outbox delete is under trigger capture.
-- A verdict handled again (its change decoded again after an agent restart, the hub answering from the stored
-- verdict) updates the journal row: its transaction is a verdict's too, recorded in verdict_xids.
CREATE TABLE IF NOT EXISTS e2e_oracle.verdict_xids (xid bigint PRIMARY KEY);

CREATE OR REPLACE FUNCTION e2e_oracle.record_journaled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO e2e_oracle.pushed (id, tx, table_name, op, key, before, after, base, captured_at, hlc)
        VALUES (NEW.id, NEW.tx, NEW.table_name, NEW.op, NEW.key, NEW.before, NEW.after, NEW.base, NEW.captured_at,
                NEW.hlc)
        ON CONFLICT (id) DO UPDATE SET removals = e2e_oracle.pushed.removals + 1;
    END IF;
    INSERT INTO e2e_oracle.verdict_xids VALUES (txid_current()) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS e2e_oracle_journal ON starling.journal;
CREATE TRIGGER e2e_oracle_journal AFTER INSERT OR UPDATE ON starling.journal
    FOR EACH ROW EXECUTE FUNCTION e2e_oracle.record_journaled();

-- Every write of a key's version (the apply and the verdicts record the seq of the version the region now holds).
CREATE TABLE IF NOT EXISTS e2e_oracle.version_writes (
    id         bigserial PRIMARY KEY,
    table_name text NOT NULL,
    key        jsonb NOT NULL,
    seq        bigint NOT NULL,
    old_seq    bigint,
    origin     text NOT NULL,
    xid        bigint NOT NULL DEFAULT txid_current()
);

CREATE OR REPLACE FUNCTION e2e_oracle.record_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO e2e_oracle.version_writes (table_name, key, seq, old_seq, origin)
    VALUES (NEW.table_name, NEW.key, NEW.seq, CASE WHEN TG_OP = 'UPDATE' THEN OLD.seq END, NEW.origin);
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS e2e_oracle_versions ON starling.versions;
CREATE TRIGGER e2e_oracle_versions AFTER INSERT OR UPDATE ON starling.versions
    FOR EACH ROW EXECUTE FUNCTION e2e_oracle.record_version();

-- Every row write on a synced table: the new image (the old one for a delete) and whether the agent's apply made
-- it (`starling.applying`, the setting that makes the capture triggers skip the apply's own writes).
CREATE TABLE IF NOT EXISTS e2e_oracle.row_writes (
    id         bigserial PRIMARY KEY,
    table_name text NOT NULL,
    op         text NOT NULL,
    image      jsonb NOT NULL,
    applying   boolean NOT NULL,
    xid        bigint NOT NULL DEFAULT txid_current()
);

CREATE OR REPLACE FUNCTION e2e_oracle.record_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO e2e_oracle.row_writes (table_name, op, image, applying)
    VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, lower(TG_OP),
            to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END),
            coalesce(current_setting('starling.applying', true), '') = 'on');
    RETURN NULL;
END
$$;
