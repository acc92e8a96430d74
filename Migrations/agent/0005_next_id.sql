-- Globally unique ids for inserts: starling.next_id(), a snowflake-style bigint
--
--   bit 63: 0 (positive) | bits 62-22: milliseconds since 2026-01-01 UTC (41 bits, until 2095)
--   | bits 21-12: the region's id (10 bits, 0-1023) | bits 11-0: a local sequence, modulo 4096
--
-- The region's id is hub.yaml's regions[].id, sent in GET /v1/config and stored here by the agent at every
-- start: it is the operator's, written once beside the region's name, so reordering, adding or removing
-- regions in hub.yaml never moves it (a position in the list would). Ids from different regions differ in
-- their region bits; ids of one region differ in time or, within one millisecond, in the sequence bits.
-- Unique as long as the region's clock does not step back and it takes fewer than 4096 ids in one
-- millisecond (4 million a second); ordered by time to the millisecond across regions (clock skew aside).
ALTER TABLE starling.state ADD COLUMN region_id integer CHECK (region_id BETWEEN 0 AND 1023);

CREATE SEQUENCE starling.next_id_seq;

-- SECURITY DEFINER (with a fixed search_path): the application's role needs only USAGE on schema starling,
-- not rights on starling.state or the sequence.
CREATE FUNCTION starling.next_id() RETURNS bigint
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    region integer;
    millis bigint;
BEGIN
    SELECT region_id INTO region FROM starling.state;
    IF region IS NULL THEN
        RAISE EXCEPTION 'starling.next_id(): this region has no id'
            USING HINT = 'give the region an id in hub.yaml (regions[].id, 0-1023); its agent stores it when it starts',
                  ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    millis := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - 1767225600000;
    RETURN (millis << 22) | (region::bigint << 12) | (nextval('starling.next_id_seq') & 4095);
END
$$;

COMMENT ON FUNCTION starling.next_id() IS
    'A globally unique bigint: milliseconds since 2026-01-01 (41 bits), region id (10), local sequence (12)';
