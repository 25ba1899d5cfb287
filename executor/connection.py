"""Connecting to PostgreSQL: libpq URLs or key=value DSNs, the usual PG* variables, TLS settings
passed through (sslmode, sslrootcert, ...), bounded waits, and passwords never shown.

Passwords.  A URL's password is masked (``***``) before anything can show the URL, also when it
holds characters that should have been percent-encoded: ``?`` and ``#`` (libpq reads them as part
of the password), ``@`` and ``/`` (libpq ends the password there and reads the rest as the host,
port or database, and then quotes that rest in its errors).  A URL that libpq would read that
way (a host or database name holding ``@``, a port that is not a number) is refused before any
connection is tried, with a remedy, so libpq never sees it.

Bounded waits (so a stalled network cannot hold the executor, or its locks, for ever):

- TCP keepalives and ``tcp_user_timeout`` on every connection: a network path that stops
  delivering packets is noticed within ``DEAD_PATH_S`` seconds (``NETWORK_OPTIONS``);
- ``ResponseDeadline``: the client gives up on an answer that is overdue (the executor allows a
  statement its ``statement_timeout`` plus ``network_timeout``) and closes the socket, so even a
  path that still acknowledges packets but delivers nothing (a stalled proxy or NAT) ends;
- the server side (idle timeouts of the session) is set by ``executor.session``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import unquote

import psycopg2
import psycopg2.extensions

from executor.errors import ConfigurationError, ConnectionFailure

MASK = "***"
_URL_RE = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>.*)$", re.DOTALL)
_URL_IN_TEXT_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")
_QUERY_PASSWORD_RE = re.compile(r"(?i)[?&]password=(?P<value>[^&#]*)")
_DSN_PASSWORD_RE = re.compile(r"(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
_FRAGMENT_SPLIT_RE = re.compile(r"[@/?#:&=,\[\]]")

# libpq options set on every connection unless the URL sets them: a network path that delivers
# nothing is noticed within DEAD_PATH_S (keepalives while waiting, tcp_user_timeout while sending)
NETWORK_OPTIONS = {
    "keepalives": "1",
    "keepalives_idle": "15",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "tcp_user_timeout": "30000",  # milliseconds
}
DEAD_PATH_S = 30
LOST_CONNECTION_CODES = ("57P01", "57P02", "57P03")  # admin shutdown, crash shutdown, cannot connect now


# --------------------------------------------------------------------------------------------
# passwords


def _password_spans(url: str) -> list[tuple[int, int]]:
    """Character ranges of ``url`` that may be a password, under every way of reading it.

    libpq ends the user info at the first ``@`` or ``/``; a person who pasted a raw password
    means the last ``@`` (outside a ``password=`` query value); a query may carry
    ``password=``.  All of them are masked.
    """
    m = _URL_RE.match(url)
    if not m:
        return []
    base = m.start("rest")
    rest = m.group("rest")
    spans = [(base + q.start("value"), base + q.end("value")) for q in _QUERY_PASSWORD_RE.finditer(rest)]

    def userinfo_password(end: int) -> None:
        colon = rest.find(":", 0, end)
        if colon >= 0:
            spans.append((base + colon + 1, base + end))

    libpq_end = re.search(r"[@/]", rest)
    if libpq_end and libpq_end.group() == "@":
        userinfo_password(libpq_end.start())
    for at in (i for i in range(len(rest) - 1, -1, -1) if rest[i] == "@"):
        if not any(start <= base + at < end for start, end in spans):
            userinfo_password(at)
            break
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def mask_url(url: str) -> str:
    """The URL or DSN with its password replaced by ``***``.

    ``postgresql://user:secret@host:5432/db`` -> ``postgresql://user:***@host:5432/db``, also for
    passwords holding a raw ``@``, ``/``, ``?`` or ``#``; ``host=h password=secret`` ->
    ``host=h password=***``.  When it cannot tell where a raw password ends it masks more, never less.
    """
    if not url:
        return url
    if _URL_RE.match(url):
        masked = url
        for start, end in reversed(_merged(_password_spans(url))):
            masked = masked[:start] + MASK + masked[end:]
        return masked
    return _DSN_PASSWORD_RE.sub(lambda q: q.group(1) + MASK, url)


def _secrets(dsn: str) -> list[str]:
    """Password strings that must not appear in any message: the DSN's password however it is
    read (raw and percent-decoded), the pieces libpq might quote of a raw one, and PGPASSWORD."""
    found: list[str] = []
    try:
        password = psycopg2.extensions.parse_dsn(dsn).get("password") if dsn else None
    except psycopg2.Error:
        password = None
    if password:
        found.append(password)
    if os.environ.get("PGPASSWORD"):
        found.append(os.environ["PGPASSWORD"])
    for start, end in _password_spans(dsn or ""):
        raw = dsn[start:end]
        found += [raw, unquote(raw), *_FRAGMENT_SPLIT_RE.split(raw)]
    if not _URL_RE.match(dsn or ""):
        for q in _DSN_PASSWORD_RE.finditer(dsn or ""):
            found.append(q.group(2).strip("'"))
    return [s for s in dict.fromkeys(found) if len(s) >= 3]  # shorter ones would garble the message


def scrub(text: str, dsn: str) -> str:
    """Remove every password of ``dsn`` (raw or masked form), and of any URL quoted in it, from ``text``."""
    text = _URL_IN_TEXT_RE.sub(lambda m: mask_url(m.group()), text)
    if "password" in text.lower():
        text = _DSN_PASSWORD_RE.sub(lambda q: q.group(1) + MASK, text)
    for secret in sorted(_secrets(dsn), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _misread_parts(given: dict[str, str]) -> list[str]:
    """What libpq read from a URL that only a raw ``@`` or ``/`` in its user info explains."""
    wrong = []
    if "@" in given.get("host", ""):
        wrong.append("the host")
    if any(part and not part.isdigit() for part in given.get("port", "").split(",")):
        wrong.append("the port")
    if "@" in given.get("dbname", ""):
        wrong.append("the database name")
    return wrong


# --------------------------------------------------------------------------------------------
# connecting


def connect(
    url: str | None = None, *, connect_timeout: int = 10, application_name: str = "schemagate"
) -> psycopg2.extensions.connection:
    """Open one connection.

    ``url``: a libpq URL or key=value DSN; None uses ``$DATABASE_URL``, and without it libpq's
    ``PG*`` variables (PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, ...).  Options in
    the URL win over the keyword defaults here (``NETWORK_OPTIONS``).  Raises ConnectionFailure
    (CONNECTION_ERROR) with the password masked; a server that does not answer fails after
    ``connect_timeout`` seconds per address tried.  A URL whose user name or password holds a raw
    ``@`` or ``/`` is a ConfigurationError, raised before libpq sees it.
    """
    dsn = url if url is not None else os.environ.get("DATABASE_URL", "")
    shown = mask_url(dsn) if dsn else "the server named by the PG* environment variables"
    remedy_url = "write it like postgresql://user:password@host:5432/dbname?sslmode=require"
    try:
        given = psycopg2.extensions.parse_dsn(dsn) if dsn else {}
    except psycopg2.ProgrammingError as exc:
        # libpq quotes pieces of the string in its parse errors: never show them next to a password
        detail = "" if _secrets(dsn) else f": {' '.join(str(exc).split())}"
        raise ConfigurationError(
            f"the database URL {shown} is not a valid libpq URL or DSN{detail}", remedy=remedy_url
        ) from None
    if _URL_RE.match(dsn):
        wrong = _misread_parts(given)
        if wrong:
            raise ConfigurationError(
                f"the database URL {shown} is not what it seems: libpq would read part of its user name or "
                f"password as {' and '.join(wrong)} (a raw '@' or '/' inside them ends them early), connect "
                "to the wrong server and quote that part in its errors",
                remedy=(
                    "percent-encode the user name and password in the URL (@ as %40, / as %2F, ? as %3F, "
                    "# as %23, : as %3A, e.g. with python3 -c 'import sys, urllib.parse; "
                    'print(urllib.parse.quote(sys.argv[1], safe=""))\' PASSWORD), or leave the password '
                    "out of the URL and set PGPASSWORD or ~/.pgpass"
                ),
                context={"target": shown},
            )
    options: dict[str, Any] = {k: v for k, v in NETWORK_OPTIONS.items() if k not in given}
    if "connect_timeout" not in given and not os.environ.get("PGCONNECT_TIMEOUT"):
        options["connect_timeout"] = str(connect_timeout)
    if "application_name" not in given and not os.environ.get("PGAPPNAME"):
        options["application_name"] = application_name
    try:
        return psycopg2.connect(dsn, **options)
    except psycopg2.OperationalError as exc:
        detail = scrub(" ".join(str(exc).split()), dsn)
        raise ConnectionFailure(
            f"could not connect to {shown}: {detail}",
            remedy=(
                "check the host, port, database name, user and password, that the server accepts connections "
                "from here (security groups, pg_hba.conf) and the TLS settings (sslmode, sslrootcert)"
            ),
            context={"target": shown},
        ) from None


def describe_target(conn) -> str:
    """``dbname on host:port as user`` (never the password)."""
    info = conn.info
    host = info.host or "localhost"
    return f"{info.dbname} on {host}:{info.port} as {info.user}"


# --------------------------------------------------------------------------------------------
# a lost connection


def is_connection_lost(exc: BaseException, conn=None) -> bool:
    """Is ``exc`` the loss of the connection (not an error of a statement)?"""
    if not isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
        return False
    code = getattr(exc, "pgcode", None)
    if code is None or code.startswith("08") or code in LOST_CONNECTION_CODES:
        return True
    return bool(conn is not None and conn.closed)


def lost_connection(exc: BaseException, doing: str, *, deadline: ResponseDeadline | None = None, **kw):
    """The ConnectionFailure for ``exc``, lost while ``doing`` (e.g. "planning")."""
    overdue = deadline.overdue if deadline is not None else None
    if overdue:
        detail = (
            f"no answer from the server for {overdue.seconds:g}s while {overdue.what} (the executor allows "
            "statement_timeout plus network_timeout): the network path stalled, so the executor closed the "
            "connection"
        )
    else:
        detail = " ".join(str(exc).split()) or type(exc).__name__
    kw.setdefault(
        "remedy",
        "check the server and the network path to it (a stalled proxy, NAT or VPN), then run the command "
        "again; a migration that was running is rolled back with the session (`schemagate info` shows "
        "what is applied)",
    )
    return ConnectionFailure(f"lost the connection to the database while {doing}: {detail}", **kw)


def one_value(cur: psycopg2.extensions.cursor) -> Any:
    """The first column of the row the last query returned (``count(*)``, ``SHOW``, ``to_regclass``:
    queries that always return one); LookupError when there was no row."""
    row = cur.fetchone()
    if row is None:
        query = cur.query.decode("utf-8", "replace") if cur.query else "the query"
        raise LookupError(f"no row from {query}")
    return row[0]


def scalar(cur: psycopg2.extensions.cursor, query: str, params: Sequence[object] = ()) -> Any:
    """``query`` (a SELECT of one row and column) run on ``cur``, and its one value."""
    cur.execute(query, params)
    return one_value(cur)


@contextmanager
def connection_errors(doing: str, conn=None, *, deadline: ResponseDeadline | None = None) -> Iterator[None]:
    """Turn the loss of the connection inside the block into a ConnectionFailure (CONNECTION_ERROR)."""
    try:
        yield
    except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
        if not is_connection_lost(exc, conn):
            raise
        raise lost_connection(exc, doing, deadline=deadline) from None


# --------------------------------------------------------------------------------------------
# a client-side bound on every wait for the server


class Overdue:
    def __init__(self, seconds: float, what: str) -> None:
        self.seconds = seconds
        self.what = what


class ResponseDeadline:
    """Give up on a server that does not answer in time: ``with deadline.bound(s, "what"): cur.execute(...)``.

    When the block has not finished after ``s`` seconds, a watcher thread shuts the connection's
    socket down; the blocked call then fails at once with a connection error and ``overdue`` says
    what was being waited for.  Without this, a network path that accepts packets but delivers
    nothing (a stalled proxy) keeps the client waiting for ever, whatever the TCP keepalives say.
    ``bound(None)`` (a statement_timeout of 0) does not bound the block.  Blocks do not nest: an
    inner ``bound`` while an outer one is armed keeps the outer one.
    """

    def __init__(self, conn) -> None:
        self.conn = conn
        self.overdue: Overdue | None = None
        self._cond = threading.Condition()
        self._armed: tuple[float, float, str] | None = None  # (deadline, seconds, what)
        self._wakes_at = float("inf")  # when the watcher looks again by itself
        self._thread: threading.Thread | None = None
        self._closed = False

    @contextmanager
    def bound(self, seconds: float | None, what: str) -> Iterator[None]:
        if seconds is None or seconds <= 0 or self._armed is not None:
            yield
            return
        with self._cond:
            deadline = time.monotonic() + seconds
            self._armed = (deadline, seconds, what)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="schemagate-deadline", daemon=True)
                self._thread.start()
            if deadline < self._wakes_at:  # otherwise the watcher finds it when it wakes up anyway
                self._cond.notify_all()
        try:
            yield
        finally:
            with self._cond:
                self._armed = None  # no wake-up needed: the watcher re-reads _armed when it wakes

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._armed = None
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        with self._cond:
            while not self._closed:
                if self._armed is None:
                    self._wakes_at = float("inf")
                    self._cond.wait()
                    continue
                deadline, seconds, what = self._armed
                left = deadline - time.monotonic()
                if left > 0:
                    self._wakes_at = deadline
                    self._cond.wait(left)
                    continue
                self.overdue = Overdue(seconds, what)
                self._armed = None
                self._shut_down_socket()

    def _shut_down_socket(self) -> None:
        if self.conn.closed:
            return
        with suppress(OSError, psycopg2.Error):
            import socket  # only for a stalled session: the start of a no-op apply does without

            duplicate = socket.socket(fileno=os.dup(self.conn.fileno()))
            try:
                duplicate.shutdown(socket.SHUT_RDWR)  # acts on the shared socket: libpq's read returns
            finally:
                duplicate.close()

    def cursor_factory(self, seconds: float | None, what: str = "waiting for the server", base=None):
        """A cursor class whose every execute is bounded by ``seconds`` (set as ``conn.cursor_factory``);
        ``base``: the connection's own cursor class, kept (psycopg2's plain cursor by default)."""
        deadline = self

        class BoundedCursor(base or psycopg2.extensions.cursor):  # type: ignore[misc]
            def execute(self, query, vars=None):
                with deadline.bound(seconds, what):
                    return super().execute(query, vars)

        return BoundedCursor
