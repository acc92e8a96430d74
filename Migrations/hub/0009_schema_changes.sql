-- Starling hub schema, version 9: schema changes as log entries (README "Schema changes").
--
-- A schema change of a synced table is sequenced like a change: one log entry of kind `schema` (its `row` is the
-- change: statement, column actions, the shape after it and its version; its key is the empty object) that every
-- region applies at its place in the order. `table_shapes` holds the shape in force and its version; every
-- version stays in `schema_changes`, with the columns before it, so a region that has not applied a change yet
-- still registers (its shape is an earlier version) and its images are read with that version's names.
-- The check's name depends on the history of the table (0003 renamed the first log away), so it is found.
DO $$
DECLARE
    name text;
BEGIN
    FOR name IN
        SELECT c.conname FROM pg_constraint c
        WHERE c.conrelid = 'starling_hub.log'::regclass AND c.contype = 'c'
          AND pg_get_constraintdef(c.oid) LIKE '%kind%'
    LOOP
        EXECUTE format('ALTER TABLE starling_hub.log DROP CONSTRAINT %I', name);
    END LOOP;
END
$$;
ALTER TABLE starling_hub.log ADD CONSTRAINT log_kind
    CHECK (kind IN ('change', 'merge', 'resolution', 'correction', 'repair', 'schema'));

ALTER TABLE starling_hub.table_shapes ADD COLUMN version integer NOT NULL DEFAULT 1;
-- How an image written under any earlier version reads under this one (ImageRules: renamed and dropped columns,
-- added columns' default images, columns whose image became text): applied to every pushed image before it is
-- decided on. The heads are rewritten with each change's rules when it is sequenced.
ALTER TABLE starling_hub.table_shapes ADD COLUMN rules text NOT NULL DEFAULT '{}';

CREATE TABLE starling_hub.schema_changes (
    table_name       text COLLATE "C" NOT NULL,
    version          integer NOT NULL CHECK (version >= 2),
    seq              bigint NOT NULL UNIQUE,
    origin           text NOT NULL,
    change_id        text COLLATE "C" NOT NULL UNIQUE,
    statement        text NOT NULL,
    actions          text NOT NULL,
    previous_columns text NOT NULL,
    columns          text NOT NULL,
    applied_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_name, version)
);
