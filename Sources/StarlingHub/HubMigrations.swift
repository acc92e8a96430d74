public import StarlingPostgres

/// The hub's schema migrations, embedded so an installed `starling` binary needs no files beside it.
///
/// The text is a verbatim copy of `Migrations/hub/NNNN_name.sql` (the source of truth operators read);
/// `HubMigrationsTests` fails when the two differ. To add a migration: add the file, then append it here.
public enum HubMigrations {
    /// The schema holding the hub's tables and its `schema_migrations`.
    public static let schema = "starling_hub"

    /// Every migration, ascending.
    public static let all: [PostgresMigration] = [
        PostgresMigration(version: 1, name: "init", sql: init0001),
        PostgresMigration(version: 2, name: "dead_letters", sql: deadLetters0002),
        PostgresMigration(version: 4, name: "reconcile", sql: reconcile0004),
    ]

    static let init0001 = #"""
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

        -- Registered shapes of synced tables (agents register columns and key columns; issue 4).
        CREATE TABLE starling_hub.table_shapes (
            table_name    text PRIMARY KEY,
            columns       text NOT NULL,
            key_columns   text[] NOT NULL,
            registered_by text NOT NULL,
            registered_at timestamptz NOT NULL DEFAULT now()
        );

        """#

    static let deadLetters0002 = #"""
        -- Starling hub schema, version 2: dead letters reported by agents (issue 4).
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

        """#

    static let reconcile0004 = #"""
        -- Starling hub schema, version 4: reconciliation (issue 7). (Version 3 belongs to retention and bootstrap.)
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

        """#
}
