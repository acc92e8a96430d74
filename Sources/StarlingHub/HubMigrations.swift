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
        PostgresMigration(version: 3, name: "partitioned_log", sql: partitionedLog0003),
        PostgresMigration(version: 4, name: "reconcile", sql: reconcile0004),
        PostgresMigration(version: 5, name: "c_collation", sql: cCollation0005),
        PostgresMigration(version: 6, name: "origin_marks", sql: originMarks0006),
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

    static let partitionedLog0003 = #"""
        -- Starling hub schema, version 3: the log partitioned by seq range, so retention drops whole partitions
        -- (issue 7, "Retention"; StarlingHub/LogRetention.swift creates partitions ahead and drops old ones).
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

        -- Adoption (issue 7, "Bootstrap"): the region whose existing rows became a table's initial state. The first
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

    static let cCollation0005 = #"""
        -- Starling hub schema, version 5: identity columns compare bytewise (COLLATE "C").
        -- Keys, change ids and table names are canonical JSON text and identifiers: only equality and a stable order
        -- matter, never a language's sorting rules. Under a libc or ICU locale (en_US.UTF-8, even C.UTF-8) every
        -- B-tree comparison on these columns went through strcoll; bytewise comparison is several times cheaper on
        -- the sequencer's hot path (one heads probe, one change-id probe and three index inserts per change).
        -- Queries keep using the indexes: a column's collation wins over a parameter's default collation.

        ALTER TABLE starling_hub.heads ALTER COLUMN table_name TYPE text COLLATE "C";
        ALTER TABLE starling_hub.heads ALTER COLUMN key TYPE text COLLATE "C";
        ALTER TABLE starling_hub.log ALTER COLUMN change_id TYPE text COLLATE "C";
        ALTER TABLE starling_hub.decisions ALTER COLUMN change_id TYPE text COLLATE "C";

        """#

    static let originMarks0006 = #"""
        -- Starling hub schema, version 6: per origin, the largest local outbox id (the number after "region:" in a change
        -- id) of any change the sequencer has decided. A stored verdict (a change or merge entry in the log, a row in
        -- decisions, a pruned_changes watermark) always has a number at or below its origin's mark, so a pushed id above
        -- the mark is new and the sequencer skips its two idempotency probes; ids at or below it are looked up as before.
        -- Written by the sequencer in the transaction that stores the verdicts; filled here from what is stored already
        -- (an id whose number does not parse gets the largest mark, so that origin's ids are always looked up).

        CREATE TABLE starling_hub.origin_marks (
            origin       text COLLATE "C" PRIMARY KEY,
            max_local_id bigint NOT NULL
        );

        INSERT INTO starling_hub.origin_marks (origin, max_local_id)
        SELECT origin, max(local_id) FROM (
            SELECT substring(change_id FROM '^(.*):[^:]*$') AS origin,
                   CASE WHEN substring(change_id FROM ':([^:]*)$') ~ '^-?[0-9]{1,18}$'
                        THEN substring(change_id FROM ':([^:]*)$')::bigint
                        ELSE 9223372036854775807 END AS local_id
            FROM (SELECT change_id FROM starling_hub.log WHERE kind IN ('change', 'merge')
                  UNION ALL SELECT change_id FROM starling_hub.decisions) AS ids
            UNION ALL
            SELECT origin, max_local_id FROM starling_hub.pruned_changes
        ) AS stored
        WHERE origin IS NOT NULL
        GROUP BY origin;

        """#
}
