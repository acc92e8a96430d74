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
