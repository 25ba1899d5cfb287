"""The rehearsal server: where the throwaway databases are created, and the few admin statements
run there.

``--rehearsal-database-url`` names a server where schemagate may CREATE DATABASE; without it the
embedded PostgreSQL (``localdb``) under ``.schemagate/rehearsal`` is started for the run and
stopped afterwards (unless it was already running).  ``$DATABASE_URL`` is only read to refuse a
rehearsal URL that is the deploy target's database, before anything is created: the same host
(names resolved, ``localhost`` is ``127.0.0.1``), port and database refuse at once, and otherwise
both servers are asked, read-only, for their ``system_identifier`` and ``current_database()``
(one ``SELECT`` each, nothing else), so a spelling that libpq reads as another string (``?sslmode=
disable``, a key=value DSN, another name of the host) still refuses.  A deploy target that does not
answer within ``IDENTITY_TIMEOUT`` seconds, or refuses connections, cannot be the rehearsal server
the rehearsal is about to use: the rehearsal goes on.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor
from psycopg2.extensions import make_dsn, parse_dsn

from executor.connection import connect as executor_connect
from executor.errors import ConfigurationError, SchemagateError

if TYPE_CHECKING:
    from validator.config import ValidatorConfig

APPLICATION_NAME = "schemagate-rehearsal"
IDENTITY_TIMEOUT = 5  # seconds to wait for the deploy target's answer to "who are you"
_IDENTITY_QUERY = "SELECT (SELECT system_identifier::text FROM pg_control_system()), current_database()"
_IDENTITY_FALLBACK = "SELECT host(inet_server_addr()) || ':' || inet_server_port(), current_database()"


def with_dbname(url: str, dbname: str) -> str:
    """``url`` pointed at ``dbname``, with commits that do not wait for the disk: a rehearsal
    database is rebuilt from files at will, so durability buys nothing there."""
    options = parse_dsn(url).get("options", "")
    return make_dsn(url, dbname=dbname, options=f"{options} -c synchronous_commit=off".strip())


def describe_server(url: str) -> str:
    """host:port of a connection string, never its password."""
    params = parse_dsn(url)
    return f"{params.get('host') or 'local socket'}:{params.get('port') or 5432}"


@contextmanager
def rehearsal_server(config: ValidatorConfig, database_url: str | None) -> Iterator[tuple[str, str]]:
    """(admin URL, description) of the server the rehearsal may create databases on."""
    if database_url:
        try:
            parse_dsn(database_url)
        except psycopg2.ProgrammingError:
            raise ConfigurationError(
                "--rehearsal-database-url is not a PostgreSQL connection string",
                remedy="pass a URL like postgresql://user@host:5432/postgres of a server where schemagate "
                "may create throwaway databases",
            ) from None
        deploy_target = os.environ.get("DATABASE_URL")
        if deploy_target and is_the_same_database(database_url, deploy_target):
            raise ConfigurationError(
                "--rehearsal-database-url is the database DATABASE_URL deploys to",
                remedy="rehearse on a separate server (or leave the option out to use an embedded one): "
                "the rehearsal creates and drops databases there",
            )
        yield database_url, describe_server(database_url)
        return
    from localdb.server import EmbeddedPostgres

    home = config.project_root / ".schemagate" / "rehearsal"
    try:
        home.parent.mkdir(parents=True, exist_ok=True)
        writable = os.access(home.parent, os.W_OK)
    except OSError:
        writable = False
    if not writable:  # a read-only checkout: keep the server (and its cached bases) in the temp dir
        import tempfile

        home = Path(tempfile.gettempdir()) / f"schemagate-rehearsal-{os.geteuid()}"
    # started for this run and stopped after it (unless it was running already or another
    # command still uses it); the cached bases stay on disk for the next run
    with EmbeddedPostgres(home).running() as url:
        yield url, f"embedded PostgreSQL under {home}"


def _address(params: dict[str, str]) -> tuple[frozenset[str], str, str] | None:
    """(addresses, port, database) a libpq connection with ``params`` reaches, or None when it
    cannot be told without connecting (a socket directory, several hosts, a service file)."""
    host = params.get("hostaddr") or params.get("host") or os.environ.get("PGHOST", "")
    if not host or host.startswith("/") or "," in host or params.get("service"):
        return None
    port = params.get("port") or os.environ.get("PGPORT") or "5432"
    user = params.get("user") or os.environ.get("PGUSER") or ""
    dbname = params.get("dbname") or os.environ.get("PGDATABASE") or user
    try:
        infos = socket.getaddrinfo(host, int(port), proto=socket.IPPROTO_TCP)
    except (OSError, ValueError):
        return None
    addresses = frozenset(str(info[4][0]) for info in infos)
    loopback = {"127.0.0.1", "::1"}
    if addresses & loopback:  # localhost, 127.0.0.1 and ::1 are one machine's one server
        addresses = addresses | loopback
    return addresses, port, dbname


def _identity(url: str) -> tuple[str, str] | None:
    """(system_identifier, current database) of the server behind ``url``, asked read-only, or
    None when it does not answer (its error is not shown: the URL may hold a password)."""
    try:
        conn = executor_connect(url, connect_timeout=IDENTITY_TIMEOUT, application_name=APPLICATION_NAME)
    except SchemagateError:
        return None
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for query in (_IDENTITY_QUERY, _IDENTITY_FALLBACK):
                try:
                    cur.execute(query)
                except psycopg2.Error:
                    continue  # pg_control_system() not granted: the server's address instead
                row = cur.fetchone()
                if row is not None and row[0] is not None:
                    return str(row[0]), str(row[1])
        return None
    except psycopg2.Error:
        return None
    finally:
        conn.close()


def is_the_same_database(rehearsal_url: str, deploy_url: str) -> bool:
    """True when ``rehearsal_url`` names the database ``deploy_url`` deploys to, however spelt."""
    try:
        ours, theirs = parse_dsn(rehearsal_url), parse_dsn(deploy_url)
    except psycopg2.ProgrammingError:
        return False  # the deploy target's URL is the apply's business, reported there
    if ours == theirs:
        return True
    here, there = _address(ours), _address(theirs)
    if here is not None and there is not None and here[0] & there[0] and here[1:] == there[1:]:
        return True
    mine = _identity(rehearsal_url)
    return mine is not None and mine == _identity(deploy_url)


def connect(url: str, *, autocommit: bool = True) -> Connection:
    """A connection to ``url`` (always explicit: never $DATABASE_URL), password masked in errors."""
    conn = executor_connect(url, application_name=APPLICATION_NAME)
    conn.autocommit = autocommit
    return conn


def drop_database(cur: Cursor, name: str) -> None:
    """Drop ``name`` (a template too), ending the sessions still connected to it.

    A database whose DROP was interrupted (a killed run) is left *invalid* (``datconnlimit = -2``,
    PostgreSQL 15.4 and later): it can only be dropped, and ALTER DATABASE on it is a FATAL error
    that ends this session.  So only a template is altered, and an invalid database never is."""
    cur.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )
    cur.execute("SELECT datistemplate AND datconnlimit <> -2 FROM pg_database WHERE datname = %s", (name,))
    row = cur.fetchone()
    if row is None:
        return
    if row[0]:
        cur.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name)))
    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
