"""Only one executor works on a database at a time: a session-level PostgreSQL advisory lock.

Modelled on Flyway's PostgreSQLAdvisoryLockTemplate, with one deliberate difference: the lock is
*session*-level and taken outside any transaction (``pg_try_advisory_lock`` in autocommit), so no
transaction stays open while ``CREATE INDEX CONCURRENTLY`` waits for older transactions to end
(a transaction-level lock deadlocks there: flyway/flyway#3497).

The key is derived from the history table's qualified name, so executors working on two schemas of
one database do not block each other.  The lock is polled until ``advisory_lock_wait_s``; on
timeout the error names the session holding it.  A session whose client died releases the lock
when PostgreSQL notices (the executor sets ``client_connection_check_interval`` on PostgreSQL 14+
so a dead client is noticed within seconds even during a long statement, and
``idle_session_timeout`` so a session whose network stalled between two migrations ends within
``network_timeout``; ``executor.session.poll_interval`` polls often enough not to be taken for one).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import psycopg2
import psycopg2.extensions

from executor.errors import LockTimeout
from executor.settings import ExecutorSettings

_IDLE = psycopg2.extensions.TRANSACTION_STATUS_IDLE

_HOLDERS = """
SELECT a.pid, a.usename, a.application_name, host(a.client_addr), a.backend_start, a.state, a.query
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.classid::bigint = %s AND l.objid::bigint = %s AND l.pid <> pg_backend_pid()
"""


def lock_key(settings: ExecutorSettings) -> int:
    """A stable signed 64-bit key for the history table ``settings`` names."""
    digest = hashlib.sha256(f"schemagate:{settings.schema}.{settings.table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _run(conn, query: str, params: tuple = ()) -> list[tuple]:
    """Run a query without leaving a transaction open (when the caller had none)."""
    idle_before = conn.get_transaction_status() == _IDLE
    with conn.cursor() as cur:
        cur.execute(query, params)
        rows = cur.fetchall() if cur.description else []
    if idle_before and not conn.autocommit:
        conn.commit()
    return rows


def rollback_if_open(conn) -> None:
    """End an open (or failed) transaction, also one begun with an explicit BEGIN in autocommit."""
    if conn.get_transaction_status() == _IDLE:
        return
    if conn.autocommit:
        with conn.cursor() as cur:
            cur.execute("ROLLBACK")
    else:
        conn.rollback()


def describe_holders(conn, settings: ExecutorSettings) -> list[dict[str, Any]]:
    """Sessions (other than ours) holding the executor's advisory lock, from pg_stat_activity."""
    key = lock_key(settings)
    rows = _run(conn, _HOLDERS, ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF))
    return [
        {
            "pid": r[0],
            "usename": r[1],
            "application_name": r[2],
            "client_addr": r[3],
            "backend_start": r[4].isoformat() if r[4] else None,
            "state": r[5],
            "query": (r[6] or "")[:200],
        }
        for r in rows
    ]


def format_holder(holder: dict[str, Any]) -> str:
    app = holder["application_name"] or "no application_name"
    addr = holder["client_addr"] or "local socket"
    query = " ".join((holder["query"] or "").split())
    return (
        f"pid {holder['pid']} (user {holder['usename']}, {app}, from {addr}, connected since "
        f"{holder['backend_start']}, {holder['state']}: {query[:120]!r})"
    )


class AdvisoryLock:
    """``with AdvisoryLock(conn, settings): ...`` holds the executor's lock for the block.

    ``on_wait(message)`` is called once when the lock is busy (the executor turns it into a
    ``waiting_for_lock`` event).  Raises LockTimeout naming the holder after
    ``settings.advisory_lock_wait_s``.  Released in ``finally``, even if the block raised.
    """

    def __init__(
        self,
        conn,
        settings: ExecutorSettings,
        *,
        on_wait: Callable[[str], None] | None = None,
        poll_interval_s: float = 0.05,
        max_poll_interval_s: float = 1.0,
    ) -> None:
        self.conn = conn
        self.settings = settings
        self.key = lock_key(settings)
        self.on_wait = on_wait
        self.poll_interval_s = poll_interval_s
        self.max_poll_interval_s = max_poll_interval_s
        self.held = False
        self.waited_s = 0.0

    def _try(self) -> bool:
        return bool(_run(self.conn, "SELECT pg_try_advisory_lock(%s)", (self.key,))[0][0])

    def acquire(self) -> None:
        started = time.monotonic()
        deadline = started + self.settings.advisory_lock_wait_s
        interval = self.poll_interval_s
        told = False
        while not self._try():
            now = time.monotonic()
            if not told:
                told = True
                if self.on_wait is not None:
                    holders = describe_holders(self.conn, self.settings)
                    who = "; ".join(format_holder(h) for h in holders) or "a session that just released it"
                    self.on_wait(
                        f"another executor holds the lock on {self.settings.qualified_table}: {who}; "
                        f"waiting up to {self.settings.advisory_lock_wait_s:g}s"
                    )
            if now >= deadline:
                self._timeout(now - started)
            time.sleep(min(interval, max(0.0, deadline - now)))
            interval = min(interval * 1.5, self.max_poll_interval_s)
        self.held = True
        self.waited_s = time.monotonic() - started

    def _timeout(self, waited: float) -> None:
        holders = describe_holders(self.conn, self.settings)
        who = "; ".join(format_holder(h) for h in holders) or "a session that has since released it"
        raise LockTimeout(
            f"the migration lock on {self.settings.qualified_table} is held by another session (waited "
            f"{waited:.1f}s): {who}",
            remedy=(
                "wait for that run to finish and retry, or raise advisory_lock_wait_s; if its client is gone "
                "(a killed process), end the session with SELECT pg_terminate_backend(<pid>) — its open "
                "transaction is rolled back"
            ),
            context={"holders": holders, "waited_s": round(waited, 3), "lock_key": self.key},
        )

    def release(self) -> None:
        if not self.held:
            return
        self.held = False
        if self.conn.closed:
            return  # the session ended, and with it the lock
        try:
            rollback_if_open(self.conn)
            _run(self.conn, "SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg2.Error:
            pass  # a broken connection: the server releases the lock when the session ends

    def __enter__(self) -> AdvisoryLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()
