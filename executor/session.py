"""The executor's session on one connection, shared by apply, undo, repair and baseline.

``autocommit`` runs on an idle connection in autocommit (the executor opens its own transactions);
``bounded`` makes every query wait at most ``network_timeout`` for its answer and turns a lost
connection into a ``ConnectionFailure``; ``executor_session`` adds the session's server-side bounds
(idle timeouts, the dead-client check, TCP keepalives), reset afterwards; ``NoticeSink`` turns the
server's notices into ``notice`` events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

import psycopg2
import psycopg2.extensions

from executor.connection import NETWORK_OPTIONS, ResponseDeadline, connection_errors, is_connection_lost
from executor.errors import ConfigurationError
from executor.lock import rollback_if_open
from executor.progress import Event
from executor.settings import ExecutorSettings
from executor.vocabulary import EventKind

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

IDLE = psycopg2.extensions.TRANSACTION_STATUS_IDLE
DEAD_CLIENT_CHECK = "2s"  # client_connection_check_interval (PostgreSQL 14+) for the executor's session


@contextmanager
def autocommit(conn: Connection, *, exclusive: bool) -> Iterator[None]:
    """Run in autocommit on an idle connection; restores the caller's setting afterwards.

    ``exclusive``: the caller must not be inside a transaction (apply, repair, baseline).  A read
    (plan, info) inside the caller's transaction is allowed and left to the caller.
    """
    if conn.get_transaction_status() != IDLE:
        if exclusive:
            raise ConfigurationError(
                "the connection has an open transaction; the executor manages its own transactions",
                remedy="commit or roll back first, or pass a fresh connection (executor.connection.connect)",
            )
        yield
        return
    saved = conn.autocommit
    conn.autocommit = True
    try:
        yield
    finally:
        if not conn.closed:
            try:
                rollback_if_open(conn)
                conn.autocommit = saved
            except psycopg2.Error:
                pass


def session_timeouts(conn: Connection, settings: ExecutorSettings) -> dict[str, str]:
    """The server-side bounds of the executor's session (``executor.apply``'s docstring: bounded
    waits)."""
    version = conn.server_version
    values: dict[str, str] = {}
    if version >= 140000:  # notice a vanished client during a long statement
        values["client_connection_check_interval"] = DEAD_CLIENT_CHECK
    network = settings.network_timeout_s
    if network:
        ms = str(int(network * 1000))
        values["idle_in_transaction_session_timeout"] = ms
        if version >= 140000:
            values["idle_session_timeout"] = ms  # the session holds the advisory lock between migrations
        values["tcp_keepalives_idle"] = NETWORK_OPTIONS["keepalives_idle"]
        values["tcp_keepalives_interval"] = NETWORK_OPTIONS["keepalives_interval"]
        values["tcp_keepalives_count"] = NETWORK_OPTIONS["keepalives_count"]
        if version >= 120000:
            values["tcp_user_timeout"] = NETWORK_OPTIONS["tcp_user_timeout"]
    return values


@contextmanager
def bounded(conn: Connection, settings: ExecutorSettings, doing: str) -> Iterator[ResponseDeadline]:
    """Every query inside waits at most network_timeout for its answer (the runner allows a migration's
    statements their statement_timeout on top), and a lost connection is a ConnectionFailure."""
    deadline = ResponseDeadline(conn)
    saved = conn.cursor_factory
    conn.cursor_factory = deadline.cursor_factory(
        settings.network_timeout_s, f"{doing} (a query of its own)", base=saved
    )
    try:
        with connection_errors(doing, conn, deadline=deadline):
            yield deadline
    finally:
        conn.cursor_factory = saved
        deadline.close()


def poll_interval(settings: ExecutorSettings) -> float:
    """How often to ask for a busy advisory lock: often enough for idle_session_timeout."""
    network = settings.network_timeout_s
    return 1.0 if network is None else min(1.0, network / 3)


@contextmanager
def executor_session(conn: Connection, settings: ExecutorSettings, doing: str) -> Iterator[ResponseDeadline]:
    """``bounded`` plus the session's server-side timeouts (reset afterwards); on an idle autocommit
    connection (inside ``autocommit``)."""
    with bounded(conn, settings, doing) as deadline:
        values = session_timeouts(conn, settings)
        if values:
            try:
                with conn.cursor() as cur:
                    cur.execute(
                        "SELECT " + ", ".join("set_config(%s, %s, false)" for _ in values),
                        [x for pair in values.items() for x in pair],
                    )
            except psycopg2.Error as exc:
                if is_connection_lost(exc, conn):
                    raise
                rollback_if_open(conn)  # an old server or a pooler that refuses them: run without
                values = {}
        try:
            yield deadline
        finally:
            if values and not conn.closed:
                with suppress(psycopg2.Error):
                    rollback_if_open(conn)
                    with conn.cursor() as cur:
                        cur.execute("".join(f"RESET {name};" for name in values))


class NoticeSink:
    """Stands in for ``conn.notices``: psycopg2 appends every server notice here."""

    def __init__(self, emit: Callable[[Event], None]) -> None:
        self.emit = emit
        self.file: str | None = None
        self.collected: list[str] = []

        self.held: list[str] | None = None  # while one attempt's notices wait for its outcome

    def append(self, notice: str) -> None:
        text = " ".join(notice.split())
        if self.held is not None:
            self.held.append(text)
            return
        self.collected.append(text)
        self.emit(Event(EventKind.NOTICE, file=self.file, message=text))

    def hold(self) -> None:
        """Keep the notices that arrive from now on until ``release`` (the attempt counted) or
        ``discard`` (it failed and the statement-by-statement re-run will send them again)."""
        self.held = []

    def release(self) -> None:
        held, self.held = self.held or [], None
        for text in held:
            self.append(text)

    def discard(self) -> None:
        self.held = None


@contextmanager
def notices_to(conn: Connection, sink: NoticeSink) -> Iterator[None]:
    """Send the server's notices to ``sink`` while inside: psycopg2 calls the ``append`` of whatever
    object ``conn.notices`` is (the stubs type it a list; a list subclass would bypass ``append``)."""
    saved = conn.notices
    conn.notices = sink  # type: ignore[assignment]
    try:
        yield
    finally:
        conn.notices = saved
