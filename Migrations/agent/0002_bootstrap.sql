-- Bootstrap: a fresh region loads a snapshot of the hub's heads before it tails the log.
-- bootstrapped_at is NULL until the first bootstrap finished (regions that already pulled count as done).
ALTER TABLE starling.state ADD COLUMN bootstrapped_at timestamptz;
UPDATE starling.state SET bootstrapped_at = now() WHERE cursor > 0;

-- The snapshot being loaded: one table's heads (row NULL: a tombstone) with their seq and origin.
CREATE TABLE starling.snapshot_rows (
    table_name text NOT NULL,
    key jsonb NOT NULL,
    row jsonb,
    seq bigint NOT NULL,
    origin text NOT NULL,
    PRIMARY KEY (table_name, key)
);

-- Local rows replaced by the hub's snapshot at adoption (bootstrap.replace_local): never silently lost.
CREATE TABLE starling.replaced_rows (
    id bigserial PRIMARY KEY,
    table_name text NOT NULL,
    key jsonb NOT NULL,
    row jsonb NOT NULL,
    source_region text,
    replaced_at timestamptz NOT NULL DEFAULT now()
);
