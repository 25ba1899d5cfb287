CREATE FUNCTION set_updated_at() RETURNS trigger AS '
BEGIN
    NEW.updated_at := now();  -- quoted body, ''old style''
    RETURN NEW;
END;
' LANGUAGE plpgsql;
