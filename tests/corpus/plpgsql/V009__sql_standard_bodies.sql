CREATE FUNCTION account_balance(p_id bigint) RETURNS numeric
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT balance FROM accounts WHERE id = p_id;
END;

CREATE FUNCTION is_positive(numeric) RETURNS boolean LANGUAGE sql IMMUTABLE RETURN $1 > 0;
