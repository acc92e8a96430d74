-- The shape guard (until schema changes travel through the log): a synced table whose columns or key change in this region must not
-- diverge silently. `shape` is the table's signature (columns with their types, key) as it was when its
-- capture and apply functions were generated; NULL for tables installed before this migration, until the
-- agent's next start reinstalls them.
ALTER TABLE starling.synced_tables ADD COLUMN shape text;

-- Pulled log entries of a table whose stream is stopped because its shape changed: kept here, in seq order,
-- in the same transaction that moves the cursor past them, and applied when the table has its installed
-- shape again. `entry` is the log entry as canonical JSON text.
CREATE TABLE starling.held_entries (
    seq bigint PRIMARY KEY,
    table_name text NOT NULL,
    entry text NOT NULL,
    held_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX held_entries_table ON starling.held_entries (table_name, seq);
