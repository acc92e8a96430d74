-- Pulled entries of an origin transaction too large to hold in memory while its pages arrive (README "Large
-- transactions"): kept here (by seq) until the apply transaction that applies the whole origin transaction reads
-- them back a slice at a time and deletes them. Never visible as user rows; emptied when the agent starts.
CREATE TABLE starling.spilled_entries (
    seq bigint PRIMARY KEY,
    entry text NOT NULL
);
