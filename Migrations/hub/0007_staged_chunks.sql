-- Starling hub schema, version 7: chunks of origin transactions too large for one push, staged until the last
-- chunk arrives (README "Large transactions"). A chunk is identified by its region, its transaction and the
-- ordinal of its first change in the transaction (`first_index`), so a re-sent chunk (same key) is stored once
-- and a transaction split differently after an agent restart still assembles (overlaps are read once). The
-- changes are the chunk's validated JSON array. Nothing here is visible to pulls: the sequencer reads a staged
-- transaction when its last chunk arrives, logs it in one batch (contiguous seqs) and deletes its chunks in the
-- same transaction.

CREATE TABLE starling_hub.staged_chunks (
    origin      text COLLATE "C" NOT NULL,
    tx          text COLLATE "C" NOT NULL,
    first_index integer NOT NULL CHECK (first_index >= 0),
    changes     integer NOT NULL CHECK (changes > 0),
    body        text NOT NULL,
    staged_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin, tx, first_index)
);
