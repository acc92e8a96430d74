-- Tables join and leave the synced set while the agent runs (README "Table lifecycle").
--
-- bootstrapped_at: when the table's initial state was settled here (loaded from the hub's snapshot, adopted,
-- or found equal). NULL for a table whose capture was installed but not yet bootstrapped: the agent
-- bootstraps it (adoption rules of a new region) before it syncs it. Tables installed before this
-- migration were bootstrapped with their region.
--
-- capture_xid: the transaction (txid_current(), epoch-extended) that installed the table's capture (its
-- trigger, or its place in the WAL publication). A row whose xmin is newer was written with capture in
-- place: a local change on its way to the hub, never "differing data" at adoption.
ALTER TABLE starling.synced_tables ADD COLUMN bootstrapped_at timestamptz DEFAULT now();
ALTER TABLE starling.synced_tables ALTER COLUMN bootstrapped_at DROP DEFAULT;
ALTER TABLE starling.synced_tables ADD COLUMN capture_xid bigint;
