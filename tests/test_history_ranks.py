"""The executor numbers the history rows it writes itself (installed_rank counted from the history it
read under the lock, not ``max() + 1`` on the server for every row): the numbers stay consecutive
across runs, non-transactional files, repeatables and failures, and a row that a writer ignoring
the lock slipped in does not make the run fail or apply anything twice."""

from __future__ import annotations

import psycopg2
import pytest

from executor.apply import ApplyHooks, apply
from executor.connection import connect
from executor.errors import SqlError
from executor.settings import ExecutorSettings
from tests.executor_worker import bundle_of

FAST = ExecutorSettings(lock_retry_backoff_s=0.05, advisory_lock_wait_s=5)

# a billing service's history, the way a team writes it: an enum, tables with identity keys and
# foreign keys, a partial index built concurrently in a file of its own, a DO block, a backfill
HISTORY = {
    "V1__create_accounts.sql": (
        "CREATE TYPE account_status AS ENUM ('trial', 'active', 'suspended');\n"
        "CREATE TABLE accounts (\n"
        "    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "    email text NOT NULL UNIQUE,\n"
        "    status account_status NOT NULL DEFAULT 'trial',\n"
        "    created_at timestamptz NOT NULL DEFAULT now()\n"
        ");\n"
    ),
    "V2__create_invoices.sql": (
        "CREATE TABLE invoices (\n"
        "    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
        "    account_id bigint NOT NULL REFERENCES accounts (id),\n"
        "    total_cents bigint NOT NULL CHECK (total_cents >= 0),\n"
        "    paid_at timestamptz\n"
        ");\n"
        "CREATE INDEX invoices_account_idx ON invoices (account_id);\n"
    ),
    "V3__seed_accounts.sql": (
        "INSERT INTO accounts (email, status)\n"
        "SELECT 'user' || g || '@example.com', CASE WHEN g % 3 = 0 THEN 'active' ELSE 'trial' END::account_status\n"
        "FROM generate_series(1, 200) AS g;\n"
    ),
    "V4__index_unpaid_invoices.sql": (
        "-- schemagate: transactional=false\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS invoices_unpaid_idx ON invoices (account_id)\n"
        "    WHERE paid_at IS NULL;\n"
    ),
    "V5__add_accounts_plan.sql": (
        "ALTER TABLE accounts ADD COLUMN plan text;\n"
        "-- backfill: everyone who is active is on the basic plan\n"
        "UPDATE accounts SET plan = 'basic' WHERE status = 'active';\n"
    ),
    "V6__suspend_role.sql": (
        "DO $$\n"
        "BEGIN\n"
        "    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'billing_reader') THEN\n"
        "        CREATE ROLE billing_reader NOLOGIN;\n"
        "    END IF;\n"
        "END\n"
        "$$;\n"
        "GRANT SELECT ON accounts, invoices TO billing_reader;\n"
    ),
    "R__account_summary.sql": (
        "CREATE OR REPLACE VIEW account_summary AS\n"
        "SELECT a.id, a.email, count(i.id) AS invoices\n"
        "FROM accounts a LEFT JOIN invoices i ON i.account_id = a.id\n"
        "GROUP BY a.id, a.email;\n"
    ),
}
NON_TRANSACTIONAL = ("V4__index_unpaid_invoices.sql",)


def first(n: int) -> dict[str, str]:
    return dict(list(HISTORY.items())[:n])


def ranks(url: str) -> list[tuple[int, str, bool]]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT installed_rank, script, success FROM schemagate_history ORDER BY installed_rank"
            )
            return cur.fetchall()
    finally:
        conn.close()


def run(url: str, files: dict[str, str], hooks: ApplyHooks | None = None) -> None:
    conn = connect(url)
    try:
        apply(conn, bundle_of(files, non_transactional=NON_TRANSACTIONAL), FAST, hooks=hooks)
    finally:
        conn.close()


def test_rows_are_numbered_in_order_across_runs_and_a_non_transactional_file(fresh_db: str) -> None:
    run(fresh_db, first(3))
    run(fresh_db, HISTORY)
    rows = ranks(fresh_db)
    assert [r[0] for r in rows] == list(range(1, len(HISTORY) + 1))
    assert [r[1] for r in rows] == list(HISTORY)
    assert all(r[2] for r in rows)


def test_a_row_slipped_in_by_a_writer_ignoring_the_lock_does_not_fail_the_run(fresh_db: str) -> None:
    run(fresh_db, first(2))
    intruder = psycopg2.connect(fresh_db)
    intruder.autocommit = True

    def slip_a_row_in(conn, entry) -> None:
        if entry.file == "V5__add_accounts_plan.sql":  # takes the number the executor counted for V5
            with intruder.cursor() as cur:
                cur.execute(
                    "INSERT INTO schemagate_history (installed_rank, version, description, type, script,"
                    " checksum, installed_by, execution_time_ms, success)"
                    " SELECT max(installed_rank) + 1, NULL, 'written by hand', 'SQL', 'by-hand.sql', NULL,"
                    " 'dba', 0, true FROM schemagate_history"
                )

    try:
        run(fresh_db, HISTORY, ApplyHooks(before_migration=slip_a_row_in))
    finally:
        intruder.close()
    rows = ranks(fresh_db)
    scripts = [r[1] for r in rows]
    assert [r[0] for r in rows] == list(range(1, len(HISTORY) + 2))
    assert scripts == [*list(HISTORY)[:4], "by-hand.sql", *list(HISTORY)[4:]]
    conn = psycopg2.connect(fresh_db)
    try:
        with conn.cursor() as cur:  # V5 ran once: its backfill touched the active accounts only
            cur.execute("SELECT count(*) FILTER (WHERE plan = 'basic'), count(*) FROM accounts")
            assert cur.fetchone() == (66, 200)
    finally:
        conn.close()


def test_a_failed_file_leaves_no_row_and_the_next_run_numbers_after_the_last(fresh_db: str) -> None:
    broken = {**first(5), "V6__suspend_role.sql": "GRANT SELECT ON accounts, no_such_table TO PUBLIC;\n"}
    with pytest.raises(SqlError):
        run(fresh_db, broken)
    assert [r[0] for r in ranks(fresh_db)] == [1, 2, 3, 4, 5]
    run(fresh_db, HISTORY)
    rows = ranks(fresh_db)
    assert [r[0] for r in rows] == list(range(1, len(HISTORY) + 1))
    assert [r[1] for r in rows] == list(HISTORY)
