"""The executor's advisory lock on a real PostgreSQL."""

from __future__ import annotations

import time

import psycopg2
import pytest

from executor.apply import apply
from executor.connection import connect
from executor.errors import LockTimeout
from executor.lock import AdvisoryLock, lock_key
from executor.progress import Event
from executor.settings import ExecutorSettings
from tests.executor_worker import bundle_of
from tests.helpers import fetch_value


def _holds(conn) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()")
        return fetch_value(cur) > 0


def test_the_lock_is_session_level_outside_any_transaction_and_released_even_on_error(fresh_db: str) -> None:
    conn = connect(fresh_db)
    conn.autocommit = True
    try:
        with pytest.raises(RuntimeError), AdvisoryLock(conn, ExecutorSettings()):
            assert _holds(conn)
            assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
            raise RuntimeError("boom")
        assert not _holds(conn)
    finally:
        conn.close()


def test_a_busy_lock_times_out_naming_the_session_that_holds_it(fresh_db: str) -> None:
    holder = connect(fresh_db, application_name="nightly-migration-job")
    holder.autocommit = True
    waiter = connect(fresh_db)
    settings = ExecutorSettings(advisory_lock_wait_s=0.4)
    waited: list[str] = []
    try:
        with AdvisoryLock(holder, settings):
            started = time.monotonic()
            with pytest.raises(LockTimeout) as caught, AdvisoryLock(waiter, settings, on_wait=waited.append):
                pass
            elapsed = time.monotonic() - started
        error = caught.value
        assert 0.4 <= elapsed < 3
        assert f"pid {holder.info.backend_pid}" in error.message
        assert "nightly-migration-job" in error.message and f"user {holder.info.user}" in error.message
        assert error.context["holders"][0]["application_name"] == "nightly-migration-job"
        assert error.remedy is not None and "pg_terminate_backend" in error.remedy
        assert error.category.value == "LOCK_TIMEOUT"
        assert len(waited) == 1 and "nightly-migration-job" in waited[0]
        # released: now the waiter gets it at once
        with AdvisoryLock(waiter, settings) as lock:
            assert lock.waited_s < 0.2
    finally:
        holder.close()
        waiter.close()


def test_a_waiter_gets_the_lock_when_the_holder_finishes(fresh_db: str) -> None:
    holder = connect(fresh_db)
    holder.autocommit = True
    waiter = connect(fresh_db)
    lock = AdvisoryLock(holder, ExecutorSettings())
    lock.acquire()
    events: list[Event] = []
    bundle = bundle_of({"V1__t.sql": "CREATE TABLE t (id int);"})
    import threading

    timer = threading.Timer(0.3, lock.release)
    timer.start()
    try:
        result = apply(waiter, bundle, ExecutorSettings(advisory_lock_wait_s=10), on_event=events.append)
    finally:
        timer.join()
        holder.close()
        waiter.close()
    assert [a.entry.file for a in result.applied] == ["V1__t.sql"]
    kinds = [e.kind for e in events]
    assert kinds[:2] == ["waiting_for_lock", "lock_acquired"]
    assert events[1].duration_ms is not None and events[1].duration_ms >= 250


def test_histories_in_two_schemas_do_not_block_each_other(fresh_db: str) -> None:
    a, b = connect(fresh_db), connect(fresh_db)
    a.autocommit = b.autocommit = True
    one, two = ExecutorSettings(schema="one"), ExecutorSettings(schema="two", advisory_lock_wait_s=0.2)
    assert lock_key(one) != lock_key(two)
    try:
        with AdvisoryLock(a, one), AdvisoryLock(b, two) as second:
            assert second.held
    finally:
        a.close()
        b.close()
