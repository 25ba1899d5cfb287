"""INVALID indexes left by interrupted or failed concurrent index builds, on a real PostgreSQL.

A held snapshot makes ``CREATE INDEX CONCURRENTLY`` wait in its last phase (its INVALID index is
committed by then), where the executor is killed (SIGKILL of a real ``schemagate apply``
process) or its backend terminated; a unique build over duplicate rows fails by itself.  Each
test then runs apply again and checks ``pg_index`` and the history rows.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg2
import pytest

from executor import index_validity
from executor.apply import apply, info, invalid_indexes, repair
from executor.connection import connect
from executor.errors import ConnectionFailure, MigrationRefused, SqlError
from executor.history import HistoryType, insert_row
from executor.index_statement import parse_index_statement
from executor.settings import ExecutorSettings
from schemagate.cli import main
from tests.database_faults import (
    backend_alive,
    held_snapshot,
    history_rows,
    indexes,
    rows,
    run_schemagate,
    schemagate_process,
    terminate,
    wait_for_build,
    wait_until,
)
from tests.executor_worker import bundle_of

SETTINGS = ExecutorSettings(lock_retry_backoff_s=0.05, advisory_lock_wait_s=30)

PAYMENTS = {
    "V1__create_payments.sql": """\
CREATE TABLE payments (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    invoice_id   bigint      NOT NULL,
    amount_cents bigint      NOT NULL CHECK (amount_cents > 0),
    received_at  timestamptz NOT NULL DEFAULT now(),
    reference    text
);
-- a year of payments already in production
INSERT INTO payments (invoice_id, amount_cents, received_at, reference)
SELECT g % 500, 100 + g % 9000, now() - g * interval '20 minutes', 'PAY-' || lpad(g::text, 6, '0')
FROM generate_series(1, 20000) AS g;
""",
    "V2__index_payments_received_at.sql": """\
-- schemagate:set statement_timeout=1h
-- payments already holds data: build the index without blocking writes
CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_received_at_idx ON payments (received_at);
""",
    "V3__create_refunds.sql": """\
CREATE TABLE refunds (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payment_id  bigint NOT NULL REFERENCES payments (id),
    reason      text   NOT NULL,
    refunded_at timestamptz NOT NULL DEFAULT now()
);
""",
}
NON_TRANSACTIONAL = ("V2__index_payments_received_at.sql",)


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write(tmp_path / "migrations", PAYMENTS)
    monkeypatch.chdir(tmp_path)
    for var in ("DATABASE_URL", "PGHOST", "PGSERVICE", "PGDATABASE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def apply_in_thread(url: str, bundle, settings: ExecutorSettings = SETTINGS):
    """Run ``apply`` in a thread; returns (thread, outcome dict with 'result' or 'error', backend pid)."""
    conn = connect(url, application_name="executor-under-test")
    outcome: dict = {"pid": conn.get_backend_pid()}

    def run() -> None:
        try:
            outcome["result"] = apply(
                conn, bundle, settings, on_event=outcome.setdefault("events", []).append
            )
        except Exception as exc:
            outcome["error"] = exc
        finally:
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


# -- killed while building ---------------------------------------------------------------------


def test_a_killed_apply_leaves_an_invalid_index_that_the_next_apply_drops_and_builds_again(
    project: Path, fresh_db: str
) -> None:
    # given an apply process killed while its CREATE INDEX CONCURRENTLY waits for an old snapshot
    with held_snapshot(fresh_db):
        process = schemagate_process(["apply", "--database-url", fresh_db, "--yes"], project)
        try:
            backend = wait_for_build(fresh_db)
        finally:
            process.kill()
            process.wait(timeout=30)
        # the orphaned backend notices its client is gone (client_connection_check_interval)
        wait_until(lambda: not backend_alive(fresh_db, backend), 30, "the orphaned backend to end")
    assert indexes(fresh_db)["public.payments_received_at_idx"] is False  # PostgreSQL left it INVALID
    assert history_rows(fresh_db) == [("V1__create_payments.sql", True)]  # V2 is not recorded at all

    # when apply runs again
    code, out, err = run_schemagate(["apply", "--database-url", fresh_db, "--yes"], project)

    # then the leftover is dropped and the index built again, and every file is recorded once
    assert code == 0, out + err
    assert "dropped the INVALID index public.payments_received_at_idx on public.payments" in out
    assert indexes(fresh_db)["public.payments_received_at_idx"] is True
    assert history_rows(fresh_db) == [(name, True) for name in PAYMENTS]
    assert rows(fresh_db, "SELECT count(*) FROM pg_indexes WHERE tablename = 'payments'") == [(2,)]


def test_a_terminated_backend_is_a_connection_error_and_the_next_apply_builds_the_index(
    fresh_db: str,
) -> None:
    bundle = bundle_of(PAYMENTS, non_transactional=NON_TRANSACTIONAL)
    with held_snapshot(fresh_db):
        thread, outcome = apply_in_thread(fresh_db, bundle)
        assert wait_for_build(fresh_db) == outcome["pid"]
        terminate(fresh_db, outcome["pid"])
        thread.join(timeout=30)
    error = outcome["error"]
    assert isinstance(error, ConnectionFailure) and error.category.value == "CONNECTION_ERROR"
    assert error.file == "V2__index_payments_received_at.sql"
    assert error.context["applied_before_failure"] == ["V1__create_payments.sql"]
    assert indexes(fresh_db)["public.payments_received_at_idx"] is False
    assert history_rows(fresh_db) == [("V1__create_payments.sql", True)]

    conn = connect(fresh_db)
    try:
        events: list = []
        result = apply(conn, bundle, SETTINGS, on_event=events.append)
    finally:
        conn.close()
    assert [a.entry.file for a in result.applied] == list(PAYMENTS)[1:]
    dropped = [e for e in events if e.kind == "invalid_index_dropped"]
    assert [e.file for e in dropped] == ["V2__index_payments_received_at.sql"]
    assert indexes(fresh_db)["public.payments_received_at_idx"] is True
    assert history_rows(fresh_db) == [(name, True) for name in PAYMENTS]


def test_a_killed_reindex_concurrently_leaves_a_ccnew_index_that_the_next_apply_drops(fresh_db: str) -> None:
    files = {
        **PAYMENTS,
        "V4__rebuild_bloated_payments_index.sql": (
            "-- the index bloated after the 2023 archive purge: rebuild it without blocking writes\n"
            "REINDEX INDEX CONCURRENTLY payments_received_at_idx;\n"
        ),
    }
    non_transactional = (*NON_TRANSACTIONAL, "V4__rebuild_bloated_payments_index.sql")
    conn = connect(fresh_db)
    try:
        apply(conn, bundle_of(PAYMENTS, non_transactional=NON_TRANSACTIONAL), SETTINGS)
    finally:
        conn.close()
    bundle = bundle_of(files, non_transactional=non_transactional)
    with held_snapshot(fresh_db):
        thread, outcome = apply_in_thread(fresh_db, bundle)
        wait_for_build(fresh_db)
        terminate(fresh_db, outcome["pid"])
        thread.join(timeout=30)
    assert isinstance(outcome["error"], ConnectionFailure)
    assert indexes(fresh_db)["public.payments_received_at_idx_ccnew"] is False

    conn = connect(fresh_db)
    try:
        events: list = []
        apply(conn, bundle, SETTINGS, on_event=events.append)
    finally:
        conn.close()
    assert [e.message.split(" on ")[0] for e in events if e.kind == "invalid_index_dropped"] == [
        "dropped the INVALID index public.payments_received_at_idx_ccnew"
    ]
    assert {k: v for k, v in indexes(fresh_db).items() if "payments" in k} == {
        "public.payments_pkey": True,
        "public.payments_received_at_idx": True,
    }
    assert history_rows(fresh_db)[-1] == ("V4__rebuild_bloated_payments_index.sql", True)


# -- a build that fails by itself ----------------------------------------------------------------

CUSTOMERS = {
    "V1__create_customers.sql": """\
CREATE TABLE customers (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email      text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (email) VALUES
    ('ada@example.com'), ('grace@example.com'), ('Ada@Example.com'), ('linus@example.com');
""",
    "V2__unique_customer_email.sql": """\
-- one account per address, whatever its case: build the unique index first, without blocking writes
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS customers_email_key ON customers (lower(email));
""",
}


def test_a_unique_build_over_duplicates_fails_with_a_failed_row_and_is_rebuilt_after_repair(
    fresh_db: str,
) -> None:
    bundle = bundle_of(CUSTOMERS, non_transactional=("V2__unique_customer_email.sql",))
    conn = connect(fresh_db)
    try:
        with pytest.raises(SqlError) as caught:
            apply(conn, bundle, SETTINGS)
        error = caught.value
        assert (error.file, error.line, error.context["sqlstate"]) == (
            "V2__unique_customer_email.sql",
            2,
            "23505",
        )
        assert "left the INVALID index(es) public.customers_email_key on public.customers" in error.message
        assert "still rejects duplicates" in error.message
        assert error.remedy is not None and "schemagate repair" in error.remedy
        assert error.context["invalid_indexes"][0]["index"] == "public.customers_email_key"
        assert history_rows(fresh_db) == [
            ("V1__create_customers.sql", True),
            ("V2__unique_customer_email.sql", False),
        ]
        assert indexes(fresh_db)["public.customers_email_key"] is False

        # the failed row blocks further runs until a person fixed the data and repaired the history
        with pytest.raises(MigrationRefused):
            apply(conn, bundle, SETTINGS)
        rows(fresh_db, "DELETE FROM customers WHERE email = 'Ada@Example.com'")
        assert repair(conn, bundle, SETTINGS).removed_failed == ["V2__unique_customer_email.sql"]

        events: list = []
        apply(conn, bundle, SETTINGS, on_event=events.append)
    finally:
        conn.close()
    assert [e.kind for e in events if e.kind == "invalid_index_dropped"] == ["invalid_index_dropped"]
    assert indexes(fresh_db)["public.customers_email_key"] is True
    assert history_rows(fresh_db) == [(name, True) for name in CUSTOMERS]
    with pytest.raises(psycopg2.errors.UniqueViolation):  # the rebuilt index enforces what it should
        rows(fresh_db, "INSERT INTO customers (email) VALUES ('GRACE@example.com')")


# -- where schemagate does not drop ------------------------------------------------------------------


def test_an_unnamed_index_build_next_to_an_invalid_index_is_refused_with_a_remedy(fresh_db: str) -> None:
    files = {
        "V1__create_payments.sql": PAYMENTS["V1__create_payments.sql"],
        "V2__index_payments_received_at.sql": "CREATE INDEX CONCURRENTLY ON payments (received_at);\n",
    }
    bundle = bundle_of(files, non_transactional=("V2__index_payments_received_at.sql",))
    with held_snapshot(fresh_db):
        thread, outcome = apply_in_thread(fresh_db, bundle)
        wait_for_build(fresh_db)
        terminate(fresh_db, outcome["pid"])
        thread.join(timeout=30)
    before = indexes(fresh_db)
    assert before["public.payments_received_at_idx"] is False

    conn = connect(fresh_db)
    try:
        with pytest.raises(SqlError) as caught:
            apply(conn, bundle, SETTINGS)
        error = caught.value
        assert error.rule == "invalid-index-leftover" and error.file == "V2__index_payments_received_at.sql"
        assert "public.payments_received_at_idx" in error.message and "without a name" in error.message
        assert (
            error.remedy is not None
            and "DROP INDEX CONCURRENTLY" in error.remedy
            and "name the index" in error.remedy
        )
        assert indexes(fresh_db) == before  # nothing dropped, no second index built
        assert history_rows(fresh_db) == [("V1__create_payments.sql", True)]  # no failed row: nothing ran

        # after the person dropped it, the file applies
        rows(fresh_db, "DROP INDEX CONCURRENTLY payments_received_at_idx")
        apply(conn, bundle, SETTINGS)
    finally:
        conn.close()
    assert indexes(fresh_db)["public.payments_received_at_idx"] is True
    assert history_rows(fresh_db) == [(name, True) for name in files]


def test_an_invalid_index_of_the_same_name_on_another_table_is_not_dropped(fresh_db: str) -> None:
    # someone's failed unique build on another table took the name the migration uses
    rows(fresh_db, "CREATE TABLE legacy_payments (received_at timestamptz)")
    rows(fresh_db, "INSERT INTO legacy_payments VALUES ('2024-01-01'), ('2024-01-01')")
    with pytest.raises(psycopg2.errors.UniqueViolation):
        rows(
            fresh_db,
            "CREATE UNIQUE INDEX CONCURRENTLY payments_received_at_idx ON legacy_payments (received_at)",
        )
    bundle = bundle_of(PAYMENTS, non_transactional=NON_TRANSACTIONAL)
    conn = connect(fresh_db)
    try:
        with pytest.raises(SqlError) as caught:
            apply(conn, bundle, SETTINGS)
    finally:
        conn.close()
    assert caught.value.rule == "invalid-index-leftover"
    assert "exists on public.legacy_payments" in caught.value.message
    assert indexes(fresh_db)["public.payments_received_at_idx"] is False  # still there: not ours to drop
    assert history_rows(fresh_db) == [("V1__create_payments.sql", True)]


# -- the check after the statement -------------------------------------------------------------------


def test_the_check_after_a_statement_names_an_index_that_is_invalid(fresh_db: str) -> None:
    """The last line of defence: the statement "succeeded" (IF NOT EXISTS skipped) but the index it
    names is INVALID.  Checked directly against a real INVALID index."""
    rows(fresh_db, "CREATE SCHEMA billing")
    rows(fresh_db, "CREATE TABLE billing.customers (email text)")
    rows(fresh_db, "INSERT INTO billing.customers VALUES ('a@example.com'), ('a@example.com')")
    statement = 'CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS "Customers_Email" ON customers (email)'
    parsed = parse_index_statement(statement)
    assert parsed is not None
    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SET search_path = billing")
            check = index_validity.before_statement(
                cur, parsed, file="V9__x.sql", line=3, on_drop=lambda r: None
            )
            with pytest.raises(psycopg2.errors.UniqueViolation):
                cur.execute(statement)
            assert [r.qualified for r in index_validity.left_behind(cur, check)] == [
                "billing.Customers_Email"
            ]
            cur.execute(statement)  # NOTICE: relation "Customers_Email" already exists, skipping
            problem = index_validity.after_statement(cur, check)
    finally:
        conn.close()
    assert problem is not None and problem.rule == "invalid-index"
    assert (problem.file, problem.line, problem.category.value) == ("V9__x.sql", 3, "SQL_ERROR")
    assert "billing.Customers_Email on billing.customers INVALID" in problem.message
    assert problem.remedy is not None and "schemagate repair" in problem.remedy


# -- info ---------------------------------------------------------------------------------------------


def test_info_shows_the_invalid_index_a_recorded_migration_should_have_built(
    project: Path, fresh_db: str, capsys
) -> None:
    # the state an older executor left: V2 recorded as a success, its index INVALID
    conn = connect(fresh_db)
    try:
        apply(conn, bundle_of({"V1__create_payments.sql": PAYMENTS["V1__create_payments.sql"]}), SETTINGS)
        rows(
            fresh_db,
            "INSERT INTO payments (invoice_id, amount_cents, reference) VALUES (1, 100, 'PAY-000001')",
        )
        with pytest.raises(psycopg2.errors.UniqueViolation):
            rows(
                fresh_db, "CREATE UNIQUE INDEX CONCURRENTLY payments_received_at_idx ON payments (reference)"
            )
        with pytest.raises(psycopg2.errors.UniqueViolation):  # someone's own attempt, by hand
            rows(fresh_db, "CREATE UNIQUE INDEX CONCURRENTLY unrelated_idx ON payments (invoice_id)")
        bundle = bundle_of(PAYMENTS, non_transactional=NON_TRANSACTIONAL)
        with conn.cursor() as cur:
            entry = bundle.entry("V2__index_payments_received_at.sql")
            insert_row(
                cur,
                SETTINGS,
                version=entry.version,
                description=entry.description,
                type=HistoryType.SQL,
                script=entry.script,
                checksum=entry.sha256,
                execution_time_ms=5,
                success=True,
                bundle_sha256=bundle.bundle_sha256,
            )
        conn.commit()
        infos = info(conn, bundle, SETTINGS)
        assert {i.file: i.invalid_indexes for i in infos if i.invalid_indexes} == {
            "V2__index_payments_received_at.sql": ["public.payments_received_at_idx"]
        }
        assert [(row.qualified, owner) for row, owner in invalid_indexes(conn, bundle, SETTINGS, infos)] == [
            ("public.payments_received_at_idx", "V2__index_payments_received_at.sql"),
            ("public.unrelated_idx", None),
        ]
    finally:
        conn.close()

    code = main(["info", "--database-url", fresh_db])
    out = capsys.readouterr().out
    assert code == 0
    assert "2 INVALID indexes" in out
    assert (
        "public.payments_received_at_idx on public.payments: V2__index_payments_received_at.sql "
        "(applied) should have built it" in out
    )
    assert "public.unrelated_idx on public.payments: built by no recorded migration" in out
    assert "REINDEX INDEX CONCURRENTLY public.payments_received_at_idx" in out

    code = main(["info", "--database-url", fresh_db, "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(i["index"], i["built_by"]) for i in data["invalid_indexes"]] == [
        ("public.payments_received_at_idx", "V2__index_payments_received_at.sql"),
        ("public.unrelated_idx", None),
    ]
    v2 = next(m for m in data["migrations"] if m["file"] == "V2__index_payments_received_at.sql")
    assert v2["invalid_indexes"] == ["public.payments_received_at_idx"]
