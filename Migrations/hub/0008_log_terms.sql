-- Starling hub schema, version 8: the log's terms and re-asserted keys (README "Restoring the hub's store").
--
-- A term is opened each time a hub becomes the sequencer: a random id and the first seq it will assign. A
-- region sends the id of the term holding the newest seq it knows; a store restored to an earlier point has
-- lost that term (or holds that seq under a term opened after the restore), so the hub answers 409
-- `log_diverged` instead of handing the region entries under seqs it already saw for other changes.
CREATE TABLE starling_hub.log_terms (
    number     bigserial PRIMARY KEY,
    id         text COLLATE "C" NOT NULL UNIQUE,
    first_seq  bigint NOT NULL CHECK (first_seq >= 1),
    opened_at  timestamptz NOT NULL DEFAULT now()
);
-- The log written before terms existed is one term.
INSERT INTO starling_hub.log_terms (id, first_seq) VALUES (gen_random_uuid()::text, 1);

-- Keys whose head was set by a region re-asserting an image from log history the hub lost (after a restore):
-- `priority` is how far into the lost history the image is (the seq the region knew it at); a re-assertion with
-- a lower priority does not replace it. Valid while the head's seq is still `seq`.
CREATE TABLE starling_hub.reasserted (
    table_name text COLLATE "C" NOT NULL,
    key        text COLLATE "C" NOT NULL,
    seq        bigint NOT NULL,
    priority   bigint NOT NULL,
    PRIMARY KEY (table_name, key)
);
