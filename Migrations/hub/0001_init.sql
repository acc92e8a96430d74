-- Starling hub schema, version 1 (DESIGN.md "Conflict detection at the hub").
-- Row images and keys are stored as canonical JSON text (StarlingCore's JSONSerializer: sorted members,
-- numbers as written), not jsonb: the text is lossless and the pull path copies it into responses unparsed.
-- `key` is the canonical text of the key object, so it doubles as the head's identity.

CREATE SCHEMA IF NOT EXISTS starling_hub;

-- The ordered change log. seq is assigned by the single sequencer (advisory lock), gap-free, in commit order.
CREATE TABLE starling_hub.log (
    seq          bigint PRIMARY KEY,
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
    committed_at timestamptz NOT NULL DEFAULT now()
);
-- The idempotency record of accepted and merged changes (a re-push returns the stored verdict): kind change
-- means accepted {seq}, kind merge means merged {seq, row}. Hub-made entries (resolution, ...) carry hub ids.
CREATE UNIQUE INDEX log_change_id ON starling_hub.log (change_id) WHERE kind IN ('change', 'merge');

-- The latest authoritative version of every key (a tombstone keeps row NULL).
CREATE TABLE starling_hub.heads (
    table_name       text NOT NULL,
    key              text NOT NULL,
    seq              bigint NOT NULL,
    origin           text NOT NULL,
    hlc              bigint NOT NULL,
    row              text,
    op               text NOT NULL,
    prev_foreign_seq bigint NOT NULL,
    PRIMARY KEY (table_name, key)
);

-- The idempotency record of rejected changes (accepted and merged ones are found in the log by change_id).
-- The winner of a re-pushed rejected change is the current head of (table_name, key).
CREATE TABLE starling_hub.decisions (
    change_id   text PRIMARY KEY,
    table_name  text NOT NULL,
    key         text NOT NULL,
    conflict_id bigint NOT NULL
);

-- Every detected conflict with both images. status auto (policy decided), open (manual, waiting for an
-- operator), resolved (an operator decided: resolution holds the pick, resolution_seq the emitted entry).
CREATE TABLE starling_hub.conflicts (
    id              bigint PRIMARY KEY,
    table_name      text NOT NULL,
    key             text NOT NULL,
    policy          text NOT NULL,
    provisional     text,
    status          text NOT NULL CHECK (status IN ('auto', 'open', 'resolved')),
    winner          text NOT NULL CHECK (winner IN ('current', 'incoming')),
    current_seq     bigint NOT NULL,
    current_origin  text NOT NULL,
    current_op      text NOT NULL,
    current_row     text,
    incoming_id     text NOT NULL,
    incoming_origin text NOT NULL,
    incoming_op     text NOT NULL,
    incoming_base   bigint NOT NULL,
    incoming_row    text,
    detected_at     timestamptz NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolution      text,
    resolution_seq  bigint
);
CREATE INDEX conflicts_open ON starling_hub.conflicts (id) WHERE status = 'open';

-- Operator actions (manual resolutions, reconciliations).
CREATE TABLE starling_hub.audit (
    id     bigserial PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    actor  text NOT NULL,
    action text NOT NULL,
    target text,
    detail text
);

-- Per-region pull cursor and activity, written in batches by the hub.
CREATE TABLE starling_hub.regions (
    name          text PRIMARY KEY,
    cursor        bigint NOT NULL DEFAULT 0,
    last_pull_at  timestamptz,
    last_push_at  timestamptz,
    outbox_depth  bigint,
    apply_lag     double precision,
    last_error    text,
    reported_at   timestamptz
);

-- Registered shapes of synced tables (agents register columns and key columns).
CREATE TABLE starling_hub.table_shapes (
    table_name    text PRIMARY KEY,
    columns       text NOT NULL,
    key_columns   text[] NOT NULL,
    registered_by text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now()
);
