-- Hand-written PL/pgSQL in the shapes migrations use; every file must parse without findings.
CREATE TABLE audit_log (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name  text NOT NULL,
    action      text NOT NULL,
    old_row     jsonb,
    new_row     jsonb,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE FUNCTION audit_row() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $function$
DECLARE
    v_old jsonb;
    v_new jsonb;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        v_old := to_jsonb(OLD);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        v_new := to_jsonb(NEW);
    END IF;
    INSERT INTO audit_log (table_name, action, old_row, new_row)
    VALUES (TG_TABLE_NAME, TG_OP, v_old, v_new);
    RETURN COALESCE(NEW, OLD);
END;
$function$;

CREATE TRIGGER audit_log_self AFTER INSERT OR UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_row();
