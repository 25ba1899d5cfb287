"""Applying bundles to a real PostgreSQL: the apply protocol, failures, refusals, repair, baseline,
and connections."""

from __future__ import annotations

import os
import socket
import threading
import time

import psycopg2
import pytest

from executor.apply import ApplyHooks, apply, baseline, info, plan, repair, undo
from executor.connection import connect, describe_target, mask_url
from executor.errors import (
    ChecksumMismatch,
    ConfigurationError,
    ConnectionFailure,
    LockTimeout,
    MigrationRefused,
    SqlError,
)
from executor.history import read_history
from executor.progress import Event
from executor.settings import ExecutorSettings
from executor.state import MigrationState
from tests.executor_worker import bundle_of
from tests.helpers import fetch_value, sorted_rules

FAST = ExecutorSettings(lock_retry_backoff_s=0.05, advisory_lock_wait_s=5)

SCHEMA = {
    "V1__create_customers.sql": "CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL);\n",
    "V2__create_invoices.sql": (
        "-- invoices belong to customers\n"
        "CREATE TABLE invoices (\n"
        "    id bigint PRIMARY KEY,\n"
        "    customer_id bigint NOT NULL REFERENCES customers (id)\n"
        ");\n"
        "CREATE INDEX invoices_customer_idx ON invoices (customer_id);\n"
    ),
    "R__customer_view.sql": "CREATE OR REPLACE VIEW customer_names AS SELECT name FROM customers;\n",
}


@pytest.fixture
def db(fresh_db: str):
    conn = connect(fresh_db)
    yield conn
    conn.close()


def query(conn, sql: str, params: tuple = ()) -> list[tuple]:
    conn.rollback()
    with conn.cursor() as cur:
        cur.execute(sql, params)
        rows = cur.fetchall()
    conn.rollback()
    return rows


def history(conn, settings: ExecutorSettings = FAST) -> list[tuple]:
    conn.rollback()
    rows = [(r.script, r.type, r.success) for r in read_history(conn, settings)]
    conn.rollback()
    return rows


def catalog_snapshot(conn) -> dict[str, list[tuple]]:
    """Everything a migration could leave behind in the user's schemas, plus the history rows."""
    user = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
    snapshot = {
        "relations": query(
            conn,
            f"SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n "
            f"ON n.oid = c.relnamespace WHERE {user} ORDER BY 1, 2",
        ),
        "columns": query(
            conn,
            f"SELECT c.relname, a.attname, a.atttypid::regtype::text, a.attnotnull "
            f"FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n "
            f"ON n.oid = c.relnamespace WHERE {user} AND a.attnum > 0 ORDER BY 1, 2",
        ),
        "types": query(
            conn,
            f"SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            f"WHERE {user} ORDER BY 1",
        ),
        "schemas": query(conn, "SELECT nspname FROM pg_namespace ORDER BY 1"),
    }
    snapshot["history"] = [(r.installed_rank, r.script, r.checksum) for r in read_history(conn, FAST)]
    conn.rollback()
    return snapshot


# -- the happy path -------------------------------------------------------------------------


def test_apply_runs_versioned_then_repeatable_and_a_second_apply_does_nothing(db) -> None:
    bundle = bundle_of(SCHEMA)
    events: list[Event] = []
    result = apply(db, bundle, FAST.with_overrides(run_id="pipeline-7"), on_event=events.append)
    assert [(a.entry.file) for a in result.applied] == [
        "V1__create_customers.sql",
        "V2__create_invoices.sql",
        "R__customer_view.sql",
    ]
    assert [why for _, why in result.plan.to_apply] == ["pending", "pending", "repeatable new"]
    assert not result.stopped_early and result.remaining == []
    assert [e.kind for e in events if e.file == "V2__create_invoices.sql"] == ["start", "applied"]
    rows = read_history(db, FAST)
    assert [(r.installed_rank, r.version, r.type, r.script, r.success) for r in rows] == [
        (1, "1", "SQL", "V1__create_customers.sql", True),
        (2, "2", "SQL", "V2__create_invoices.sql", True),
        (3, None, "REPEATABLE", "R__customer_view.sql", True),
    ]
    assert {(r.installed_by, r.bundle_sha256, r.run_id) for r in rows} == {
        (query(db, "SELECT current_user")[0][0], bundle.bundle_sha256, "pipeline-7")
    }
    assert [r.checksum for r in rows] == [e.sha256 for e in bundle.manifest.migrations]
    assert all(r.execution_time_ms >= 0 for r in rows)
    assert query(db, "SELECT count(*) FROM customer_names") == [(0,)]
    assert db.autocommit is False  # the caller's connection settings are restored

    started = time.monotonic()
    again = apply(db, bundle, FAST)
    assert time.monotonic() - started < 0.3
    assert again.applied == [] and again.up_to_date
    assert again.summary() == "the database is up to date: nothing to apply"
    assert len(read_history(db, FAST)) == 3


def test_plan_and_info_change_nothing_and_dry_run_only_plans(db) -> None:
    bundle = bundle_of(SCHEMA)
    p = plan(db, bundle, FAST)
    assert [(e.file, why) for e, why in p.to_apply] == [
        ("V1__create_customers.sql", "pending"),
        ("V2__create_invoices.sql", "pending"),
        ("R__customer_view.sql", "repeatable new"),
    ]
    assert p.refusals == []
    assert {i.state for i in info(db, bundle, FAST)} == {MigrationState.PENDING}
    dry = apply(db, bundle, FAST.with_overrides(dry_run=True))
    assert dry.applied == [] and len(dry.remaining) == 3
    assert query(db, "SELECT to_regclass('schemagate_history'), to_regclass('customers')") == [(None, None)]


def test_a_changed_repeatable_is_applied_again_after_the_versioned_ones(db) -> None:
    apply(db, bundle_of(SCHEMA), FAST)
    changed = dict(SCHEMA)
    changed["V3__add_email.sql"] = "ALTER TABLE customers ADD COLUMN email text;\n"
    changed["R__customer_view.sql"] = (
        "CREATE OR REPLACE VIEW customer_names AS SELECT name, email FROM customers;\n"
    )
    changed = {
        k: changed[k]
        for k in [
            "V1__create_customers.sql",
            "V2__create_invoices.sql",
            "V3__add_email.sql",
            "R__customer_view.sql",
        ]
    }
    result = apply(db, bundle_of(changed), FAST)
    assert [(e.file, why) for e, why in result.plan.to_apply] == [
        ("V3__add_email.sql", "pending"),
        ("R__customer_view.sql", "repeatable changed"),
    ]
    assert query(
        db, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'customer_names'"
    ) == [(2,)]
    states = [(i.file, i.state) for i in info(db, bundle_of(changed), FAST)]
    assert ("R__customer_view.sql", MigrationState.APPLIED) in states and len(states) == 4


# -- failures -------------------------------------------------------------------------------


def test_a_migration_failing_half_way_leaves_no_trace(db) -> None:
    apply(db, bundle_of({"V1__create_customers.sql": SCHEMA["V1__create_customers.sql"]}), FAST)
    before = catalog_snapshot(db)
    files = {
        "V1__create_customers.sql": SCHEMA["V1__create_customers.sql"],
        "V2__half_way.sql": (
            "CREATE TYPE status AS ENUM ('new', 'paid');\n"
            "CREATE TABLE orders (id bigint PRIMARY KEY, status status);\n"
            "ALTER TABLE customers ADD COLUMN tier text;\n"
            "INSERT INTO orders VALUES (1, 'new');\n"
            "\n"
            "UPDATE orders SET status = 'shipped';\n"
        ),
    }
    with pytest.raises(SqlError) as caught:
        apply(db, bundle_of(files), FAST)
    error = caught.value
    assert (error.file, error.line) == ("V2__half_way.sql", 6)
    assert error.context["sqlstate"] == "22P02"
    assert 'invalid input value for enum status: "shipped"' in error.message
    assert "rolled back" in error.message and error.remedy
    assert catalog_snapshot(db) == before


def test_the_failing_line_is_found_from_the_error_position_and_statement(db) -> None:
    files = {"V1__t.sql": "-- header\nCREATE TABLE t (id int);\nSELECT nope\n  FROM t;\n"}
    with pytest.raises(SqlError) as caught:
        apply(db, bundle_of(files), FAST)
    assert (caught.value.line, caught.value.column) == (3, 8)  # column "nope" does not exist
    # no position from PostgreSQL (an execution error): the statement's first line
    files = {"V1__t.sql": "CREATE TABLE t (id int);\n\nCREATE TABLE\n  t (id int);\n"}
    with pytest.raises(SqlError) as caught:
        apply(db, bundle_of(files), FAST)
    assert (caught.value.file, caught.value.line, caught.value.context["sqlstate"]) == (
        "V1__t.sql",
        3,
        "42P07",
    )
    assert "starting at line 3" in caught.value.message
    # inside a DO block: the PL/pgSQL line mapped back into the file
    files = {"V1__t.sql": "SELECT 1;\nDO $$\nBEGIN\n  PERFORM 1;\n  RAISE EXCEPTION 'bad data';\nEND $$;\n"}
    with pytest.raises(SqlError) as caught:
        apply(db, bundle_of(files), FAST)
    assert caught.value.line == 5 and caught.value.context["sqlstate"] == "P0001"
    assert history(db) == []


def test_create_index_concurrently_applies_outside_a_transaction(db) -> None:
    files = {
        "V1__t.sql": "CREATE TABLE t (id int, email text);\n"
        "INSERT INTO t SELECT g, 'x' || g FROM generate_series(1, 50) g;",
        "V2__idx.sql": "-- schemagate:set lock_timeout=10s\n"
        "CREATE INDEX CONCURRENTLY t_email_idx ON t (email);\n",
        "V3__more.sql": "ALTER TABLE t ADD COLUMN note text;",
    }
    result = apply(db, bundle_of(files, non_transactional=("V2__idx.sql",)), FAST)
    assert len(result.applied) == 3
    assert query(db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_email_idx'::regclass") == [
        (True,)
    ]
    assert history(db) == [
        ("V1__t.sql", "SQL", True),
        ("V2__idx.sql", "SQL", True),
        ("V3__more.sql", "SQL", True),
    ]
    # session settings of the non-transactional file were reset afterwards
    assert query(db, "SELECT current_setting('lock_timeout')") == [("0",)]


def test_a_statement_that_cannot_run_in_a_transaction_explains_the_transactional_flag(db) -> None:
    files = {"V1__t.sql": "CREATE TABLE t (id int);", "V2__idx.sql": "CREATE INDEX CONCURRENTLY i ON t (id);"}
    with pytest.raises(SqlError) as caught:
        apply(db, bundle_of(files), FAST)
    assert caught.value.context["sqlstate"] == "25001"
    assert caught.value.remedy is not None and "transactional: false" in caught.value.remedy
    assert history(db) == [("V1__t.sql", "SQL", True)]


def test_a_failed_non_transactional_migration_is_recorded_blocks_and_is_repaired(db) -> None:
    files = {
        "V1__t.sql": "CREATE TABLE t (id int);\nINSERT INTO t VALUES (1), (1);",
        "V2__unique.sql": "CREATE UNIQUE INDEX CONCURRENTLY t_id_key ON t (id);",
    }
    bundle = bundle_of(files, non_transactional=("V2__unique.sql",))
    with pytest.raises(SqlError) as caught:
        apply(db, bundle, FAST)
    assert caught.value.context["sqlstate"] == "23505" and caught.value.context["failed_row_written"] is True
    assert caught.value.remedy is not None and "schemagate repair" in caught.value.remedy
    assert history(db) == [("V1__t.sql", "SQL", True), ("V2__unique.sql", "SQL", False)]
    # the failed CREATE INDEX CONCURRENTLY left an INVALID index behind: that is why the row blocks
    assert query(db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_id_key'::regclass") == [(False,)]
    with pytest.raises(MigrationRefused) as refused:
        apply(db, bundle, FAST)
    assert refused.value.rule == "failed-migration" and refused.value.file == "V2__unique.sql"

    # a person fixes the data and drops the invalid index, then repairs
    with db.cursor() as cur:
        cur.execute("DROP INDEX t_id_key; DELETE FROM t WHERE ctid <> (SELECT min(ctid) FROM t)")
    db.commit()
    assert repair(db, bundle, FAST).removed_failed == ["V2__unique.sql"]
    assert [a.entry.file for a in apply(db, bundle, FAST).applied] == ["V2__unique.sql"]
    assert history(db) == [("V1__t.sql", "SQL", True), ("V2__unique.sql", "SQL", True)]


def test_a_non_transactional_file_failing_on_its_first_plain_statement_stays_pending(db) -> None:
    files = {
        "V1__t.sql": "CREATE TABLE t (id int);",
        "V2__idx.sql": "CREATE INDEX CONCURRENTLY i ON nope (id);",
    }
    bundle = bundle_of(files, non_transactional=("V2__idx.sql",))
    with pytest.raises(SqlError) as caught:
        apply(db, bundle, FAST)
    assert caught.value.context["partial"] is True  # CONCURRENTLY: never assumed atomic
    assert history(db)[-1] == ("V2__idx.sql", "SQL", False)
    repair(db, bundle, FAST)

    files["V2__idx.sql"] = "ALTER TABLE nope ADD COLUMN c int;\nCREATE INDEX CONCURRENTLY i ON t (id);"
    bundle = bundle_of(files, non_transactional=("V2__idx.sql",))
    with pytest.raises(SqlError) as caught:
        apply(db, bundle, FAST)
    assert caught.value.context["partial"] is False and "nothing of it took effect" in caught.value.message
    assert caught.value.line == 1 and caught.value.context["sqlstate"] == "42P01"
    assert history(db) == [("V1__t.sql", "SQL", True)]
    assert [i.state for i in info(db, bundle, FAST)] == [MigrationState.APPLIED, MigrationState.PENDING]


def test_a_lock_timeout_is_retried_with_backoff_then_succeeds_or_fails(db, fresh_db: str) -> None:
    apply(db, bundle_of({"V1__t.sql": "CREATE TABLE t (id int);"}), FAST)
    blocker = psycopg2.connect(fresh_db)
    files = {
        "V1__t.sql": "CREATE TABLE t (id int);",
        "V2__alter.sql": "-- schemagate:set lock_timeout=100ms lock_retries=2\n"
        "ALTER TABLE t ADD COLUMN c int;",
    }
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE t IN ACCESS SHARE MODE")  # an open transaction reading t
        events: list[Event] = []
        with pytest.raises(LockTimeout) as caught:
            apply(db, bundle_of(files), FAST, on_event=events.append)
        assert [e.kind for e in events if e.kind in ("retry", "failed")] == ["retry", "retry", "failed"]
        assert caught.value.context["attempts"] == 3 and caught.value.context["sqlstate"] == "55P03"
        assert (caught.value.file, caught.value.line) == ("V2__alter.sql", 2)
        assert caught.value.remedy is not None and "lock_timeout" in caught.value.remedy
        assert history(db) == [("V1__t.sql", "SQL", True)]

        # the blocker finishes during the back-off: the retry succeeds
        threading.Timer(0.15, blocker.rollback).start()
        events.clear()
        result = apply(
            db, bundle_of(files), FAST.with_overrides(lock_retry_backoff_s=0.3), on_event=events.append
        )
        assert result.applied[0].attempts == 2
        assert [e.kind for e in events if e.file == "V2__alter.sql"] == ["start", "retry", "applied"]
    finally:
        blocker.close()


def test_statement_timeout_from_a_header_and_notices_are_forwarded(db) -> None:
    files = {
        "V1__notice.sql": "DO $$ BEGIN RAISE NOTICE 'lock_timeout is %', "
        "current_setting('lock_timeout'); END $$;",
        "V2__slow.sql": "-- schemagate:set statement_timeout=100ms lock_timeout=7s\n"
        "DO $$ BEGIN RAISE NOTICE 'lock_timeout is %', current_setting('lock_timeout'); END $$;\n"
        "SELECT pg_sleep(2);\n",
    }
    events: list[Event] = []
    started = time.monotonic()
    with pytest.raises(SqlError) as caught:
        apply(db, bundle_of(files), FAST.with_overrides(lock_timeout="3s"), on_event=events.append)
    assert time.monotonic() - started < 1.5
    assert caught.value.context["sqlstate"] == "57014" and caught.value.line == 3
    assert caught.value.remedy is not None and "statement_timeout" in caught.value.remedy
    notices = [(e.file, e.message) for e in events if e.kind == "notice"]
    assert notices == [
        ("V1__notice.sql", "NOTICE: lock_timeout is 3s"),
        ("V2__slow.sql", "NOTICE: lock_timeout is 7s"),
    ]


def test_search_path_is_set_for_every_migration(db) -> None:
    files = {"V1__schema.sql": "CREATE SCHEMA app;", "V2__t.sql": "CREATE TABLE t (id int);"}
    apply(db, bundle_of(files), FAST.with_overrides(search_path="app, public"))
    assert query(db, "SELECT to_regclass('app.t') IS NOT NULL, to_regclass('public.t')") == [(True, None)]


def test_should_continue_stops_between_migrations_and_the_next_run_finishes(db) -> None:
    files = {f"V{i}__t{i}.sql": f"CREATE TABLE t{i} (id int);" for i in range(1, 5)}
    answers = iter([True, False])
    events: list[Event] = []
    result = apply(db, bundle_of(files), FAST, should_continue=lambda: next(answers), on_event=events.append)
    assert result.stopped_early
    assert [a.entry.file for a in result.applied] == ["V1__t1.sql", "V2__t2.sql"]
    assert [e.file for e in result.remaining] == ["V3__t3.sql", "V4__t4.sql"]
    assert events[-1].kind == "stopped" and "2 migration(s) left" in events[-1].message
    assert [a.entry.file for a in apply(db, bundle_of(files), FAST).applied] == ["V3__t3.sql", "V4__t4.sql"]


def test_hooks_run_around_each_migration_and_before_commit_can_veto(db) -> None:
    calls = []

    def before_commit(cur, entry):
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't2'")
        calls.append(("before_commit", entry.file, fetch_value(cur)))
        if entry.file == "V2__t2.sql":
            raise RuntimeError("rehearsal says no")

    hooks = ApplyHooks(
        before_migration=lambda conn, entry: calls.append(("before", entry.file)),
        before_commit=before_commit,
        after_migration=lambda conn, entry, applied: calls.append(("after", entry.file)),
    )
    files = {"V1__t1.sql": "CREATE TABLE t1 (id int);", "V2__t2.sql": "CREATE TABLE t2 (id int);"}
    with pytest.raises(RuntimeError):
        apply(db, bundle_of(files), FAST, hooks=hooks)
    assert calls == [
        ("before", "V1__t1.sql"),
        ("before_commit", "V1__t1.sql", 0),
        ("after", "V1__t1.sql"),
        ("before", "V2__t2.sql"),
        ("before_commit", "V2__t2.sql", 1),
    ]
    assert history(db) == [("V1__t1.sql", "SQL", True)]
    assert query(db, "SELECT to_regclass('t2')") == [(None,)]


# -- refusals before anything runs ----------------------------------------------------------


def test_drift_is_refused_before_anything_is_applied(db) -> None:
    apply(db, bundle_of({"V1__t.sql": "CREATE TABLE t (id int);"}), FAST)
    edited = {"V1__t.sql": "CREATE TABLE t (id bigint);", "V2__u.sql": "CREATE TABLE u (id int);"}
    with pytest.raises(ChecksumMismatch) as caught:
        apply(db, bundle_of(edited), FAST)
    assert caught.value.file == "V1__t.sql" and caught.value.category.value == "CHECKSUM_MISMATCH"
    assert query(db, "SELECT to_regclass('u')") == [(None,)]
    # a comment-only edit can be realigned explicitly
    result = repair(db, bundle_of(edited), FAST, realign_checksums=True)
    assert result.realigned == ["V1__t.sql"] and result.removed_failed == []
    assert [a.entry.file for a in apply(db, bundle_of(edited), FAST).applied] == ["V2__u.sql"]


def test_missing_and_out_of_order_are_refused_unless_allowed(db) -> None:
    apply(db, bundle_of({"V1__a.sql": "SELECT 1;", "V3__c.sql": "SELECT 3;"}), FAST)
    with pytest.raises(MigrationRefused) as caught:
        apply(
            db,
            bundle_of({"V1__a.sql": "SELECT 1;", "V2__b.sql": "SELECT 2;", "V3__c.sql": "SELECT 3;"}),
            FAST,
        )
    assert caught.value.rule == "out-of-order"
    with pytest.raises(MigrationRefused) as caught:
        apply(db, bundle_of({"V1__a.sql": "SELECT 1;", "V4__d.sql": "SELECT 4;"}), FAST)
    assert caught.value.rule == "missing-migration" and caught.value.file == "V3__c.sql"
    allowed = FAST.with_overrides(allow_out_of_order=True)
    result = apply(
        db, bundle_of({"V1__a.sql": "SELECT 1;", "V2__b.sql": "SELECT 2;", "V3__c.sql": "SELECT 3;"}), allowed
    )
    assert [(e.file, why) for e, why in result.plan.to_apply] == [("V2__b.sql", "out of order")]


def test_several_refusals_are_raised_together(db) -> None:
    apply(db, bundle_of({"V1__a.sql": "SELECT 1;", "V2__b.sql": "SELECT 2;"}), FAST)
    with pytest.raises(ChecksumMismatch) as caught:
        apply(db, bundle_of({"V1__a.sql": "SELECT 10;", "V3__c.sql": "SELECT 3;"}), FAST)
    assert "1 more refusal" in caught.value.message
    assert [r["rule"] for r in caught.value.context["refusals"]] == ["checksum-drift", "missing-migration"]
    # the second is named with its file and rule; the first keeps its own remedy
    assert "  - V2__b.sql: [missing-migration] " in caught.value.message
    assert "(`schemagate info` lists them all)" in caught.value.message
    assert caught.value.file == "V1__a.sql" and caught.value.remedy


def test_transaction_control_inside_a_file_is_refused_before_anything_runs(db) -> None:
    files = {
        "V1__ok.sql": "CREATE TABLE ok (id int);",
        "V2__own_tx.sql": "CREATE TABLE t (id int);\nCOMMIT;\nCREATE TABLE u (id int);\n",
    }
    with pytest.raises(MigrationRefused) as caught:
        apply(db, bundle_of(files), FAST)
    assert (caught.value.file, caught.value.line, caught.value.rule) == (
        "V2__own_tx.sql",
        2,
        "transaction-control",
    )
    assert query(db, "SELECT to_regclass('ok')") == [(None,)]


def test_a_bad_header_is_refused_before_anything_runs(db) -> None:
    files = {
        "V1__ok.sql": "CREATE TABLE ok (id int);",
        "V2__bad.sql": "-- schemagate:set lock_timeout=forever\nSELECT 1;",
    }
    with pytest.raises(ConfigurationError) as caught:
        apply(db, bundle_of(files), FAST)
    assert (caught.value.file, caught.value.line) == ("V2__bad.sql", 1)
    assert query(db, "SELECT to_regclass('ok')") == [(None,)]


# -- baseline and info without a bundle -----------------------------------------------------


def test_baseline_with_the_files_records_each_checksum_so_a_later_edit_is_drift(db) -> None:
    files = {
        "V1__legacy.sql": "CREATE TABLE legacy (id int);",
        "V2__more.sql": "CREATE TABLE legacy2 (id int);",
        "V3__new.sql": "CREATE TABLE fresh (id int);",
    }
    with pytest.raises(MigrationRefused) as caught:  # nothing in the database: V1 and V2 never ran here
        baseline(db, "2", "", FAST, bundle=bundle_of(files))
    assert caught.value.rule == "baseline-empty-database"
    with db.cursor() as cur:
        cur.execute("CREATE TABLE legacy (id int); CREATE TABLE legacy2 (id int)")
    db.commit()
    with pytest.raises(MigrationRefused) as caught:
        baseline(db, "4", "", FAST, bundle=bundle_of(files))
    assert caught.value.rule == "baseline-unknown-version" and "nearest: 2, 3" in caught.value.message
    assert read_history(db, FAST) == []
    db.rollback()

    marked = baseline(db, "2", "", FAST, bundle=bundle_of(files))
    assert [e.file for e in marked] == ["V1__legacy.sql", "V2__more.sql"]
    rows = read_history(db, FAST)
    assert [(r.version, r.type, r.script, r.checksum) for r in rows] == [
        (e.version, "BASELINE", e.file, e.sha256) for e in bundle_of(files).manifest.versioned[:2]
    ]
    db.rollback()
    assert [a.entry.file for a in apply(db, bundle_of(files), FAST).applied] == ["V3__new.sql"]
    edited = dict(files, **{"V1__legacy.sql": "CREATE TABLE legacy (id bigint);"})
    states = {i.file: i.state for i in info(db, bundle_of(edited), FAST)}
    assert states["V1__legacy.sql"] is MigrationState.DRIFTED


def test_baseline_adopts_an_existing_database_and_is_refused_once_there_is_history(db) -> None:
    with db.cursor() as cur:
        cur.execute("CREATE TABLE legacy (id int)")
    db.commit()
    baseline(db, "2", "existing schema", FAST)
    files = {
        "V1__legacy.sql": "CREATE TABLE legacy (id int);",
        "V2__more.sql": "CREATE TABLE legacy2 (id int);",
        "V3__new.sql": "CREATE TABLE fresh (id int);",
    }
    result = apply(db, bundle_of(files), FAST)
    assert [a.entry.file for a in result.applied] == ["V3__new.sql"]
    assert [i.state for i in info(db, bundle_of(files), FAST)] == [
        MigrationState.BASELINE,
        MigrationState.APPLIED,
        MigrationState.BELOW_BASELINE,
        MigrationState.BELOW_BASELINE,
    ]
    with pytest.raises(MigrationRefused) as caught:
        baseline(db, "5", "again", FAST)
    assert caught.value.rule == "baseline-not-empty"
    with pytest.raises(ConfigurationError):
        baseline(db, "v1", "bad version", FAST)
    assert [i.state for i in info(db, None, FAST)] == [MigrationState.BASELINE, MigrationState.APPLIED]


def test_apply_refuses_a_connection_inside_a_transaction(db) -> None:
    query(db, "SELECT 1")
    with db.cursor() as cur:
        cur.execute("SELECT 1")
    with pytest.raises(ConfigurationError):
        apply(db, bundle_of({"V1__a.sql": "SELECT 1;"}), FAST)
    db.rollback()


# -- connections ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (
            "postgresql://app:s3cr%40t@db.example.com:5432/prod?sslmode=verify-full",
            "postgresql://app:***@db.example.com:5432/prod?sslmode=verify-full",
        ),
        ("postgres://app:p@ss/w@rd@host/db", "postgres://app:***@host/db"),
        (
            "postgresql://app@host/db?password=hunter22&sslmode=require",
            "postgresql://app@host/db?password=***&sslmode=require",
        ),
        ("postgresql://host/db", "postgresql://host/db"),
        ("host=db user=app password=hunter22 dbname=prod", "host=db user=app password=*** dbname=prod"),
        ("host=db password = 'with space' dbname=prod", "host=db password = *** dbname=prod"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_a_failed_connection_never_shows_the_password(pg_admin_url: str) -> None:
    url = "postgresql://nobody:Sup3rS3cret@127.0.0.1:1/postgres?sslmode=disable"
    with pytest.raises(ConnectionFailure) as caught:
        connect(url, connect_timeout=2)
    text = str(caught.value) + repr(caught.value.to_dict())
    assert "Sup3rS3cret" not in text and "nobody:***@127.0.0.1:1" in text
    assert caught.value.category.value == "CONNECTION_ERROR" and caught.value.remedy


def test_a_server_that_does_not_answer_fails_within_the_connect_timeout() -> None:
    with socket.socket() as silent:  # accepts TCP connections, never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(ConnectionFailure):
            connect(f"postgresql://u:pw@127.0.0.1:{port}/db?sslmode=disable", connect_timeout=2)
        assert time.monotonic() - started < 5


def test_connect_uses_database_url_then_pg_variables(fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_db)
    conn = connect()
    try:
        info_ = conn.info
        target = {
            "PGHOST": info_.host,
            "PGPORT": str(info_.port),
            "PGUSER": info_.user,
            "PGDATABASE": info_.dbname,
        }
        assert describe_target(conn) == f"{info_.dbname} on {info_.host}:{info_.port} as {info_.user}"
        assert info_.dbname == fresh_db.rsplit("/", 1)[1].split("?")[0]
        assert query(conn, "SELECT current_setting('application_name')") == [("schemagate",)]
    finally:
        conn.close()
    monkeypatch.delenv("DATABASE_URL")
    for name, value in target.items():
        monkeypatch.setenv(name, value)
    conn = connect(application_name="from-env")
    try:
        assert query(conn, "SELECT current_database(), current_setting('application_name')") == [
            (target["PGDATABASE"], "from-env")
        ]
    finally:
        conn.close()
    assert os.environ.get("DATABASE_URL") is None


def test_undo_reverses_the_latest_version_which_becomes_pending_again(db) -> None:
    files = {
        "V1__a.sql": "CREATE TABLE a (id int);",
        "V2__b.sql": "CREATE TABLE b (id int);",
        "U2__b.sql": "DROP TABLE b;",
    }
    bundle = bundle_of(files)
    apply(db, bundle, FAST)
    with pytest.raises(MigrationRefused) as caught:
        undo(db, bundle, FAST, version="1")
    assert caught.value.rule == "undo-target"
    applied = undo(db, bundle, FAST)
    assert applied.entry.file == "U2__b.sql"
    assert query(db, "SELECT to_regclass('b')") == [(None,)]
    assert history(db)[-1] == ("U2__b.sql", "UNDO", True)
    assert [(e.file, why) for e, why in plan(db, bundle, FAST).to_apply] == [("V2__b.sql", "pending")]
    with pytest.raises(MigrationRefused):  # V1 has no undo file
        undo(db, bundle, FAST)
    assert [a.entry.file for a in apply(db, bundle, FAST).applied] == ["V2__b.sql"]


def test_bad_settings_in_the_manifest_are_refused_before_anything_runs(db) -> None:
    from dataclasses import replace

    from executor.bundle import make_bundle
    from tests.executor_worker import migration

    entry, data = migration("V1__t.sql", "CREATE TABLE t (id int);")
    bundle = make_bundle([(replace(entry, settings={"lock_timeout": "forever"}), data)])
    with pytest.raises(ConfigurationError) as caught:
        apply(db, bundle, FAST)
    assert caught.value.file == "V1__t.sql" and "lock_timeout" in caught.value.message
    assert history(db) == []


def test_a_session_terminated_mid_migration_is_rolled_back_and_the_next_apply_finishes(
    db, fresh_db: str
) -> None:
    sleepy = "SELECT pg_sleep(CASE WHEN current_setting('application_name') = 'victim' THEN 10 ELSE 0 END);"
    bundle = bundle_of({"V1__slow.sql": f"CREATE TABLE t (id int);\n{sleepy}\n"})
    victim = connect(fresh_db, application_name="victim")
    killer = psycopg2.connect(fresh_db)
    killer.autocommit = True

    def terminate_when_sleeping() -> None:
        for _ in range(200):
            with killer.cursor() as cur:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = 'victim' "
                    "AND wait_event = 'PgSleep'"
                )
                if cur.fetchall():
                    return
            time.sleep(0.05)

    thread = threading.Thread(target=terminate_when_sleeping)
    thread.start()
    try:
        with pytest.raises((SqlError, ConnectionFailure)) as caught:
            apply(victim, bundle, FAST)
    finally:
        thread.join()
        killer.close()
        victim.close()
    assert caught.value.file == "V1__slow.sql"
    assert history(db) == [] and query(db, "SELECT to_regclass('t')") == [(None,)]
    assert [a.entry.file for a in apply(db, bundle, FAST).applied] == ["V1__slow.sql"]


def test_every_state_on_a_real_database(db) -> None:
    baseline(db, "1", "adopted", FAST, force=True)
    applied = {
        "V2__b.sql": "CREATE TABLE b (id int);",
        "V3__c.sql": "CREATE TABLE c (id int);",
        "V5__e.sql": "CREATE TABLE e (id int);",
        "V7__g.sql": "CREATE TABLE g (id int);",
        "R__view.sql": "CREATE VIEW v AS SELECT 1 AS one;",
    }
    apply(db, bundle_of(applied), FAST)
    applied["V8__h.sql"] = "CREATE INDEX CONCURRENTLY h_idx ON nope (id);"
    with pytest.raises(SqlError):
        apply(db, bundle_of(applied, non_transactional=("V8__h.sql",)), FAST)  # V8 fails: success = false
    later = bundle_of(
        {
            "V1__a.sql": "CREATE TABLE a (id int);",
            "V2__b.sql": "CREATE TABLE b (id bigint);",  # edited after it was applied
            "V4__d.sql": "CREATE TABLE d (id int);",  # below the highest applied version
            "V5__e.sql": "CREATE TABLE e (id int);",
            "U5__e.sql": "DROP TABLE e;",
            "R__view.sql": "CREATE OR REPLACE VIEW v AS SELECT 1 AS one, 2 AS two;",
            "R__new.sql": "CREATE VIEW w AS SELECT 1 AS one;",
        }
    )
    states = {i.file: i.state for i in info(db, later, FAST)}
    S = MigrationState
    assert states == {
        "<< schemagate baseline >>": S.BASELINE,
        "V1__a.sql": S.BELOW_BASELINE,
        "V2__b.sql": S.DRIFTED,
        "V3__c.sql": S.MISSING,
        "V4__d.sql": S.OUT_OF_ORDER,
        "V5__e.sql": S.APPLIED,
        "V7__g.sql": S.FUTURE,  # newer than anything in this bundle
        "V8__h.sql": S.FAILED,
        "R__view.sql": S.OUTDATED,
        "R__new.sql": S.PENDING,
        "U5__e.sql": S.UNDO,
    }
    assert set(states.values()) == set(MigrationState)
    p = plan(db, later, FAST)
    assert sorted_rules(p.refusals) == [
        "checksum-drift",
        "failed-migration",
        "missing-migration",
        "out-of-order",
    ]
    with pytest.raises(ChecksumMismatch):
        apply(db, later, FAST)
