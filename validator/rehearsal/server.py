"""The rehearsal server: where the throwaway databases are created, and the few admin statements
run there.

``--rehearsal-database-url`` names a server where schemagate may CREATE DATABASE; without it the
embedded PostgreSQL (``localdb``) under ``.schemagate/rehearsal`` is started for the run and
stopped afterwards (unless it was already running).  ``$DATABASE_URL`` is never connected to: it
is only read to refuse a rehearsal server that is the deploy target.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg2
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor
from psycopg2.extensions import make_dsn, parse_dsn

from executor.connection import connect as executor_connect
from executor.errors import ConfigurationError

if TYPE_CHECKING:
    from validator.config import ValidatorConfig

APPLICATION_NAME = "schemagate-rehearsal"


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
        if deploy_target and parse_dsn(deploy_target) == parse_dsn(database_url):
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


def connect(url: str, *, autocommit: bool = True) -> Connection:
    """A connection to ``url`` (always explicit: never $DATABASE_URL), password masked in errors."""
    conn = executor_connect(url, application_name=APPLICATION_NAME)
    conn.autocommit = autocommit
    return conn


def scalar(cur: Cursor, query: str, params: tuple[object, ...] = ()) -> Any:
    """The one value ``query`` returns (a ``SELECT`` of one row and column)."""
    cur.execute(query, params)
    row = cur.fetchone()
    if row is None:
        raise LookupError(f"no row from {query}")
    return row[0]


def drop_database(cur: Cursor, name: str) -> None:
    """Drop ``name`` (a template too), ending the sessions still connected to it."""
    cur.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        (name,),
    )
    with suppress(psycopg2.Error):
        cur.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE false").format(sql.Identifier(name)))
    cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
