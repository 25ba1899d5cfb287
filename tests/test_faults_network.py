"""A stalled or cut network, on a real PostgreSQL behind a TCP proxy (tests/tcp_proxy.py).

The promise: a stalled run frees its locks within ``network_timeout`` (PostgreSQL ends a session
that says nothing for that long, idle in a transaction or holding the migration lock), the client
gives up after ``statement_timeout + network_timeout`` (for a transactional file sent as one message,
``statement_timeout`` for each of its statements) with a CONNECTION_ERROR, and the database holds
neither the migration nor its history row.  A connection lost before the lock (planning)
is the same categorized error, never a psycopg2 traceback.

The waits below are bounded by the promise plus a wide margin (the machine is shared): they
check that the lock is released at all within the documented bound, not how fast.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg2
import pytest

from executor.apply import ApplyHooks, apply, info, plan
from executor.connection import ResponseDeadline, connect
from executor.errors import ConnectionFailure
from executor.settings import ExecutorSettings
from schemagate.cli import main
from tests.database_faults import history_rows, rows, wait_until
from tests.executor_worker import bundle_of
from tests.helpers import fetch_value
from tests.tcp_proxy import TcpProxy

# the shortest bounds the settings accept (network_timeout >= 1s) that the migrations below still
# finish in: the stall tests wait for them to fire, so these set how long the tests take
NETWORK_TIMEOUT_S = 2  # short, yet above what a statement takes on a loaded machine
STATEMENT_TIMEOUT_S = 2
MARGIN_S = 20  # scheduling on a shared machine, not part of the promise
STALLED = ExecutorSettings(
    network_timeout=f"{NETWORK_TIMEOUT_S}s",
    statement_timeout=f"{STATEMENT_TIMEOUT_S}s",
    lock_retry_backoff_s=0.05,
    advisory_lock_wait_s=10,
)

ACCOUNTS = {
    "V1__create_accounts.sql": """\
CREATE TABLE accounts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       text NOT NULL,
    plan       text NOT NULL DEFAULT 'free',
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO accounts (name, plan) SELECT 'account ' || g, CASE WHEN g % 7 = 0 THEN 'pro' ELSE 'free' END
FROM generate_series(1, 2000) AS g;
""",
    "V2__add_accounts_billing_email.sql": """\
-- expand: a nullable column, then backfill it from the owner's address
ALTER TABLE accounts ADD COLUMN billing_email text;
UPDATE accounts SET billing_email = 'billing+' || id || '@example.com' WHERE plan = 'pro';
""",
    "V3__create_invoices.sql": """\
CREATE TABLE invoices (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    total      numeric(12, 2) NOT NULL
);
""",
}


def exclusive_lock_holders(url: str, table: str) -> list[int]:
    return [
        pid
        for (pid,) in rows(
            url,
            "SELECT pid FROM pg_locks WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock' "
            "AND granted AND relation = to_regclass(%s)",
            (table,),
        )
    ]


def advisory_lock_holders(url: str) -> list[int]:
    return [
        pid
        for (pid,) in rows(
            url,
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
    ]


def columns(url: str, table: str) -> list[str]:
    return [
        c
        for (c,) in rows(
            url,
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped ORDER BY attnum",
            (table,),
        )
    ]


@pytest.fixture
def accounts_db(fresh_db: str) -> str:
    """V1 applied directly (not through the proxy)."""
    conn = connect(fresh_db)
    try:
        apply(conn, bundle_of({"V1__create_accounts.sql": ACCOUNTS["V1__create_accounts.sql"]}), STALLED)
    finally:
        conn.close()
    return fresh_db


def apply_in_thread(url: str, settings: ExecutorSettings = STALLED):
    outcome: dict = {}

    def run() -> None:
        try:
            conn = connect(url, application_name="stalled-executor")
        except Exception as exc:
            outcome["error"] = exc
            return
        try:
            outcome["result"] = apply(conn, bundle_of(ACCOUNTS), settings)
        except Exception as exc:
            outcome["error"] = exc
        finally:
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.mark.slow
def test_a_stall_between_two_statements_frees_the_lock_within_network_timeout(accounts_db: str) -> None:
    # statement by statement, as a file with lock_retries = 0 and the re-run that locates a failure go
    # (otherwise a transactional file is one message: see the test below)
    one_by_one = STALLED.with_overrides(lock_retries=0)
    with TcpProxy(accounts_db) as proxy:
        # given a network path that stops delivering anything right after ALTER TABLE took its lock
        proxy.stall_when(b"UPDATE accounts SET billing_email")
        thread, outcome = apply_in_thread(proxy.url, one_by_one)
        wait_until(proxy.stalled.is_set, 30, "the proxy to stall")
        holders = exclusive_lock_holders(accounts_db, "accounts")
        assert holders, (
            "the migration's ALTER TABLE should hold ACCESS EXCLUSIVE while the network is stalled"
        )

        # then PostgreSQL ends the silent session within network_timeout, and with it the lock
        wait_until(
            lambda: not exclusive_lock_holders(accounts_db, "accounts"),
            NETWORK_TIMEOUT_S + MARGIN_S,
            "the ACCESS EXCLUSIVE lock to be released",
        )
        assert not advisory_lock_holders(accounts_db)  # and the migration lock with it

        # and the client gives up after statement_timeout + network_timeout, categorized
        thread.join(timeout=STATEMENT_TIMEOUT_S + NETWORK_TIMEOUT_S + MARGIN_S)
        assert not thread.is_alive(), "the executor is still waiting for the stalled server"
    error = outcome["error"]
    assert isinstance(error, ConnectionFailure) and error.category.value == "CONNECTION_ERROR"
    assert error.file == "V2__add_accounts_billing_email.sql"
    assert "no answer from the server" in error.message and "network path stalled" in error.message
    assert error.context["stalled"] is True
    # the database holds neither the migration nor its history row
    assert columns(accounts_db, "accounts") == ["id", "name", "plan", "created_at"]
    assert history_rows(accounts_db) == [("V1__create_accounts.sql", True)]

    # and the next run, on a working network, applies the rest
    conn = connect(accounts_db)
    try:
        assert [a.entry.file for a in apply(conn, bundle_of(ACCOUNTS), STALLED).applied] == list(ACCOUNTS)[1:]
    finally:
        conn.close()
    assert rows(accounts_db, "SELECT count(*) FROM accounts WHERE billing_email IS NOT NULL") == [(285,)]


@pytest.mark.slow
def test_a_stall_while_the_one_message_of_a_migration_is_sent_frees_the_lock_and_says_so(
    accounts_db: str,
) -> None:
    with TcpProxy(accounts_db) as proxy:
        # a transactional file is one message (BEGIN ... its statements, history row, COMMIT): the path
        # stalls as it is sent, so the server never reads it, and the session holds the migration lock
        proxy.stall_when(b"UPDATE accounts SET billing_email")
        thread, outcome = apply_in_thread(proxy.url)
        wait_until(proxy.stalled.is_set, 30, "the proxy to stall")
        wait_until(
            lambda: not advisory_lock_holders(accounts_db),
            NETWORK_TIMEOUT_S + MARGIN_S,
            "the migration lock to be released (idle_session_timeout)",
        )
        # the client allows each statement of the message its statement_timeout, plus network_timeout
        thread.join(timeout=3 * STATEMENT_TIMEOUT_S + NETWORK_TIMEOUT_S + MARGIN_S)
        assert not thread.is_alive(), "the executor is still waiting for the stalled server"
    error = outcome["error"]
    assert isinstance(error, ConnectionFailure) and error.category.value == "CONNECTION_ERROR"
    assert error.file == "V2__add_accounts_billing_email.sql"
    assert "no answer from the server" in error.message and "network path stalled" in error.message
    # COMMIT was in the message: the client cannot know, and says so rather than guess
    assert (
        error.remedy is not None
        and "may or may not be applied" in error.message
        and "schemagate info" in error.remedy
    )
    assert error.context["stalled"] is True and error.context["may_be_applied"] is True
    assert columns(accounts_db, "accounts") == ["id", "name", "plan", "created_at"]
    assert history_rows(accounts_db) == [("V1__create_accounts.sql", True)]


@pytest.mark.slow
def test_a_stall_between_migrations_frees_the_migration_lock(accounts_db: str) -> None:
    with TcpProxy(accounts_db) as proxy:
        # V2 is committed; the BEGIN of V3 never arrives: the session is idle, holding the advisory lock
        proxy.stall_when(b"CREATE TABLE invoices")
        thread, outcome = apply_in_thread(proxy.url)
        wait_until(proxy.stalled.is_set, 30, "the proxy to stall")
        wait_until(
            lambda: not advisory_lock_holders(accounts_db),
            NETWORK_TIMEOUT_S + MARGIN_S,
            "the migration lock to be released (idle_session_timeout)",
        )
        thread.join(timeout=STATEMENT_TIMEOUT_S + NETWORK_TIMEOUT_S + MARGIN_S)
        assert not thread.is_alive()
    error = outcome["error"]
    assert isinstance(error, ConnectionFailure) and error.file == "V3__create_invoices.sql"
    assert history_rows(accounts_db) == [
        ("V1__create_accounts.sql", True),
        ("V2__add_accounts_billing_email.sql", True),
    ]
    assert rows(accounts_db, "SELECT to_regclass('invoices')") == [(None,)]


def test_a_cut_between_two_statements_rolls_the_migration_back(accounts_db: str) -> None:
    with TcpProxy(accounts_db) as proxy:
        proxy.cut_when(b"UPDATE accounts SET billing_email")
        thread, outcome = apply_in_thread(proxy.url)
        thread.join(timeout=MARGIN_S)
        assert proxy.cut.is_set() and not thread.is_alive()
    error = outcome["error"]
    assert isinstance(error, ConnectionFailure) and error.file == "V2__add_accounts_billing_email.sql"
    assert error.context["stalled"] is False
    wait_until(
        lambda: not exclusive_lock_holders(accounts_db, "accounts"), MARGIN_S, "the lock to be released"
    )
    assert columns(accounts_db, "accounts") == ["id", "name", "plan", "created_at"]
    assert history_rows(accounts_db) == [("V1__create_accounts.sql", True)]


# -- losing the connection before the lock ------------------------------------------------------


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write(tmp_path / "migrations", ACCOUNTS)
    monkeypatch.chdir(tmp_path)
    for var in ("DATABASE_URL", "PGHOST", "PGSERVICE", "PGDATABASE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@pytest.mark.parametrize(
    ("command", "cut_at"),
    [
        (["plan"], b"ORDER BY installed_rank"),  # reading the history
        (["info"], b"ORDER BY installed_rank"),
        (["info", "--json"], b"pg_index"),  # looking for INVALID indexes
        (["apply", "--yes"], b"ORDER BY installed_rank"),  # the quick "already applied?" look
        (["apply", "--yes"], b"pg_try_advisory_lock"),  # about to take the lock
        (["repair"], b"pg_try_advisory_lock"),
        (["baseline", "--version", "1"], b"pg_try_advisory_lock"),
    ],
)
def test_losing_the_connection_before_the_lock_is_a_connection_error(
    project: Path, accounts_db: str, capsys, command: list[str], cut_at: bytes
) -> None:
    with TcpProxy(accounts_db) as proxy:
        proxy.cut_when(cut_at)
        code = main([*command, "--database-url", proxy.url])
        assert proxy.cut.is_set()
    captured = capsys.readouterr()
    assert code == 1, captured.out + captured.err
    assert "error: lost the connection to the database while" in captured.err
    assert "remedy:" in captured.err
    assert history_rows(accounts_db) == [("V1__create_accounts.sql", True)]  # nothing was changed


@pytest.mark.parametrize("call", [plan, info])
def test_the_executor_api_raises_a_connection_failure_while_planning(accounts_db: str, call) -> None:
    with TcpProxy(accounts_db) as proxy:
        proxy.cut_when(b"ORDER BY installed_rank")
        conn = connect(proxy.url)
        try:
            with pytest.raises(ConnectionFailure) as caught:
                call(conn, bundle_of(ACCOUNTS), STALLED)
        finally:
            conn.close()
    assert caught.value.category.value == "CONNECTION_ERROR"
    assert caught.value.message.startswith("lost the connection to the database while reading the history")


def test_the_client_gives_up_on_an_answer_that_is_overdue(fresh_db: str) -> None:
    with TcpProxy(fresh_db) as proxy:
        proxy.stall_when(b"SELECT 'never answered'")
        conn = connect(proxy.url)
        deadline = ResponseDeadline(conn)
        try:
            with conn.cursor() as cur:
                with deadline.bound(30, "warming up"):
                    cur.execute("SELECT 1")  # answered: the bound is lifted again
                with (
                    pytest.raises(psycopg2.OperationalError),
                    deadline.bound(1, "waiting for the stalled one"),
                ):
                    cur.execute("SELECT 'never answered'")
        finally:
            deadline.close()
            conn.close()
    assert deadline.overdue is not None and deadline.overdue.what == "waiting for the stalled one"


def test_the_executors_session_is_bounded_while_it_runs_and_reset_afterwards(fresh_db: str) -> None:
    seen: dict[str, str] = {}
    names = ("idle_in_transaction_session_timeout", "idle_session_timeout", "tcp_keepalives_idle")

    def during(conn, entry) -> None:
        with conn.cursor() as cur:
            for name in names:
                cur.execute("SELECT current_setting(%s)", (name,))
                seen[name] = fetch_value(cur)

    conn = connect(fresh_db)
    try:
        params = conn.get_dsn_parameters()
        assert (params["keepalives"], params["keepalives_idle"], params["tcp_user_timeout"]) == (
            "1",
            "15",
            "30000",
        )
        apply(
            conn,
            bundle_of({"V1__create_accounts.sql": ACCOUNTS["V1__create_accounts.sql"]}),
            STALLED,
            hooks=ApplyHooks(before_migration=during),
        )
        with conn.cursor() as cur:
            cur.execute("SELECT " + ", ".join("current_setting(%s)" for _ in names), names)
            after = cur.fetchone()
        conn.rollback()
    finally:
        conn.close()
    assert seen == {
        "idle_in_transaction_session_timeout": f"{NETWORK_TIMEOUT_S}s",
        "idle_session_timeout": f"{NETWORK_TIMEOUT_S}s",
        "tcp_keepalives_idle": "15",
    }
    assert after is not None and after[:2] == ("0", "0")  # the caller's connection is left as it was


def test_a_long_preparation_under_the_lock_does_not_let_the_idle_timeout_end_the_session(
    fresh_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every pending file is read and checked before the first runs, holding the migration lock; on
    a long history on a busy machine that outlasts idle_session_timeout (= network_timeout), which
    must end only a client that stalls (seen: 20,000 files under load).  A client slowed down while
    it prepares still applies everything."""
    import time as clock

    from executor import apply as core
    from executor.prepare import prepare as real  # what executor.apply calls by this name

    def slow_prepare(*args, **kwargs):  # a busy machine: 0.2 s per file, 2.4 s in all
        clock.sleep(0.2)
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "prepare", slow_prepare)
    files = {
        f"V{n:03d}__create_ledger_{n}.sql": (
            f"CREATE TABLE ledger_{n} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, amount_cents bigint NOT NULL);\n"
            f"INSERT INTO ledger_{n} (amount_cents) SELECT g * 100 FROM generate_series(1, 50) AS g;\n"
        )
        for n in range(1, 13)
    }
    settings = ExecutorSettings(network_timeout="1s", statement_timeout="5s")
    conn = connect(fresh_db)
    try:
        result = apply(conn, bundle_of(files), settings)
    finally:
        conn.close()
    assert len(result.applied) == 12
    assert history_rows(fresh_db) == [(name, True) for name in files]
    assert rows(fresh_db, "SELECT count(*) FROM ledger_12") == [(50,)]
