-- An apply sent in one round trip (README "Apply"): BEGIN, the cursor's move, the table locks, the writes and the
-- COMMIT go to the server in one pipeline, built from what the agent last read of the catalog. Each of its checks
-- (the cursor is where the page starts, the catalog is what the agent read, no entry is held, a table's batch wrote
-- every row) calls this function, which raises SQLSTATE SL001 when the check fails: the server then skips the rest
-- of the pipeline, COMMIT included, nothing of the apply remains, and the agent applies the page again the way that
-- reads everything first. NULL fails.
CREATE FUNCTION starling.refuse_unless(ok boolean, reason text) RETURNS boolean LANGUAGE plpgsql
    SET search_path = pg_catalog AS $$
BEGIN
    IF ok IS NOT TRUE THEN
        RAISE EXCEPTION 'one-trip apply refused: %', reason USING ERRCODE = 'SL001';
    END IF;
    RETURN true;
END
$$;
