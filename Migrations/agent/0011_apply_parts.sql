-- Parallel apply (README "Apply"): a pulled page's key-disjoint parts commit on their own connections before the
-- transaction that moves the cursor past the page. Each part records here, in its own transaction, the seqs it
-- applied (or decided to skip) above the cursor `after`, so a crash between the parts and the cursor move neither
-- loses nor repeats an entry: the agent skips these seqs when it pulls from `after` again. The cursor move deletes
-- the rows it covers. One row per part, no index: a handful of rows at any time.
CREATE TABLE starling.apply_parts (
    after bigint NOT NULL,
    max_seq bigint NOT NULL,
    seqs bigint[] NOT NULL
);
