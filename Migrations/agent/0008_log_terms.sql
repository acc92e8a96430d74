-- What this region knows of the hub's log history (README "Restoring the hub's store").
--
-- known_seq: the newest seq this region learned of (its pull cursor, or the seq of a verdict on its own change);
-- log_terms: the hub's terms this region crossed, oldest first ([{"id","first"},…], at most 32). Pulls and
-- pushes name the term holding known_seq; a hub whose store was restored to an earlier point answers 409
-- `log_diverged`, and the agent rewinds to where the histories part and re-asserts what the hub lost.
ALTER TABLE starling.state ADD COLUMN known_seq bigint NOT NULL DEFAULT 0;
ALTER TABLE starling.state ADD COLUMN log_terms jsonb NOT NULL DEFAULT '[]';
-- An outbox row re-asserting a row image after such a rewind: how far into the lost history the image is.
ALTER TABLE starling.outbox ADD COLUMN reassert bigint;
