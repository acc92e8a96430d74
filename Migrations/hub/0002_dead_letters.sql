-- Starling hub schema, version 2: dead letters reported by agents.
-- An entry a region could not apply is reported once per (region, local id); the hub records it as an open
-- conflict (conflict_id) so an operator sees it, and keeps the region's error here.

CREATE TABLE starling_hub.dead_letters (
    region      text NOT NULL,
    local_id    bigint NOT NULL,
    seq         bigint NOT NULL,
    table_name  text NOT NULL,
    entry       text NOT NULL,
    sqlstate    text,
    error       text NOT NULL,
    conflict_id bigint NOT NULL,
    reported_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (region, local_id)
);
