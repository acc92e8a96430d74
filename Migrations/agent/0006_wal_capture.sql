-- WAL capture (DESIGN.md "Engine v2"): the agent reads the region's changes from a logical replication slot
-- instead of the capture triggers' outbox. One row: where decoding resumes and the capture ledger there.
--
--   slot, publication    the region's replication slot and publication (named after the region)
--   resume_lsn           decoding resumes with the transactions committed after this position (NULL: from
--                        the slot's confirmed position); written before the slot is told to confirm it
--   ledger               the capture ledger at resume_lsn (cursor, versions above it, keys still pending):
--                        the bases of changes decoded from there
--   hlc                  the decoder's hybrid logical clock at resume_lsn, so changes decoded again get the very
--                        stamps they had (their HLC is part of what the hub decided on)
--   switching            true while switching from trigger capture, until the transaction that dropped the
--                        capture triggers is decoded: application changes before it went through the outbox
CREATE TABLE starling.wal_state (
    id integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    slot text NOT NULL,
    publication text NOT NULL,
    resume_lsn pg_lsn,
    ledger jsonb,
    hlc bigint,
    switching boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- With `journal: true` in agent.yaml, every WAL-captured change pushed to the hub, as pushed (base, HLC, both
-- images), written in the transaction that handles its verdict: an audit trail of what this region sent, and
-- what the end-to-end oracles read. A change decoded again after a restart is journaled once; `handled` counts
-- how often its verdict was handled (more than once: decoded again after a restart, and answered by the hub from
-- the verdict it stored). Operators prune it
-- (DELETE … WHERE handled_at < …); the agent never reads it.
CREATE TABLE starling.journal (
    id          bigint PRIMARY KEY,
    tx          bigint NOT NULL,
    table_name  text NOT NULL,
    op          text NOT NULL,
    key         jsonb NOT NULL,
    before      jsonb,
    after       jsonb,
    base        bigint NOT NULL,
    captured_at bigint NOT NULL,
    hlc         bigint NOT NULL,
    verdict     text NOT NULL,
    handled     integer NOT NULL DEFAULT 1,
    handled_at  timestamptz NOT NULL DEFAULT now()
);

-- TRUNCATE of a synced table is refused (a statement trigger per table, installed by the agent): neither
-- capture sees it as row changes, so the other regions would keep the rows. Delete the rows instead.
CREATE FUNCTION starling.refuse_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'TRUNCATE of %.% is refused: the table is synced by Starling and a TRUNCATE would not replicate',
        TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING HINT = 'delete the rows instead (DELETE FROM ...), or take the table out of the synced set first',
              ERRCODE = 'feature_not_supported';
END
$$;
