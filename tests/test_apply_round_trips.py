"""One round trip per transactional migration, counted on the wire (tests/tcp_proxy.py reads the
client's protocol messages), and what happens when that one message fails: the statement-by-statement
re-run locates the failure, the database is left as it was, a lock timeout goes through the retry
loop, and notices are reported once."""

from __future__ import annotations

import psycopg2
import pytest

from executor.apply import ApplyHooks, Event, apply
from executor.connection import connect
from executor.errors import LockTimeout, SqlError
from executor.settings import ExecutorSettings
from tests.database_faults import catalog_snapshot, history_rows, rows
from tests.executor_worker import bundle_of
from tests.helpers import fetch_value
from tests.histories import flyway_billing
from tests.tcp_proxy import TcpProxy

FAST = ExecutorSettings(lock_retry_backoff_s=0.05, advisory_lock_wait_s=5)
CONCURRENT = "V008__index_invoices_issued_at.sql"  # CREATE INDEX CONCURRENTLY: transactional: false


def billing_history() -> dict[str, str]:
    return {name.rpartition("/")[2]: sql for name, sql in flyway_billing.FILES.items()}


class PerMigration:
    """The client's messages of each migration: those sent between its start and its end event."""

    def __init__(self, proxy: TcpProxy) -> None:
        self.proxy = proxy
        self.events: list[Event] = []
        self.sent: dict[str, list[tuple[str, bytes]]] = {}
        self._from = 0

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if event.kind == "start":
            self._from = len(self.proxy.messages)
        elif event.kind in ("applied", "failed"):
            assert event.file is not None, event
            self.sent[event.file] = self.proxy.messages[self._from :]

    def queries(self, file: str) -> list[str]:
        return [body.rstrip(b"\0").decode() for kind, body in self.sent[file] if kind == "Q"]


def test_each_transactional_migration_of_a_real_history_is_one_message(fresh_db: str) -> None:
    files = billing_history()
    with TcpProxy(fresh_db) as proxy:
        conn = connect(proxy.url)
        try:
            seen = PerMigration(proxy)
            result = apply(conn, bundle_of(files, non_transactional=(CONCURRENT,)), FAST, on_event=seen)
        finally:
            conn.close()
    assert [a.entry.file for a in result.applied] == list(files)
    transactional = [f for f in files if f != CONCURRENT]
    assert {f: len(seen.queries(f)) for f in transactional} == dict.fromkeys(transactional, 1)
    # only simple queries: no extended-protocol messages that would be round trips of their own
    assert all(kind == "Q" for f in transactional for kind, _ in seen.sent[f])
    # the one message holds the whole protocol: BEGIN, the settings, the statements, the history row, COMMIT
    [message] = seen.queries("V018__invoice_number_sequence.sql")
    assert message.startswith("BEGIN;") and message.rstrip().endswith("COMMIT;")
    assert "set_config('lock_timeout'" in message and 'INSERT INTO "public"."schemagate_history"' in message
    assert "UPDATE invoices SET number = nextval('invoice_number_seq')" in message
    # the non-transactional file still runs statement by statement, with its index checks
    assert len(seen.queries(CONCURRENT)) > 1
    # and the result is what it was: every file applied with its history row
    assert history_rows(fresh_db) == [(f, True) for f in files]
    assert rows(
        fresh_db, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'invoices_issued_at_idx'::regclass"
    ) == [(True,)]


FAILING_THIRD = """\
-- split the customer's address into its own table
CREATE TABLE addresses (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint NOT NULL REFERENCES accounts (id),
    line1       text NOT NULL
);
ALTER TABLE accounts ADD COLUMN address_id bigint;
INSERT INTO addresses (account_id, line1)
SELECT id, coalesce(display_name, 'unknown') || ', '
    || upper(country_code::text)
FROM accounts WHERE no_such_column IS NULL;
CREATE INDEX addresses_account_id_idx ON addresses (account_id);
COMMENT ON TABLE addresses IS 'one row per postal address';
"""


def test_a_failure_in_statement_3_of_5_is_located_and_leaves_the_database_as_it_was(fresh_db: str) -> None:
    base = {k: v for k, v in billing_history().items() if k.startswith(("V001", "V002", "V006"))}
    conn = connect(fresh_db)
    try:
        apply(conn, bundle_of(base), FAST)
    finally:
        conn.close()
    before = catalog_snapshot(fresh_db)
    before_history = history_rows(fresh_db)
    files = {**base, "V007__addresses.sql": FAILING_THIRD}
    with TcpProxy(fresh_db) as proxy:
        conn = connect(proxy.url)
        try:
            seen = PerMigration(proxy)
            with pytest.raises(SqlError) as caught:
                apply(conn, bundle_of(files), FAST, on_event=seen)
            # the connection is clean and usable afterwards: no transaction left open or aborted
            assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM accounts")
                assert cur.fetchone() == (0,)
            conn.rollback()
        finally:
            conn.close()
    error = caught.value
    # the third statement's line and column, as the statement-by-statement path reports them
    assert (error.file, error.line, error.column) == ("V007__addresses.sql", 11, 21)
    assert error.context["sqlstate"] == "42703" and error.context["statement_line"] == 8
    assert 'column "no_such_column" does not exist' in error.message
    assert "V007__addresses.sql was rolled back" in error.message
    assert catalog_snapshot(fresh_db) == before and history_rows(fresh_db) == before_history
    # one message, then its ROLLBACK, then the re-run: BEGIN + settings + statement 1, 2, 3, ROLLBACK
    queries = seen.queries("V007__addresses.sql")
    assert queries[0].startswith("BEGIN;") and queries[0].rstrip().endswith("COMMIT;")
    assert queries[1:] == [
        "ROLLBACK",
        *[q for q in queries[2:5]],
        "ROLLBACK",
    ]
    assert "CREATE TABLE addresses" in queries[2] and queries[3].startswith("ALTER TABLE accounts")
    assert queries[4].startswith("INSERT INTO addresses")
    assert [e.kind for e in seen.events if e.file == "V007__addresses.sql"] == ["start", "failed"]


def test_a_lock_timeout_in_the_one_message_goes_through_the_retry_loop(fresh_db: str) -> None:
    files = {
        "V1__accounts.sql": billing_history()["V001__create_accounts.sql"],
        "V2__accounts_country.sql": "-- schemagate:set lock_timeout=100ms lock_retries=2\n"
        "CREATE TABLE countries (code char(2) PRIMARY KEY, name text NOT NULL);\n"
        "ALTER TABLE accounts ADD COLUMN country_code char(2) REFERENCES countries (code);\n",
    }
    conn = connect(fresh_db)
    try:
        apply(conn, bundle_of({"V1__accounts.sql": files["V1__accounts.sql"]}), FAST)
    finally:
        conn.close()
    blocker = psycopg2.connect(fresh_db)
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE accounts IN ACCESS SHARE MODE")  # an open transaction reading accounts
        with TcpProxy(fresh_db) as proxy:
            conn = connect(proxy.url)
            try:
                seen = PerMigration(proxy)
                with pytest.raises(LockTimeout) as caught:
                    apply(conn, bundle_of(files), FAST, on_event=seen)
            finally:
                conn.close()
        kinds = [e.kind for e in seen.events if e.file == "V2__accounts_country.sql"]
        assert kinds == ["start", "retry", "retry", "failed"]
        # the first attempt was the one message; the retries ran statement by statement
        queries = seen.queries("V2__accounts_country.sql")
        assert queries[0].startswith("BEGIN;") and queries[0].rstrip().endswith("COMMIT;")
        assert sum(q.startswith("BEGIN;") for q in queries) == 3
        error = caught.value
        assert error.context["attempts"] == 3 and error.context["sqlstate"] == "55P03"
        assert (error.file, error.line) == ("V2__accounts_country.sql", 3)  # the ALTER TABLE
        assert error.remedy is not None and "lock_timeout" in error.remedy
        assert rows(fresh_db, "SELECT to_regclass('countries')") == [(None,)]
        assert history_rows(fresh_db) == [("V1__accounts.sql", True)]

        # the blocker finishes when the one message has timed out, before the back-off: the retry applies it
        events: list[Event] = []

        def on_event(event: Event) -> None:
            events.append(event)
            if event.kind == "retry":
                blocker.rollback()

        conn = connect(fresh_db)
        try:
            with blocker.cursor() as cur:
                cur.execute("LOCK TABLE accounts IN ACCESS SHARE MODE")
            result = apply(conn, bundle_of(files), FAST, on_event=on_event)
        finally:
            conn.close()
        assert result.applied[0].attempts == 2
        assert [e.kind for e in events if e.file == "V2__accounts_country.sql"] == [
            "start",
            "retry",
            "applied",
        ]
        assert history_rows(fresh_db) == [("V1__accounts.sql", True), ("V2__accounts_country.sql", True)]
    finally:
        blocker.close()


NOTICING = """\
DO $$ BEGIN RAISE NOTICE 'backfilling % accounts', (SELECT count(*) FROM accounts); END $$;
UPDATE accounts SET display_name = split_part(email, '@', 1) WHERE display_name IS NULL;
DO $$ BEGIN RAISE NOTICE 'backfill done'; END $$;
"""


def test_notices_are_reported_once_whether_the_one_message_succeeds_or_is_re_run(fresh_db: str) -> None:
    accounts = billing_history()["V001__create_accounts.sql"]
    files = {"V1__accounts.sql": accounts, "V2__backfill_names.sql": NOTICING}
    conn = connect(fresh_db)
    try:
        events: list[Event] = []
        result = apply(conn, bundle_of(files), FAST, on_event=events.append)
    finally:
        conn.close()
    expected = ["NOTICE: backfilling 0 accounts", "NOTICE: backfill done"]
    assert [e.message for e in events if e.kind == "notice"] == expected
    assert result.applied[1].notices == expected

    # failing after its first notice: the one message and the re-run both raise it; reported once
    failing = {**files, "V3__backfill_again.sql": NOTICING.replace("display_name IS NULL", "nope IS NULL")}
    conn = connect(fresh_db)
    try:
        events = []
        with pytest.raises(SqlError) as caught:
            apply(conn, bundle_of(failing), FAST, on_event=events.append)
    finally:
        conn.close()
    assert [(e.file, e.message) for e in events if e.kind == "notice"] == [
        ("V3__backfill_again.sql", "NOTICE: backfilling 0 accounts")
    ]
    assert (caught.value.line, caught.value.context["sqlstate"]) == (2, "42703")
    assert history_rows(fresh_db) == [("V1__accounts.sql", True), ("V2__backfill_names.sql", True)]


def test_with_a_before_commit_hook_commit_is_a_second_message_after_the_hook(fresh_db: str) -> None:
    files = {k: v for k, v in billing_history().items() if k.startswith(("V001", "V002"))}
    seen_in_hook: list[tuple[str, int]] = []

    def before_commit(cur, entry) -> None:
        # still inside the migration's transaction: its history row is visible, not yet committed
        cur.execute("SELECT count(*) FROM public.schemagate_history WHERE script = %s", (entry.script,))
        seen_in_hook.append((entry.file, fetch_value(cur)))
        assert history_rows(fresh_db) == [(f, True) for f in list(files)[: len(seen_in_hook) - 1]]

    with TcpProxy(fresh_db) as proxy:
        conn = connect(proxy.url)
        try:
            seen = PerMigration(proxy)
            apply(conn, bundle_of(files), FAST, on_event=seen, hooks=ApplyHooks(before_commit=before_commit))
        finally:
            conn.close()
    assert seen_in_hook == [(f, 1) for f in files]
    for f in files:
        first, *rest = seen.queries(f)
        assert first.startswith("BEGIN;") and "COMMIT" not in first
        assert rest[-1] == "COMMIT"  # the hook's own query in between
    assert history_rows(fresh_db) == [(f, True) for f in files]


def test_apply_yes_reads_the_history_once_before_the_lock_and_once_under_it(
    fresh_db: str, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``apply --yes`` shows the plan the executor makes under the lock: the history is read by the
    look that finds something to do, then under the lock, and not a third time to plan before it."""
    from schemagate.cli import main

    root = flyway_billing.write(tmp_path / "db" / "migration")
    with TcpProxy(fresh_db) as proxy:
        code = main(["apply", "--migrations", str(root), "--database-url", proxy.url, "--yes"])
        queries = proxy.queries()
    out = capsys.readouterr().out
    assert code == 0, out
    reads = [q for q in queries if q.startswith("SELECT installed_rank") and "schemagate_history" in q]
    assert len(reads) == 2, reads
    assert f"{len(flyway_billing.FILES)} migrations to apply to" in out and "applying:" in out
    assert out.index("to apply to") < out.index("applying:")
