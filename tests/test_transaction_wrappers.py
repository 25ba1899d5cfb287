"""Files that other tools run: a whole file wrapped in ``BEGIN; ... COMMIT;`` (golang-migrate, dbmate)
and a file of several statements that run without a transaction (Flyway's CREATE INDEX CONCURRENTLY
files), validated and then applied to a real PostgreSQL; psql running the same files is the
reference for the schema they build."""

from __future__ import annotations

from pathlib import Path

import psycopg2
import pytest

from executor.apply import ApplyHooks, apply, repair
from executor.connection import connect
from executor.errors import MigrationRefused, SqlError
from executor.history import read_history
from executor.settings import ExecutorSettings
from tests.conftest import temporary_database
from tests.executor_worker import bundle_of
from tests.helpers import fetch_value
from tests.schema_snapshot import psql_run, schema_snapshot
from validator.config import ValidatorConfig
from validator.safety import check_safety
from validator.structural import bundle_from_directory, check_structure

FAST = ExecutorSettings(lock_retry_backoff_s=0.05, advisory_lock_wait_s=5)

# A history the way a team using golang-migrate writes it (000001_create_accounts.up.sql, ...), here
# under Flyway names: most files wrapped in BEGIN/COMMIT in one spelling or another, enums, a trigger
# function, a backfill checked by a DO block, an enum value added later, a BEGIN ATOMIC function, an
# index built CONCURRENTLY on its own and a Flyway-style file of several CONCURRENTLY statements.
HISTORY = {
    "V1__create_accounts.sql": """-- 000001_create_accounts.up.sql
BEGIN;

CREATE TABLE accounts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX accounts_email_key ON accounts (lower(email));

-- the account the billing jobs run as
INSERT INTO accounts (email) VALUES ('billing-system@example.com');

COMMIT;
""",
    "V2__create_plans.sql": """-- 000002_create_plans.up.sql
begin;

create type plan_interval as enum ('month', 'year');

create table plans (
    id              bigint primary key,
    name            text not null unique,
    interval        plan_interval not null,
    price_cents     integer not null check (price_cents >= 0)
);

insert into plans (id, name, interval, price_cents) values
    (1, 'starter', 'month', 900),
    (2, 'team', 'month', 4900),
    (3, 'team-yearly', 'year', 49000);

commit;
""",
    "V3__create_subscriptions.sql": """-- 000003_create_subscriptions.up.sql
START TRANSACTION;

CREATE TYPE subscription_status AS ENUM ('trialing', 'active', 'past_due', 'canceled');

CREATE TABLE subscriptions (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   bigint NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    plan_id      bigint NOT NULL REFERENCES plans (id),
    status       subscription_status NOT NULL DEFAULT 'trialing',
    canceled_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

END;
""",
    "V4__subscriptions_updated_at.sql": """-- 000004_subscriptions_updated_at.up.sql
BEGIN;

CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER subscriptions_set_updated_at
    BEFORE UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

COMMIT;
""",
    "V5__create_invoices.sql": """-- 000005_create_invoices.up.sql (this one was written without BEGIN/COMMIT)
CREATE TABLE invoices (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subscription_id  bigint NOT NULL REFERENCES subscriptions (id),
    number           text NOT NULL UNIQUE,
    issued_at        timestamptz NOT NULL DEFAULT now(),
    paid_at          timestamptz
);
CREATE INDEX invoices_unpaid_idx ON invoices (issued_at) WHERE paid_at IS NULL;
""",
    "V6__add_subscription_status_paused.sql": """-- 000006_add_subscription_status_paused.up.sql
BEGIN;
ALTER TYPE subscription_status ADD VALUE IF NOT EXISTS 'paused' AFTER 'active';
COMMIT;
""",
    "V7__backfill_account_display_name.sql": """-- 000007_backfill_account_display_name.up.sql
BEGIN TRANSACTION;

ALTER TABLE accounts ADD COLUMN display_name text;

UPDATE accounts
   SET display_name = initcap(replace(split_part(email, '@', 1), '-', ' '))
 WHERE display_name IS NULL;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM accounts WHERE display_name IS NULL) THEN
        RAISE EXCEPTION 'backfill left accounts without a display name';
    END IF;
END
$$;

ALTER TABLE accounts ALTER COLUMN display_name SET NOT NULL;

COMMIT TRANSACTION;
""",
    "V8__index_subscriptions_account.sql": """-- 000008_index_subscriptions_account.up.sql
-- golang-migrate runs a file without BEGIN/COMMIT as is: CONCURRENTLY works
CREATE INDEX CONCURRENTLY IF NOT EXISTS subscriptions_account_id_idx ON subscriptions (account_id);
""",
    "V9__create_invoice_lines.sql": """/* 000009_create_invoice_lines.up.sql */
begin work;

create table invoice_lines (
    invoice_id        bigint not null references invoices (id) on delete cascade,
    position          integer not null,
    description       text not null,
    quantity          integer not null default 1 check (quantity > 0),
    unit_price_cents  integer not null,
    primary key (invoice_id, position)
);

create function invoice_total_cents(invoice bigint) returns bigint
language sql stable
begin atomic
    select coalesce(sum(quantity::bigint * unit_price_cents), 0)
      from invoice_lines
     where invoice_id = invoice;
end;

commit work;
-- end of file
""",
    "V10__rebuild_subscription_indexes.sql": """-- Flyway: CONCURRENTLY cannot run in a transaction, so this file runs without one
CREATE INDEX CONCURRENTLY IF NOT EXISTS subscriptions_plan_id_idx ON subscriptions (plan_id);
CREATE INDEX CONCURRENTLY IF NOT EXISTS subscriptions_status_idx ON subscriptions (status)
    WHERE status <> 'canceled';
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS invoices_number_lower_key ON invoices (lower(number));
CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_subscription_id_idx ON invoices (subscription_id);
DROP INDEX CONCURRENTLY IF EXISTS subscriptions_account_id_idx;
CREATE INDEX CONCURRENTLY IF NOT EXISTS subscriptions_account_id_status_idx
    ON subscriptions (account_id, status);
""",
    "R__active_subscriptions.sql": """BEGIN;
CREATE OR REPLACE VIEW active_subscriptions AS
SELECT s.id, a.email, p.name AS plan, s.status
  FROM subscriptions s
  JOIN accounts a ON a.id = s.account_id
  JOIN plans p ON p.id = s.plan_id
 WHERE s.status IN ('trialing', 'active', 'paused');
COMMIT;
""",
}
NON_TRANSACTIONAL = ["V8__index_subscriptions_account.sql", "V10__rebuild_subscription_indexes.sql"]


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


def config_for(directory: Path) -> ValidatorConfig:
    return ValidatorConfig(project_root=directory, migrations=directory)


def query(url: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        conn.close()


def history(url: str) -> list[tuple[str, bool]]:
    conn = connect(url)
    try:
        return [(r.script, r.success) for r in read_history(conn, FAST)]
    finally:
        conn.close()


# -- a whole history ------------------------------------------------------------------------------


def test_a_golang_migrate_style_history_validates_and_applies_like_psql(
    tmp_path: Path, fresh_db: str, pg_admin_url: str
) -> None:
    directory = write(tmp_path / "migrations", HISTORY)
    # validation: no naming, order or syntax finding; the wrappers recognised; the right files
    # run without a transaction
    result = check_structure(config_for(directory))
    assert result.findings == []
    wrapped = sorted(p.rel for p in result.parsed if p.wrapper is not None)
    assert wrapped == sorted(set(HISTORY) - {"V5__create_invoices.sql", *NON_TRANSACTIONAL})
    bundle = bundle_from_directory(config_for(directory))
    assert [e.file for e in bundle.manifest.migrations if not e.transactional] == NON_TRANSACTIONAL
    # every statement of the CONCURRENTLY file is re-runnable: no prefer-robust-stmts warning
    safety = check_safety(result.parsed, config_for(directory))
    assert [f for f in safety.findings if f.rule == "prefer-robust-stmts"] == []

    # applied by schemagate
    conn = connect(fresh_db)
    try:
        applied = apply(conn, bundle, FAST)
    finally:
        conn.close()
    assert [a.entry.file for a in applied.applied] == list(HISTORY)
    notices = [n for a in applied.applied for n in a.notices]
    assert not any("transaction in progress" in n for n in notices), notices  # no BEGIN sent twice
    assert history(fresh_db) == [(name, True) for name in HISTORY]

    # the same schema and data as psql running the files in order
    accounts = "SELECT email, display_name FROM accounts ORDER BY id"
    with temporary_database(pg_admin_url, prefix="sg_psql") as reference:
        psql_run(reference, [directory / name for name in HISTORY])
        expected = schema_snapshot(reference, rows_of=("public.plans",))
        expected_accounts = query(reference, accounts)
    actual = schema_snapshot(fresh_db, rows_of=("public.plans",))
    assert actual == expected
    assert (
        query(fresh_db, accounts) == expected_accounts == [("billing-system@example.com", "Billing System")]
    )
    assert ("public", "subscription_status", "{trialing,active,paused,past_due,canceled}") in actual["enums"]
    assert all(valid for *_, valid in actual["indexes"])
    assert "subscriptions_account_id_idx" not in {name for _, name, _, _ in actual["indexes"]}


# -- the wrapper is replaced by the executor's transaction ---------------------------------------


def test_the_history_row_commits_with_the_wrapped_migration(fresh_db: str) -> None:
    """Were the file's own COMMIT sent, the table would be committed before the history row; a veto
    just before the executor's COMMIT shows that both are still one transaction."""
    files = {"V1__create_accounts.sql": HISTORY["V1__create_accounts.sql"]}
    vetoed: list[str] = []

    def veto(cur, entry) -> None:
        cur.execute("SELECT to_regclass('accounts') IS NOT NULL, txid_current_if_assigned() IS NOT NULL")
        vetoed.append(str(cur.fetchone()))
        raise RuntimeError("the approver pulled the plug")

    conn = connect(fresh_db)
    try:
        with pytest.raises(RuntimeError):
            apply(conn, bundle_of(files), FAST, hooks=ApplyHooks(before_commit=veto))
        assert vetoed == ["(True, True)"]  # inside an open transaction that created the table
        assert query(fresh_db, "SELECT to_regclass('accounts')") == [(None,)]
        assert history(fresh_db) == []
        # without the veto it applies, once
        assert len(apply(conn, bundle_of(files), FAST).applied) == 1
    finally:
        conn.close()
    assert history(fresh_db) == [("V1__create_accounts.sql", True)]
    assert query(fresh_db, "SELECT email FROM accounts") == [("billing-system@example.com",)]


def test_a_wrapped_migration_failing_part_way_leaves_no_trace(fresh_db: str) -> None:
    files = {
        "V1__create_accounts.sql": HISTORY["V1__create_accounts.sql"],
        # the backfill cannot name this account, so the DO block (the 3rd statement) refuses
        "V2__backfill.sql": HISTORY["V7__backfill_account_display_name.sql"].replace(
            "initcap(replace(split_part(email, '@', 1), '-', ' '))",
            "NULLIF(split_part(email, '@', 1), 'billing-system')",
        ),
    }
    conn = connect(fresh_db)
    try:
        with pytest.raises(SqlError) as caught:
            apply(conn, bundle_of(files), FAST)
    finally:
        conn.close()
    error = caught.value
    assert error.file == "V2__backfill.sql" and error.line == 13  # the RAISE inside the DO block
    assert "backfill left accounts without a display name" in error.message
    assert "rolled back" in error.message
    assert query(fresh_db, "SELECT count(*) FROM pg_attribute WHERE attname = 'display_name'") == [(0,)]
    assert history(fresh_db) == [("V1__create_accounts.sql", True)]


# -- several statements without a transaction ----------------------------------------------------

ORDERS = """CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL,
    number text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO orders (customer_id, number)
SELECT g % 40, 'ORD-' || g FROM generate_series(1, 500) g;
CREATE INDEX orders_customer_idx_old ON orders (customer_id);
"""


def indexes(url: str) -> dict[str, bool]:
    rows = query(
        url,
        "SELECT c.relname, x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
        "WHERE x.indrelid = 'orders'::regclass AND NOT x.indisprimary",
    )
    return dict(rows)


def test_a_flyway_file_of_six_concurrently_statements_applies_each_on_its_own(
    tmp_path: Path, fresh_db: str
) -> None:
    directory = write(
        tmp_path / "migrations",
        {
            "V1__create_orders.sql": ORDERS,
            "V2__rebuild_order_indexes.sql": (
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);\n"
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created_at_idx ON orders (created_at DESC);\n"
                "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS orders_number_key ON orders (number);\n"
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_recent_idx ON orders (customer_id)\n"
                "    WHERE created_at > '2024-01-01';\n"
                "DROP INDEX CONCURRENTLY IF EXISTS orders_customer_idx_old;\n"
                "DROP INDEX CONCURRENTLY IF EXISTS orders_created_idx_old;\n"
            ),
        },
    )
    result = check_structure(config_for(directory))
    assert result.findings == []
    bundle = bundle_from_directory(config_for(directory))
    assert [e.transactional for e in bundle.manifest.migrations] == [True, False]
    conn = connect(fresh_db)
    try:
        apply(conn, bundle, FAST)
    finally:
        conn.close()
    assert indexes(fresh_db) == {
        "orders_customer_id_idx": True,
        "orders_created_at_idx": True,
        "orders_number_key": True,
        "orders_recent_idx": True,
    }
    assert history(fresh_db) == [("V1__create_orders.sql", True), ("V2__rebuild_order_indexes.sql", True)]


def test_a_failure_in_the_third_statement_leaves_a_failed_row_and_a_rerun_finishes(fresh_db: str) -> None:
    files = {
        "V1__create_orders.sql": ORDERS + "INSERT INTO orders (customer_id, number) VALUES (1, 'ORD-7');\n",
        "V2__order_indexes.sql": (
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created_at_idx ON orders (created_at);\n"
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS orders_number_key ON orders (number);\n"
            "DROP INDEX CONCURRENTLY IF EXISTS orders_customer_idx_old;\n"
        ),
    }
    bundle = bundle_of(files, non_transactional=("V2__order_indexes.sql",))
    conn = connect(fresh_db)
    try:
        with pytest.raises(SqlError) as caught:
            apply(conn, bundle, FAST)
        error = caught.value
        assert (error.file, error.line, error.context["sqlstate"]) == ("V2__order_indexes.sql", 3, "23505")
        assert error.context["partial"] is True and "schemagate repair" in (error.remedy or "")
        # the first two statements stayed, the third left no valid index, the fourth never ran
        built = indexes(fresh_db)
        assert built["orders_customer_id_idx"] and built["orders_created_at_idx"]
        assert not built.get("orders_number_key", False)
        assert built["orders_customer_idx_old"]
        assert history(fresh_db) == [("V1__create_orders.sql", True), ("V2__order_indexes.sql", False)]
        with pytest.raises(MigrationRefused) as refused:
            apply(conn, bundle, FAST)
        assert refused.value.rule == "failed-migration"

        # a person removes the duplicate and the INVALID index, repairs, and the re-run finishes
        with conn.cursor() as cur:
            cur.execute("DELETE FROM orders WHERE number = 'ORD-7' AND id > 500")
            cur.execute("DROP INDEX IF EXISTS orders_number_key")
        conn.commit()
        repair(conn, bundle, FAST)
        assert [a.entry.file for a in apply(conn, bundle, FAST).applied] == ["V2__order_indexes.sql"]
    finally:
        conn.close()
    assert indexes(fresh_db) == {
        "orders_customer_id_idx": True,
        "orders_created_at_idx": True,
        "orders_number_key": True,
    }
    assert history(fresh_db) == [("V1__create_orders.sql", True), ("V2__order_indexes.sql", True)]


def test_prefer_robust_stmts_names_each_statement_a_rerun_would_stop_at(tmp_path: Path) -> None:
    directory = write(
        tmp_path / "migrations",
        {
            "V1__create_orders.sql": ORDERS,
            "V2__archive_orders.sql": (
                "ALTER TABLE orders ADD COLUMN archived_at timestamptz;\n"
                "CREATE INDEX CONCURRENTLY orders_archived_at_idx ON orders (archived_at);\n"
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);\n"
                "DROP INDEX CONCURRENTLY orders_customer_idx_old;\n"
                "COMMENT ON COLUMN orders.archived_at IS 'set by the archiving job';\n"
            ),
        },
    )
    result = check_structure(config_for(directory))
    assert result.findings == []
    warnings = [
        (f.file, f.line, f.severity)
        for f in check_safety(result.parsed, config_for(directory)).findings
        if f.rule == "prefer-robust-stmts"
    ]
    assert warnings == [
        ("V2__archive_orders.sql", 1, "warning"),
        ("V2__archive_orders.sql", 2, "warning"),
        ("V2__archive_orders.sql", 4, "warning"),
    ]


# -- what the executor refuses from a manifest nobody validated ------------------------------------


@pytest.mark.parametrize(
    ("sql", "transactional", "line", "what"),
    [
        ("BEGIN;\nCREATE TABLE t (id bigint);\nCOMMIT;\n", False, 1, "marks it `transactional: false`"),
        ("BEGIN;\nCREATE TABLE t (id bigint);\nROLLBACK;\n", True, 1, "(BEGIN)"),
        ("CREATE TABLE t (id bigint);\nSAVEPOINT s;\nINSERT INTO t VALUES (1);\n", True, 2, "(SAVEPOINT)"),
        ("CREATE TABLE t (id bigint);\nPREPARE TRANSACTION 'x';\n", True, 2, "(PREPARE TRANSACTION)"),
        ("BEGIN ISOLATION LEVEL SERIALIZABLE;\nCREATE TABLE t (id bigint);\nCOMMIT;\n", True, 1, "(BEGIN)"),
    ],
)
def test_the_executor_refuses_transaction_statements_before_anything_runs(
    fresh_db: str, sql: str, transactional: bool, line: int, what: str
) -> None:
    files = {"V1__first.sql": "CREATE TABLE first (id bigint);\n", "V2__tx.sql": sql}
    bundle = bundle_of(files, non_transactional=() if transactional else ("V2__tx.sql",))
    conn = connect(fresh_db)
    try:
        with pytest.raises(MigrationRefused) as caught:
            apply(conn, bundle, FAST)
    finally:
        conn.close()
    assert (caught.value.file, caught.value.line, caught.value.rule) == (
        "V2__tx.sql",
        line,
        "transaction-control",
    )
    assert what in caught.value.message
    assert query(fresh_db, "SELECT to_regclass('first'), to_regclass('t')") == [(None, None)]
    assert history(fresh_db) == []


# -- the statements refused in a file without a transaction, checked against the server -------------


@pytest.mark.parametrize(
    ("sql", "outcome"),
    [
        ("LOCK TABLE orders IN SHARE MODE", "error"),
        ("DECLARE c CURSOR FOR SELECT id FROM orders", "error"),
        ("SET LOCAL lock_timeout = '5s'", "warning"),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "warning"),
        ("SET CONSTRAINTS ALL DEFERRED", "warning"),
        ("CREATE TEMP TABLE ids ON COMMIT DROP AS SELECT id FROM orders", "gone"),
        ("CREATE TEMP TABLE ids (id bigint) ON COMMIT DELETE ROWS", "empty"),
        # accepted by validation: they work outside a transaction block
        ("SET statement_timeout = 0", "fine"),
        ("DECLARE c CURSOR WITH HOLD FOR SELECT id FROM orders", "fine"),
        ("CREATE TEMP TABLE ids AS SELECT id FROM orders", "fine"),
    ],
)
def test_needs_transaction_block_matches_what_postgresql_does_outside_one(
    fresh_db: str, sql: str, outcome: str
) -> None:
    from validator.safety.source import source_file
    from validator.transactions import needs_transaction_block

    (stmt,) = source_file(sql + ";").statements
    assert (needs_transaction_block(stmt.node) is None) == (outcome == "fine")

    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True  # as the executor runs a transactional: false file
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE orders (id bigint); INSERT INTO orders VALUES (1), (2)")
            del conn.notices[:]
            try:
                cur.execute(sql)
            except psycopg2.Error as exc:
                assert outcome == "error", exc
                assert "can only be used in transaction blocks" in str(exc)
                return
            warned = [n for n in conn.notices if "can only be used in transaction blocks" in n]
            assert bool(warned) == (outcome == "warning"), conn.notices
            if outcome in ("gone", "empty"):
                cur.execute("SELECT to_regclass('pg_temp.ids') IS NOT NULL")
                exists = fetch_value(cur)
                if outcome == "empty":
                    cur.execute("INSERT INTO ids SELECT id FROM orders")
                    cur.execute("SELECT count(*) FROM ids")
                    assert cur.fetchone() == (0,)  # the rows went with the INSERT's own commit
                assert exists is (outcome == "empty")
            assert outcome != "error"
    finally:
        conn.close()
