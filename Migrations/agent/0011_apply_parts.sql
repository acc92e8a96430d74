-- Parallel apply (README "Apply"): a pulled page's key-disjoint parts commit on their own connections before the
-- transaction that moves the cursor past the page. Each part records here, in its own transaction, the seqs it
-- applied (or decided to skip) above the cursor `after`, so a crash between the parts and the cursor move neither
-- loses nor repeats an entry: the agent skips these seqs when it pulls from `after` again. The cursor move deletes
-- the rows it covers. One row per part, a handful at any time; keyed by the part's largest seq (a seq is in one
-- record at most: a page pulled again skips the recorded ones), so a FOR ALL TABLES publication can carry it.
CREATE TABLE starling.apply_parts (
    max_seq bigint PRIMARY KEY,
    after bigint NOT NULL,
    seqs bigint[] NOT NULL
);
