CREATE TABLE IF NOT EXISTS accounts (id bigint PRIMARY KEY, balance numeric NOT NULL DEFAULT 0, owner text);

CREATE OR REPLACE FUNCTION accounts_over(p_limit numeric, OUT account_id bigint, OUT balance numeric)
RETURNS SETOF record
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    r accounts%ROWTYPE;
    v_owner accounts.owner%TYPE;
BEGIN
    FOR r IN SELECT * FROM accounts WHERE accounts.balance > p_limit ORDER BY id LOOP
        account_id := r.id;
        balance := r.balance;
        v_owner := r.owner;
        CONTINUE WHEN v_owner IS NULL;
        RETURN NEXT;
    END LOOP;
    RETURN;
END;
$$;

CREATE OR REPLACE FUNCTION top_accounts(p_n integer DEFAULT 10)
RETURNS TABLE (id bigint, balance numeric)
LANGUAGE plpgsql
AS $$
BEGIN
    RETURN QUERY
        SELECT a.id, a.balance FROM accounts AS a ORDER BY a.balance DESC LIMIT p_n;
    IF NOT FOUND THEN
        RAISE DEBUG 'no accounts';
    END IF;
END;
$$;
