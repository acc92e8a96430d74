-- Starling hub schema, version 3: the log partitioned by seq range, so retention drops whole partitions
-- (README "Retention"; StarlingHub/LogRetention.swift creates partitions ahead and drops old ones).
-- A unique index of a partitioned table must contain the partition key, so change_id can no longer be unique
-- by index: the sequencer (the single writer, behind its advisory lock) looks every pushed id up before it
-- writes, through a plain partial index per partition; what pruning removes is summarised per origin in
-- pruned_changes so a re-push of a pruned change is still recognised (LogRetention.swift explains how).

ALTER TABLE starling_hub.log RENAME TO log_unpartitioned;
ALTER INDEX starling_hub.log_pkey RENAME TO log_unpartitioned_pkey;
DROP INDEX starling_hub.log_change_id;

CREATE TABLE starling_hub.log (
    seq          bigint NOT NULL,
    origin       text NOT NULL,
    change_id    text NOT NULL,
    tx           text NOT NULL,
    table_name   text NOT NULL,
    op           text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    key          text NOT NULL,
    row          text,
    hlc          bigint NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('change', 'merge', 'resolution', 'correction', 'repair')),
    rewritten    boolean NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (seq)
) PARTITION BY RANGE (seq);
-- Accepted (kind change) and merged (kind merge) changes by id: the sequencer's idempotency lookup.
CREATE INDEX log_change_id ON starling_hub.log (change_id) WHERE kind IN ('change', 'merge');

-- Every partition of the log: seq in [from_seq, to_seq). Written with the CREATE/DROP in one transaction.
CREATE TABLE starling_hub.log_partitions (
    name     text PRIMARY KEY,
    from_seq bigint NOT NULL UNIQUE,
    to_seq   bigint NOT NULL CHECK (to_seq > from_seq)
);

-- One row: every seq <= pruned_through has been dropped (0: nothing yet). Pulls after a smaller seq get 410.
CREATE TABLE starling_hub.retention (
    singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_through     bigint NOT NULL DEFAULT 0,
    partitions_dropped bigint NOT NULL DEFAULT 0,
    entries_dropped    bigint NOT NULL DEFAULT 0
);
INSERT INTO starling_hub.retention DEFAULT VALUES;

-- The compact idempotency record of pruned changes: per origin region, the largest local outbox id (the
-- number after "region:" in a change id) among its dropped change and merge entries, and their largest seq.
CREATE TABLE starling_hub.pruned_changes (
    origin       text PRIMARY KEY,
    max_local_id bigint NOT NULL,
    max_seq      bigint NOT NULL
);

-- Adoption (README "Bootstrap"): the region whose existing rows became a table's initial state. The first
-- claim wins, and only while the hub holds no head of the table; `row_count` is what the region declared, so
-- later regions can wait until its rows have arrived before they compare.
CREATE TABLE starling_hub.adoptions (
    table_name text PRIMARY KEY,
    region     text NOT NULL,
    row_count  bigint NOT NULL,
    adopted_at timestamptz NOT NULL DEFAULT now()
);

-- Existing entries move into partitions of 1 000 000 seqs; the sequencer creates the later ones (all of them
-- on a new hub) with retention.partition_entries seqs each.
DO $$
DECLARE
    top  bigint := (SELECT coalesce(max(seq), 0) FROM starling_hub.log_unpartitioned);
    low  bigint := 1;
    name text;
BEGIN
    WHILE low <= top LOOP
        name := 'log_p' || lpad(low::text, 19, '0');
        EXECUTE format('CREATE TABLE starling_hub.%I PARTITION OF starling_hub.log FOR VALUES FROM (%s) TO (%s)',
                       name, low, low + 1000000);
        INSERT INTO starling_hub.log_partitions (name, from_seq, to_seq) VALUES (name, low, low + 1000000);
        low := low + 1000000;
    END LOOP;
END
$$;
INSERT INTO starling_hub.log SELECT * FROM starling_hub.log_unpartitioned;
DROP TABLE starling_hub.log_unpartitioned;
