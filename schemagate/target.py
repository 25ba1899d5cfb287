"""Which database a command talks to, and what it applies there: the part every database command
shares (``cmd_apply``, ``cmd_info``, ``cmd_repair``, ``cmd_import``, ``cmd_clean``, ``validate
--database-url``).

Which database (first match wins):

1. ``--database-url URL``
2. ``$DATABASE_URL``
3. libpq's own variables, when ``PGHOST``, ``PGSERVICE`` or ``PGDATABASE`` is set (``PGUSER`` or
   ``PGPASSWORD`` alone do not name a server); ``PGPORT``, ``PGSSLMODE``... apply as usual
4. otherwise the embedded PostgreSQL under ``.schemagate/postgres`` in the project root (the
   directory of the pyproject.toml with [tool.schemagate] or the schemagate.toml, found from any
   subdirectory), database ``schemagate`` (localdb/server.py).  The command says so on stderr, and stops the
   server when it ends (unless another `schemagate` command is still using it).

What it applies: an approved ``--bundle DIR``, or ``--migrations DIR`` checked structurally, with
the settings of ``[tool.schemagate.executor]`` plus flags.  The click options these commands share
are here too.  Notices about the target go to stderr (so ``--json`` output is clean JSON);
passwords are masked in everything printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload

from executor.errors import ConfigurationError
from schemagate.console import out

if TYPE_CHECKING:
    import click
    from click.decorators import FC
    from psycopg2.extensions import connection as Connection

    from executor.bundle import Bundle
    from executor.settings import ExecutorSettings
    from validator.config import ValidatorConfig

EMBEDDED_DATABASE = "schemagate"
LIBPQ_SERVER_VARIABLES = ("PGHOST", "PGSERVICE", "PGDATABASE")


# -- the target database ----------------------------------------------------------------------


@dataclass
class Target:
    """The database a command talks to, and how it is named to the user."""

    url: str  # what executor.connection.connect receives ("" = libpq defaults from PG* variables)
    label: str  # what the user reads: a masked URL, or "embedded PostgreSQL 16 (database schemagate)"
    embedded: bool = False  # the embedded PostgreSQL under .schemagate/ (what `clean` may drop freely)


def _mask(url: str) -> str:
    from executor.connection import mask_url

    return mask_url(url)


def _note(message: str) -> None:
    out(message, err=True)


@contextlib.contextmanager
def target_database(database_url: str | None) -> Iterator[Target]:
    """Resolve the database (see the module docstring); start the embedded server when needed."""
    url = database_url or os.environ.get("DATABASE_URL")
    if url:
        yield Target(url, _mask(url))
        return
    if any(os.environ.get(v) for v in LIBPQ_SERVER_VARIABLES):
        named = ", ".join(f"{v}={os.environ[v]}" for v in LIBPQ_SERVER_VARIABLES if os.environ.get(v))
        _note(f"no database URL given: using libpq's PG* variables ({named})")
        yield Target("", f"the database named by PG* variables ({named})")
        return

    from localdb.server import default_local_server
    from validator.config import find_project_root

    server = default_local_server(find_project_root(Path.cwd()))
    with server.running():
        relative = os.path.relpath(server.data_dir, Path.cwd())
        _note(
            f"no database configured: using embedded PostgreSQL {server.major} at {relative} "
            f"(database {EMBEDDED_DATABASE})"
        )
        if server.notice:
            _note(f"note: {server.notice}")
        db_url = server.ensure_database(EMBEDDED_DATABASE)
        yield Target(
            db_url, f"embedded PostgreSQL {server.major} (database {EMBEDDED_DATABASE})", embedded=True
        )


@contextlib.contextmanager
def connected(target: Target) -> Iterator[Connection]:
    """A connection to the target; losing it inside the block is a ConnectionFailure (CONNECTION_ERROR,
    exit 1) that names the target, never a psycopg2 traceback."""
    from executor.connection import connect, connection_errors
    from schemagate.quick_apply import take_connection

    conn = take_connection(target.url) or connect(target.url)
    try:
        with connection_errors(f"talking to {target.label}", conn):
            yield conn
    finally:
        conn.close()


# -- the bundle and the settings --------------------------------------------------------------


LAYOUT_META = "schemagate.layout"


def _remember_layout(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value:
        ctx.meta[LAYOUT_META] = value
    return value


def layout_option(f: FC) -> FC:
    """``--layout NAME``: the directory's layout instead of detecting it (kept in the click context, so
    every command reads it through ``load_config``)."""
    import click

    from executor.layouts import LAYOUTS

    return click.option(
        "--layout",
        type=click.Choice(list(LAYOUTS)),
        expose_value=False,
        callback=_remember_layout,
        help="the migrations directory's layout (default: [tool.schemagate] layout, else detected)",
    )(f)


def load_config(migrations: Path | None) -> ValidatorConfig:
    """The project's configuration, with ``--migrations`` and the ``--layout`` of this command."""
    from validator.config import load_config as load

    config = load(Path.cwd(), migrations=migrations)
    layout = None
    if "click" in sys.modules:  # a command run without click (``apply --yes``) has no --layout
        import click

        ctx = click.get_current_context(silent=True)
        layout = ctx.meta.get(LAYOUT_META) if ctx is not None else None
    if layout:
        config = dataclasses.replace(config, layout=layout)
    return config


@overload
def load_migrations(
    bundle_dir: Path | None,
    migrations: Path | None,
    config: ValidatorConfig,
    *,
    optional: Literal[False] = False,
) -> Bundle: ...


@overload
def load_migrations(
    bundle_dir: Path | None, migrations: Path | None, config: ValidatorConfig, *, optional: bool
) -> Bundle | None: ...


def load_migrations(
    bundle_dir: Path | None, migrations: Path | None, config: ValidatorConfig, *, optional: bool = False
) -> Bundle | None:
    """An approved bundle (fully verified) or the migrations directory (structural checks only).

    ``optional``: without --bundle/--migrations and no migrations directory, return None (``info``
    and ``repair`` then look at the history alone).
    """
    if bundle_dir is not None and migrations is not None:
        import click

        raise click.UsageError("pass either --bundle DIR or --migrations DIR, not both")
    if bundle_dir is not None:
        from executor.bundle import load_bundle
        from schemagate.quick_apply import take_bundle

        return take_bundle(bundle_dir) or load_bundle(bundle_dir)
    if not config.migrations.is_dir():
        if optional and migrations is None:
            return None
        raise ConfigurationError(
            f"migrations directory {config.migrations} does not exist",
            remedy='pass --migrations DIR or --bundle DIR, or set migrations = "..." in [tool.schemagate]',
        )
    from validator.structural import bundle_from_directory

    return bundle_from_directory(config)


def recorded_bundle(
    bundle_dir: Path | None, migrations: Path | None, config: ValidatorConfig, *, optional: bool = False
) -> Bundle | None:
    """``load_migrations`` for the commands that record what exists and run nothing (``import``,
    ``repair``, ``baseline``): a migrations directory by names and checksums, no file parsed (a
    legacy file schemagate would refuse does not block them; ``apply`` judges every file it is to
    run).  A bundle is verified as always."""
    if bundle_dir is None and config.migrations.is_dir():
        from validator.structural import bundle_from_directory

        return bundle_from_directory(config, parse=False)
    return load_migrations(bundle_dir, migrations, config, optional=optional)


def directory_bundle(
    conn: Connection, config: ValidatorConfig, settings: ExecutorSettings, *, looked: bool = False
) -> Bundle:
    """The migrations directory as ``apply`` judges it: the files the database holds as applied with
    the same bytes are compared by checksum and not parsed again (``check_structure``'s
    ``applied``), so a legacy file does not block what is new.  ``looked``: ``already_applied``
    has just read this connection's history (else it is asked here)."""
    from schemagate.quick_apply import already_applied, checked_on, take_applied
    from validator.structural import bundle_from_directory

    if not looked and not checked_on(conn):
        already_applied(conn, config, settings, going_on=True)  # hands the files it read over, too
    return bundle_from_directory(config, applied=take_applied(config.migrations, conn))


def executor_settings(config: ValidatorConfig, **flags: str | bool | None) -> ExecutorSettings:
    """``[tool.schemagate.executor]`` with the flags given (None: not given, the configuration's)."""
    return config.executor.with_overrides(**flags)


def confirm_or_refuse(question: str, yes: bool) -> bool:
    """``--yes`` skips the question; without a terminal and without ``--yes`` refuse (exit 2)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigurationError(
            f'not applied: stdin is not a terminal, so nobody can answer "{question}"',
            remedy="pass --yes to apply without asking",
        )
    import click

    return click.confirm(question, default=False)


# -- the options the database commands share -----------------------------------------------


def database_option(f: FC) -> FC:
    import click

    return click.option(
        "--database-url",
        metavar="URL",
        help="libpq URL (default: $DATABASE_URL, then PG* variables, then the embedded PostgreSQL)",
    )(f)


def source_options(f: FC) -> FC:
    import click

    f = layout_option(f)
    f = click.option(
        "--migrations",
        "migrations",
        type=click.Path(file_okay=False, path_type=Path),
        help="migrations directory, checked structurally (default: [tool.schemagate] migrations)",
    )(f)
    return click.option(
        "--bundle",
        "bundle_dir",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        help="an approved bundle written by `schemagate validate --bundle DIR`",
    )(f)


def schema_option(f: FC) -> FC:
    import click

    return click.option(
        "--schema",
        metavar="S",
        help="schema of the history table (default: [tool.schemagate.executor], else public)",
    )(f)


def search_path_option(f: FC) -> FC:
    import click

    return click.option(
        "--search-path",
        "search_path",
        metavar="SCHEMAS",
        callback=_checked_search_path,
        help="search_path the migrations run with, e.g. 'storage, public' "
        "(default: [tool.schemagate] search_path, else the role's own)",
    )(f)


def _checked_search_path(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from validator.config import check_search_path

    return check_search_path(value, "--search-path")


def tolerance_options(f: FC) -> FC:
    import click

    f = click.option(
        "--allow-missing", is_flag=True, default=None, help="tolerate applied versions absent from the bundle"
    )(f)
    return click.option(
        "--out-of-order", is_flag=True, default=None, help="allow pending versions below the highest applied"
    )(f)
