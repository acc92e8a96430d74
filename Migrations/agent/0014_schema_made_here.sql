-- A schema change made in this region by hand that the hub answered with a version of its log (README "Schema
-- changes": a rolling migration, the same statement run region after region): the newest such seq per table. The
-- log's entry at or below it needs nothing here, whichever region it came from first: this table went through it
-- (the hub accepts a change made here only when the table's shape here is that version's). Without it, a region that
-- ran the next statement before it applied the log's entry of the previous one found a third shape and stopped.
ALTER TABLE starling.synced_tables ADD COLUMN made_here_through bigint NOT NULL DEFAULT 0;
