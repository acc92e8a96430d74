-- Pulled log entries skipped because a local change of their key was still waiting for its verdict (a
-- "pending" skip). The verdict brings the right image for everything up to its own seq; an entry newer than
-- that verdict must still be applied after it, which matters as soon as pushes and applies overlap (engine
-- v2's pipelined loop). So such entries are kept here, in the apply transaction, and applied again (in seq
-- order, with the usual version check) by the transaction that handles the last pending verdict of the key.
CREATE TABLE starling.deferred_entries (
    seq bigint PRIMARY KEY,
    table_name text NOT NULL,
    key jsonb NOT NULL,
    entry text NOT NULL,
    deferred_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deferred_entries_key ON starling.deferred_entries (table_name, key);
