-- Starling hub schema, version 4: reconciliation. (Version 3 belongs to retention and bootstrap.)
-- Repairs are log entries (kind repair) meant for one region only: `target` names it (NULL: every region) and
-- the pull path filters on it; `base` is the seq of the head a repair re-asserts (NULL on other entries), which
-- the region records as the key's version.
ALTER TABLE starling_hub.log ADD COLUMN target text, ADD COLUMN base bigint;

-- One reconciliation run: started by an operator (POST /v1/reconcile) or the schedule.
CREATE TABLE starling_hub.reconcile_runs (
    id           bigserial PRIMARY KEY,
    trigger      text NOT NULL CHECK (trigger IN ('api', 'schedule')),
    status       text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    error        text
);

-- What a run found per region and table. rows_skipped counts keys left alone because they were in flight
-- (a head newer than the region's cursor, or a pending local change); differing_keys holds the first 100
-- differing keys as a JSON array of {"key":…,"difference":"different|missing|extra"}.
CREATE TABLE starling_hub.reconcile_results (
    run_id          bigint NOT NULL REFERENCES starling_hub.reconcile_runs (id),
    region          text NOT NULL,
    table_name      text NOT NULL,
    status          text NOT NULL CHECK (status IN ('done', 'timed_out', 'failed')),
    rows_compared   bigint NOT NULL,
    rows_differing  bigint NOT NULL,
    rows_repaired   bigint NOT NULL,
    rows_skipped    bigint NOT NULL,
    seconds         double precision NOT NULL,
    differing_keys  text NOT NULL,
    finished_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, region, table_name)
);
