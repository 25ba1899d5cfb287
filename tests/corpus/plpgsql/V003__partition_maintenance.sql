CREATE OR REPLACE FUNCTION create_month_partition(p_parent regclass, p_month date)
RETURNS text
LANGUAGE plpgsql
AS $$
DECLARE
    v_from      date := date_trunc('month', p_month)::date;
    v_to        date := (date_trunc('month', p_month) + interval '1 month')::date;
    v_name      text := format('%s_%s', p_parent::text, to_char(v_from, 'YYYYMM'));
    v_exists    boolean;
BEGIN
    SELECT EXISTS (SELECT 1 FROM pg_class WHERE relname = v_name) INTO v_exists;
    IF v_exists THEN
        RAISE NOTICE 'partition % already exists', v_name;
        RETURN v_name;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                   v_name, p_parent, v_from, v_to);
    RETURN v_name;
EXCEPTION
    WHEN duplicate_table THEN
        RAISE WARNING 'concurrent creation of %: %', v_name, SQLERRM;
        RETURN v_name;
    WHEN OTHERS THEN
        RAISE EXCEPTION 'could not create partition %', v_name
            USING ERRCODE = 'P0001', HINT = 'check the parent table', DETAIL = SQLSTATE;
END;
$$;
