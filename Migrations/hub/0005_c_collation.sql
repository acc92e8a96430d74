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
