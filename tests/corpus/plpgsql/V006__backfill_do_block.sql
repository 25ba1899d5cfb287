-- A one-off data fix in a DO block (runs inside the migration's transaction).
DO $backfill$
DECLARE
    v_count integer;
    v_id    bigint;
BEGIN
    UPDATE accounts SET owner = 'unknown' WHERE owner IS NULL;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    RAISE NOTICE 'backfilled % rows', v_count;
    SELECT id INTO v_id FROM accounts ORDER BY id LIMIT 1;
    PERFORM pg_notify('accounts', v_id::text);
    BEGIN
        INSERT INTO accounts (id, balance) VALUES (-1, 0);
    EXCEPTION WHEN unique_violation THEN
        NULL;
    END;
END
$backfill$;
