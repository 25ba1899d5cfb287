"""``schemagate apply`` on an up-to-date database, answered without click and without parsing SQL.

A no-op apply is the command a deploy runs most (every deploy, most of them with nothing new), so its
process should start and end at once.  ``quick_apply(argv)`` reads the few arguments of the common
case (``apply`` or ``migrate`` with ``--yes``/``-y``, ``--database-url URL``, ``--migrations DIR`` or
``--bundle DIR``, ``--schema S``), resolves the database as ``schemagate.target`` does
(``--database-url``, then ``$DATABASE_URL``), connects (for a directory while it reads the files:
``_Connecting``), and asks ``already_applied`` (for a bundle, read and verified as the full command
does before it connects, whether its manifest is applied): when every migration
is applied with the same checksum it prints what the full command prints and returns 0.  Anything
else returns None before printing anything, and the caller runs the full click CLI (help, a usage
error, any other option, the PG* variables or the embedded server, something to apply), which does
it all again from the start but for what it takes over: the files (``validator.discovery.hand_over``)
or the verified bundle (``take_bundle``), and the open connection (``take_connection``), each read or
opened once per process.  A refusal on the way (a bad configuration, no connection) is printed here
as the full CLI prints it, so a failing connection is not tried twice; a bundle it refuses is left to
the full command, which reports it before connecting.

Imports: the executor's history and state (and bundle, for ``--bundle``), the validator's
configuration and discovery (files, names, checksums), psycopg2; not click, pglast, sqlfluff, boto3
or the rest of the validator (``tests/test_quick_apply.py`` checks it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from psycopg2.extensions import connection as Connection

    from executor.bundle import Bundle
    from executor.manifest import Manifest
    from executor.settings import ExecutorSettings
    from validator.config import ValidatorConfig
    from validator.discovery import Discovered

APPLY_COMMANDS = ("apply", "migrate")
YES_FLAGS = ("--yes", "-y")
_VALUES = ("--database-url", "--migrations", "--schema", "--bundle")


def parse(argv: list[str]) -> dict[str, str] | None:
    """The options of a plain ``apply`` (last one wins, as click does), or None for anything else."""
    if not argv or argv[0] not in APPLY_COMMANDS:
        return None
    values: dict[str, str] = {}
    rest = iter(argv[1:])
    for arg in rest:
        if arg in YES_FLAGS:
            continue
        name, eq, value = arg.partition("=")
        if name not in _VALUES:
            return None
        if not eq:
            value = next(rest, "")
        if not value or value.startswith("-"):  # click's reading of these is the reference: let it judge
            return None
        values[name] = value
    return values


def already_applied(
    conn: Connection,
    config: ValidatorConfig,
    settings: ExecutorSettings,
    *,
    going_on: bool = False,
    found: Discovered | None = None,
) -> int | None:
    """``apply --migrations DIR`` fast path: the number of applied migrations when every file on disk
    is already applied with the same checksum (nothing pending, failed, drifted or missing), else None.

    It skips parsing: a file applied with these exact bytes has run on PostgreSQL already, and an
    up-to-date database runs nothing, so the syntax check could not change the outcome.  Anything
    else (a new file, a misnamed one, any refusal) returns None and takes the full structural path,
    which reports it.  One query: the history.  The files it read, and those it found applied, are
    handed to the command that builds the directory's bundle next in this process
    (``validator.discovery.hand_over``, ``take_applied``): when it returns None, or always with
    ``going_on`` (``plan`` and ``info``, which build the bundle whatever the answer).
    ``found``: the directory as ``_discover`` read it already.
    """
    from validator.discovery import hand_over

    if found is None:
        found = _discover(config)
    applied = _applied(conn, config.migrations, found, settings, going_on=going_on)
    if applied is None or going_on:  # the command that runs next in this process takes the files over
        hand_over(config.migrations, found, layout=config.layout, max_file_bytes=config.max_file_bytes)
    return applied


def _discover(config: ValidatorConfig) -> Discovered:
    from validator.discovery import discover

    return discover(
        config.migrations,
        layout=config.layout,
        max_file_bytes=config.max_file_bytes,
        memo=_layout_memo(config),
    )


def _applied(
    conn: Connection, migrations: Path, found: Discovered, settings: ExecutorSettings, *, going_on: bool
) -> int | None:
    from executor.manifest import Manifest

    files, findings = found
    if not files or any(f.severity == "error" for f in findings):
        return None
    manifest = Manifest(migrations=[mf.manifest_entry() for mf in files], layout=found.layout)
    return _settled(conn, manifest, settings, migrations=migrations, going_on=going_on)


def _settled(
    conn: Connection,
    manifest: Manifest,
    settings: ExecutorSettings,
    *,
    migrations: Path | None = None,
    going_on: bool = False,
) -> int | None:
    """The number of applied migrations when every one of ``manifest`` is applied as it is there
    (nothing pending, failed, drifted or missing, no refusal), else None.  One query: the history.

    ``migrations``: the directory ``manifest`` was read from; when the answer is None, or always with
    ``going_on``, the files applied with these very bytes are handed over (``take_applied``) to the
    command that builds the bundle next, which does not parse them again."""
    global _applied_handed
    from executor.history import read_history
    from executor.state import MigrationState, build_info, refusals

    try:
        rows = read_history(conn, settings)
    finally:
        conn.rollback()  # leave no transaction open (nothing to end on the quick path's autocommit one)
    infos = build_info(manifest, rows, settings)
    settled = not refusals(infos, settings) and all(i.state.is_settled for i in infos)
    if migrations is not None and (going_on or not settled):
        keys = frozenset(
            i.entry.file for i in infos if i.state is MigrationState.APPLIED and i.entry is not None
        )
        _applied_handed = (_directory_key(migrations), conn, keys)
    if not settled:
        return None
    return sum(1 for i in infos if i.state is MigrationState.APPLIED)


_applied_handed: tuple[str, Connection, frozenset[str]] | None = None


def _directory_key(migrations: Path) -> str:
    return str(Path(migrations).resolve())


def take_applied(migrations: Path, conn: Connection) -> frozenset[str]:
    """The files of ``migrations`` (``MigrationFile.key``) that ``already_applied`` just found
    applied with the same bytes on ``conn``, once; empty for another directory or connection, or
    when it declined before reading the history.  ``apply`` passes them to
    ``validator.structural.bundle_from_directory``, which does not parse them; the executor refuses
    to run one (``ManifestEntry.checked``), so a file whose history row another session removes in
    between is never run unchecked."""
    global _applied_handed
    handed, _applied_handed = _applied_handed, None
    if handed is None or handed[0] != _directory_key(migrations) or handed[1] is not conn:
        return frozenset()
    return handed[2]


def _layout_memo(config: ValidatorConfig) -> Path | None:
    """Where detection's answer is remembered (``validator.layout_memo``); None when the project
    turned its caches off (``[tool.schemagate.lint] cache = false``)."""
    if config.lint.get("cache", True) is False:
        return None
    from validator.layout_memo import DEFAULT_MEMO

    return Path(config.project_root) / DEFAULT_MEMO


def quick_apply(argv: list[str]) -> int | None:
    """The exit code of a no-op ``schemagate apply``, or None: run the full CLI."""
    options = parse(argv)
    if options is None:
        return None
    url = options.get("--database-url") or os.environ.get("DATABASE_URL")
    migrations = Path(options["--migrations"]) if "--migrations" in options else None
    bundle_dir = Path(options["--bundle"]) if "--bundle" in options else None
    if not url or (migrations is not None and (migrations.is_file() or bundle_dir is not None)):
        return None  # the PG* variables or the embedded server; a file where a directory belongs
    from executor import driver

    driver.load()  # psycopg2 without the ssl module: an apply's CLI process needs no other TLS
    from executor.errors import SchemagateError

    try:
        if bundle_dir is not None:
            return _bundle_up_to_date(url, bundle_dir, options.get("--schema"))
        return _up_to_date(url, migrations, options.get("--schema"))
    except SchemagateError as exc:
        from schemagate.console import render_error

        return render_error(exc)


def _settings(config: ValidatorConfig, schema: str | None) -> ExecutorSettings:
    """The full command's settings for these options (``schemagate.target.executor_settings``)."""
    return config.executor.with_overrides(
        allow_out_of_order=None,
        allow_missing=None,
        schema=schema,
        search_path=None,
        lock_timeout=None,
        statement_timeout=None,
    )


def _up_to_date(url: str, migrations: Path | None, schema: str | None) -> int | None:
    from validator.config import load_config

    config = load_config(Path.cwd(), migrations=migrations)
    if not config.migrations.is_dir():
        return None
    settings = _settings(config, schema)
    connecting = _Connecting(url)  # the server sets the session up while the files are read
    try:
        found = _discover(config)
    except BaseException:
        connecting.close()
        raise
    return _answer(
        url, lambda conn: already_applied(conn, config, settings, found=found), connecting=connecting
    )


class _Connecting:
    """``executor.connection.connect(url)`` on a thread of its own, started at once: libpq waits for
    the server (the TCP and TLS handshakes, authentication, the backend's start) without holding the
    interpreter, so the directory is read and checksummed meanwhile.  ``result()`` is the connection,
    or raises what connecting raised (a ConnectionFailure, as ``connect`` words it)."""

    def __init__(self, url: str) -> None:
        import threading

        from executor.connection import connect

        self._connect = connect
        self._conn: Connection | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(url,), name="schemagate-connect", daemon=True)
        self._thread.start()

    def _run(self, url: str) -> None:
        try:
            self._conn = self._connect(url)
        except BaseException as exc:  # raised again by result(), in the thread that asks
            self._error = exc

    def result(self) -> Connection:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._conn is not None
        return self._conn

    def close(self) -> None:
        """The connection is not wanted after all (the caller failed first)."""
        self._thread.join()
        if self._conn is not None:
            self._conn.close()


def _bundle_up_to_date(url: str, bundle_dir: Path, schema: str | None) -> int | None:
    """``apply --bundle DIR`` (the pipeline's form): the bundle read and verified as the full command
    does, before any connection; a bundle it refuses is left to the full command, which reports it
    (and never connects).  When something is to do, the full command takes the verified bundle over
    (``take_bundle``): the bytes it applies are the bytes checked here."""
    global _bundle_handed
    from executor.bundle import load_bundle
    from executor.errors import SchemagateError
    from validator.config import load_config

    config = load_config(Path.cwd(), migrations=None)
    try:
        bundle = load_bundle(bundle_dir)
    except SchemagateError:
        return None
    settings = _settings(config, schema)
    code = _answer(url, lambda conn: _settled(conn, bundle.manifest, settings))
    if code is None:  # something to do: the full command applies the bundle verified here
        _bundle_handed = (_bundle_key(bundle_dir), bundle)
    return code


def _answer(
    url: str, check: Callable[[Connection], int | None], *, connecting: _Connecting | None = None
) -> int | None:
    """Connect (or take the connection ``connecting`` makes), ``check``; print the no-op's line and
    return 0, or None (the connection kept for the full command: ``take_connection``)."""
    from executor.connection import connect, connection_errors, mask_url

    conn = connecting.result() if connecting is not None else connect(url)
    conn.autocommit = True  # the history SELECT alone: no BEGIN and ROLLBACK around it, one round trip
    handed = False
    try:
        with connection_errors(f"talking to {mask_url(url)}", conn):
            applied = check(conn)
            if applied is None:  # the full command that runs next takes this connection over
                conn.autocommit = False
                _hand_over(url, conn)
                handed = True
    finally:
        if not handed:
            conn.close()
    if applied is None:
        return None
    sys.stdout.write(f"nothing to apply: database is up to date ({applied} applied)\n")
    sys.stdout.flush()
    return 0


_handed: tuple[str, Connection] | None = None
_taken: Connection | None = None


def _hand_over(url: str, conn: Connection) -> None:
    global _handed
    if _handed is not None:  # one not taken (an earlier call in this process): closed, not kept
        _handed[1].close()
    _handed = (url, conn)


def take_connection(url: str) -> Connection | None:
    """The connection the quick path opened to ``url`` and left open when it declined (not in
    autocommit, no transaction open), once: the full command in the same process uses it instead
    of opening another.  None for any other URL (that connection is closed), or when there is none.
    """
    global _handed, _taken
    handed, _handed = _handed, None
    if handed is None:
        return None
    handed_url, conn = handed
    if handed_url != url or conn.closed:
        conn.close()
        return None
    _taken = conn
    return conn


def checked_on(conn: Connection) -> bool:
    """Is ``conn`` the connection the quick path just declined on (``take_connection``)?  Then asking
    ``already_applied`` again would read the same files and history for the same answer: something
    is to do, or to refuse, which the full command's plan says."""
    return conn is _taken


_bundle_handed: tuple[str, Bundle] | None = None


def _bundle_key(bundle_dir: Path) -> str:
    return str(bundle_dir.resolve())


def take_bundle(bundle_dir: Path) -> Bundle | None:
    """The bundle the quick path read and verified from ``bundle_dir`` and declined on, once; None for
    any other directory, or when there is none."""
    global _bundle_handed
    handed, _bundle_handed = _bundle_handed, None
    if handed is None or handed[0] != _bundle_key(bundle_dir):
        return None
    return handed[1]
