-- A procedure that commits between batches: creating it is transactional; calling it is not.
CREATE OR REPLACE PROCEDURE archive_in_batches(p_batch integer DEFAULT 1000)
LANGUAGE plpgsql
AS $$
DECLARE
    v_done integer;
BEGIN
    LOOP
        DELETE FROM audit_log
        WHERE id IN (SELECT id FROM audit_log WHERE changed_at < now() - interval '1 year' LIMIT p_batch);
        GET DIAGNOSTICS v_done = ROW_COUNT;
        EXIT WHEN v_done = 0;
        COMMIT;
    END LOOP;
END;
$$;

GRANT EXECUTE ON PROCEDURE archive_in_batches(integer) TO PUBLIC;
