"""The tests' own databases (tests/conftest.py): a database a test leaves behind is recycled for the
next test only when it is then indistinguishable from a new copy of template0; otherwise dropped."""

from __future__ import annotations

import uuid

import psycopg2
import pytest

from tests.conftest import _drops, _fingerprint, _with_database, temporary_database
from tests.database_faults import rows
from tests.helpers import available_extension
from tests.schema_snapshot import schema_snapshot

# what tests leave: schemas, enums, tables with partial indexes, functions and triggers, a DO block
# backfill, an event trigger, views, a domain, an aggregate, statistics, a policy, a
# publication, a foreign data wrapper, a large object, settings and a comment on the database (and
# an extension the server ships)
LEFT_BEHIND = """
CREATE SCHEMA billing;
CREATE TYPE billing.invoice_status AS ENUM ('draft', 'open', 'paid', 'void');
CREATE TABLE billing.invoices (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status billing.invoice_status NOT NULL DEFAULT 'draft',
    total  numeric(12, 2) NOT NULL CHECK (total >= 0)
);
CREATE INDEX invoices_open_idx ON billing.invoices (id) WHERE status = 'open';
CREATE TABLE public.accounts (id serial PRIMARY KEY, email text NOT NULL UNIQUE, balance int);
CREATE TABLE public.events (id bigint, at timestamptz) PARTITION BY RANGE (at);
CREATE TABLE public.events_2026 PARTITION OF public.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
CREATE DOMAIN public.positive AS int CHECK (VALUE > 0);
CREATE TYPE public.money_pair AS (amount numeric, currency char(3));
CREATE FUNCTION public.touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.balance := coalesce(NEW.balance, 0); RETURN NEW; END $$;
CREATE TRIGGER accounts_touch BEFORE INSERT ON public.accounts FOR EACH ROW EXECUTE FUNCTION public.touch();
CREATE AGGREGATE public.total_of(int) (SFUNC = int4pl, STYPE = int, INITCOND = '0');
CREATE VIEW public.rich AS SELECT email FROM public.accounts WHERE balance > 1000;
CREATE MATERIALIZED VIEW billing.open_totals AS SELECT sum(total) FROM billing.invoices WHERE status = 'open';
CREATE STATISTICS public.accounts_stats ON email, balance FROM public.accounts;
ALTER TABLE public.accounts ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON public.accounts USING (email = current_user);
INSERT INTO public.accounts (email) SELECT 'user' || g || '@example.com' FROM generate_series(1, 50) g;
DO $$
BEGIN
    UPDATE public.accounts SET balance = id * 100 WHERE balance = 0;
END $$;
CREATE FUNCTION public.no_drops() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'no DROP here'; END $$;
CREATE EVENT TRIGGER no_drops ON sql_drop EXECUTE FUNCTION public.no_drops();
CREATE PUBLICATION everything FOR ALL TABLES;
CREATE FOREIGN DATA WRAPPER nowhere;
SELECT lo_from_bytea(0, 'a large object');
COMMENT ON TABLE public.accounts IS 'who pays';
"""


def _databases_like(admin_url: str, pattern: str) -> list[str]:
    return [
        r[0] for r in rows(admin_url, "SELECT datname FROM pg_database WHERE datname LIKE %s", (pattern,))
    ]


def test_a_recycled_database_is_what_a_new_one_is(pg_admin_url: str) -> None:
    new = f"sg_new_{uuid.uuid4().hex[:12]}"
    rows(pg_admin_url, f'CREATE DATABASE "{new}" TEMPLATE template0')
    try:
        expected_fingerprint = _fingerprint(_with_database(pg_admin_url, new))
        expected_snapshot = schema_snapshot(_with_database(pg_admin_url, new))
    finally:
        _drops._drop(pg_admin_url, new)
    with temporary_database(pg_admin_url, template="template0") as url:
        name = url.rsplit("/", 1)[1]
        rows(url, LEFT_BEHIND)
        rows(url, f'CREATE EXTENSION "{available_extension(url)}"')
        rows(pg_admin_url, f"ALTER DATABASE \"{name}\" SET work_mem = '7MB'")
        rows(pg_admin_url, f"ALTER ROLE CURRENT_USER IN DATABASE \"{name}\" SET statement_timeout = '3s'")
        rows(pg_admin_url, f"COMMENT ON DATABASE \"{name}\" IS 'a test was here'")
        left_open = psycopg2.connect(url)  # a session the test never closed, with a temporary table
        with left_open.cursor() as cur:
            cur.execute("CREATE TEMPORARY TABLE scratch (id int)")
        left_open.commit()
        assert _fingerprint(url) != expected_fingerprint

        kept = _drops._reset(pg_admin_url, name)

        assert kept is not None and kept.startswith("sg_ready_")
        with pytest.raises(psycopg2.OperationalError), left_open.cursor() as cur:  # the reset ended it
            cur.execute("SELECT 1")
        recycled = _with_database(pg_admin_url, kept)
        try:
            assert rows(
                pg_admin_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (kept,)
            ) == [(0,)]
            assert _fingerprint(recycled) == expected_fingerprint
            assert schema_snapshot(recycled) == expected_snapshot
            conn = psycopg2.connect(recycled)
            try:
                with conn.cursor() as cur:
                    cur.execute("SHOW work_mem")
                    assert cur.fetchone() != ("7MB",)
                    cur.execute("SHOW statement_timeout")
                    assert cur.fetchone() == ("0",)
                    cur.execute(
                        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                        (kept,),
                    )
                    assert cur.fetchone() == (None,)
                    cur.execute("SELECT nspname FROM pg_namespace ORDER BY 1")
                    assert [r[0] for r in cur.fetchall()] == [
                        "information_schema",
                        "pg_catalog",
                        "pg_toast",
                        "public",
                    ]
                    cur.execute("SELECT count(*) FROM pg_largeobject_metadata")
                    assert cur.fetchone() == (0,)
                    cur.execute("CREATE TABLE public.accounts (id int)")  # the names are free again
            finally:
                conn.close()
        finally:
            _drops._drop(pg_admin_url, kept)
            left_open.close()


@pytest.mark.parametrize(
    "change",
    [
        # public dropped and made again: its initial privileges (pg_init_privs) are gone
        "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
        "GRANT CREATE ON SCHEMA public TO PUBLIC",
        "GRANT SELECT ON pg_catalog.pg_authid TO PUBLIC",
        "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO PUBLIC",
    ],
)
def test_a_database_the_reset_cannot_give_back_as_new_is_dropped(pg_admin_url: str, change: str) -> None:
    with temporary_database(pg_admin_url, template="template0") as url:
        name = url.rsplit("/", 1)[1]
        rows(url, change)
        assert _drops._reset(pg_admin_url, name) is None
        assert _databases_like(pg_admin_url, name) == []  # dropped, under the name it was given


def test_a_database_that_refuses_connections_is_dropped(pg_admin_url: str) -> None:
    with temporary_database(pg_admin_url, template="template0") as url:
        name = url.rsplit("/", 1)[1]
        rows(pg_admin_url, f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        assert _drops._reset(pg_admin_url, name) is None
        assert _databases_like(pg_admin_url, name) == []  # dropped (after its rename)
