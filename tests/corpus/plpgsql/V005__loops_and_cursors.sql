CREATE OR REPLACE FUNCTION sum_array(p_values integer[]) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT
AS $$
DECLARE
    v_total bigint := 0;
    v_item  integer;
    i       integer;
    cur CURSOR FOR SELECT generate_series(1, 3) AS n;
    v_n     integer;
    v_rows  integer;
BEGIN
    FOREACH v_item IN ARRAY p_values LOOP
        v_total := v_total + v_item;
    END LOOP;
    <<outer>>
    FOR i IN REVERSE 10..1 BY 2 LOOP
        EXIT outer WHEN i < 3;
        WHILE v_total > 1000000 LOOP
            v_total := v_total / 2;
        END LOOP;
    END LOOP outer;
    OPEN cur;
    LOOP
        FETCH cur INTO v_n;
        EXIT WHEN NOT FOUND;
        v_total := v_total + CASE WHEN v_n % 2 = 0 THEN v_n ELSE 0 END;
    END LOOP;
    CLOSE cur;
    CASE
        WHEN v_total < 0 THEN RAISE EXCEPTION 'negative';
        ELSE NULL;
    END CASE;
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    ASSERT v_total >= 0, 'total must not be negative';
    RETURN v_total;
END;
$$;
