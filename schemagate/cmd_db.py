"""The commands that talk to a database: plan, apply, info, repair, baseline and run.

They are a thin edge over ``executor.apply``: resolve the target database, load the bundle (an
approved ``--bundle DIR``, or ``--migrations DIR`` checked structurally), build the settings from
``[tool.schemagate.executor]`` plus flags, call one core function, and print its result.

Which database (first match wins):

1. ``--database-url URL``
2. ``$DATABASE_URL``
3. libpq's own variables, when ``PGHOST``, ``PGSERVICE`` or ``PGDATABASE`` is set (``PGUSER`` or
   ``PGPASSWORD`` alone do not name a server); ``PGPORT``, ``PGSSLMODE``... apply as usual
4. otherwise the embedded PostgreSQL under ``.schemagate/postgres`` in the project root (the
   directory of the pyproject.toml with [tool.schemagate] or the schemagate.toml, found from any
   subdirectory), database ``schemagate`` (localdb/server.py).  The command says so on stderr, and stops the
   server when it ends (unless another `schemagate` command is still using it).

Output: progress and tables on stdout, notices about the target on stderr (so ``--json`` output
is clean JSON).  Passwords are masked in everything printed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from executor.errors import ConfigurationError, MigrationRefused, SchemagateError
from schemagate.tables import render_table

EMBEDDED_DATABASE = "schemagate"
LIBPQ_SERVER_VARIABLES = ("PGHOST", "PGSERVICE", "PGDATABASE")
PLAN_LINES_SHOWN = 20  # before `apply` asks; `plan` lists everything
DEFAULT_FLEET_CONCURRENCY = 4  # executor.fleet.DEFAULT_CONCURRENCY (imported lazily: the CLI starts fast)


# -- the target database ----------------------------------------------------------------------


@dataclass
class Target:
    url: str  # what executor.connection.connect receives ("" = libpq defaults from PG* variables)
    label: str  # what the user reads: a masked URL, or "embedded PostgreSQL 16 (database schemagate)"
    embedded: bool = False  # the embedded PostgreSQL under .schemagate/ (what `clean` may drop freely)


def _mask(url: str) -> str:
    from executor.connection import mask_url

    return mask_url(url)


def _note(message: str) -> None:
    click.echo(message, err=True)


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
def connected(target: Target) -> Iterator[Any]:
    """A connection to the target; losing it inside the block is a ConnectionFailure (CONNECTION_ERROR,
    exit 1) that names the target, never a psycopg2 traceback."""
    from executor.connection import connect, connection_errors

    conn = connect(target.url)
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


def layout_option(f):
    """``--layout NAME``: the directory's layout instead of detecting it (kept in the click context, so
    every command reads it through ``load_config``)."""
    from executor.layouts import LAYOUTS

    return click.option(
        "--layout",
        type=click.Choice(list(LAYOUTS)),
        expose_value=False,
        callback=_remember_layout,
        help="the migrations directory's layout (default: [tool.schemagate] layout, else detected)",
    )(f)


def load_config(migrations: Path | None):
    from validator.config import load_config as load

    config = load(Path.cwd(), migrations=migrations)
    ctx = click.get_current_context(silent=True)
    layout = ctx.meta.get(LAYOUT_META) if ctx is not None else None
    if layout:
        config = dataclasses.replace(config, layout=layout)
    return config


def load_migrations(
    bundle_dir: Path | None, migrations: Path | None, config, *, optional: bool = False
) -> Any:
    """An approved bundle (fully verified) or the migrations directory (structural checks only).

    ``optional``: without --bundle/--migrations and no migrations directory, return None (``info``
    and ``repair`` then look at the history alone).
    """
    if bundle_dir is not None and migrations is not None:
        raise click.UsageError("pass either --bundle DIR or --migrations DIR, not both")
    if bundle_dir is not None:
        from executor.bundle import load_bundle

        return load_bundle(bundle_dir)
    if not config.migrations.is_dir():
        if optional and migrations is None:
            return None
        raise ConfigurationError(
            f"migrations directory {config.migrations} does not exist",
            remedy='pass --migrations DIR or --bundle DIR, or set migrations = "..." in [tool.schemagate]',
        )
    from validator.structural import bundle_from_directory

    return bundle_from_directory(config)


def already_applied(conn, config, settings) -> int | None:
    """``apply --migrations DIR`` on an up-to-date database: see ``schemagate.quick_apply`` (click-free,
    so the console script answers a no-op apply before importing click)."""
    from schemagate.quick_apply import already_applied as applied

    return applied(conn, config, settings)


def executor_settings(config, **flags: Any):
    return config.executor.with_overrides(**flags)


def up_to_target(bundle, target: str):
    """``apply --target VERSION``: the bundle without the versioned migrations above VERSION (like
    Flyway's ``-target``), so they stay pending.  Repeatables are left out too while any versioned
    migration lies above the target: they are written against the latest schema (a view over a
    column a later version adds would fail), which Flyway does not consider (it runs them anyway).
    Undo files are kept.  Applied versions above the target are ``future`` in the plan, not
    refused.  VERSION must be the version of one of the bundle's versioned migrations (exit 2
    naming the closest ones otherwise)."""
    from executor.naming import REPEATABLE, UNDO, VERSIONED, Version

    try:
        wanted = Version.parse(target)
    except ValueError:
        wanted = None
    versions = sorted(
        {e.parsed_version for e in bundle.manifest.migrations if e.kind == VERSIONED and e.parsed_version}
    )
    if wanted is None or wanted not in versions:
        below = [str(v) for v in versions if wanted is not None and v < wanted][-2:]
        above = [str(v) for v in versions if wanted is not None and v > wanted][:2]
        close = below + above or [str(v) for v in versions[-3:]]
        raise ConfigurationError(
            f"--target {target}: no versioned migration has this version",
            remedy=f"pass the version of a migration, e.g. one of {', '.join(close)} (apply stops after it)"
            if close
            else "there are no versioned migrations",
        )
    above = any(v > wanted for v in versions)
    kept = [
        e
        for e in bundle.manifest.migrations
        if (e.kind == VERSIONED and e.parsed_version <= wanted)
        or e.kind == UNDO
        or (e.kind == REPEATABLE and not above)
    ]
    return dataclasses.replace(bundle, manifest=dataclasses.replace(bundle.manifest, migrations=kept))


# -- rendering ---------------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_dict"):
        return _jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _ms(value: int | float | None) -> str:
    if value is None:
        return ""
    return f"{value / 1000:.2f} s" if value >= 10_000 else f"{round(value)} ms"


def _state(info: Any) -> str:
    state = info.state
    return str(state.value if isinstance(state, enum.Enum) else state)


def info_rows(infos: list[Any]) -> list[list[Any]]:
    rows = []
    for i in infos:
        installed = i.installed_on.strftime("%Y-%m-%d %H:%M:%S") if getattr(i, "installed_on", None) else ""
        rows.append([i.version or "", i.description, i.kind, _state(i), installed, _ms(i.execution_time_ms)])
    return rows


def info_table(infos: list[Any]) -> str:
    if not infos:
        return "(no migrations in the bundle and none recorded in the database)"
    headers = ["Version", "Description", "Kind", "State", "Installed on", "Time"]
    return render_table(headers, info_rows(infos), right=["Time"])


def state_counts(infos: list[Any]) -> str:
    counts: dict[str, int] = {}
    for i in infos:
        counts[_state(i)] = counts.get(_state(i), 0) + 1
    return ", ".join(f"{n} {state}" for state, n in counts.items()) or "nothing"


def invalid_index_lines(
    invalid: list[tuple[Any, str | None]], infos: list[Any], *, with_migrations: bool = True
) -> list[str]:
    """What ``info`` says about INVALID indexes (left by an interrupted or failed concurrent build)."""
    states = {i.file: _state(i) for i in infos}
    count = f"{len(invalid)} INVALID {'index' if len(invalid) == 1 else 'indexes'}"
    lines = [
        f"{count} (left by an interrupted or failed concurrent build: not used by queries, still updated on "
        "every write):"
    ]
    for row, owner in invalid:
        where = f"  {row.qualified} on {row.qualified_table}: "
        if owner is None and not with_migrations:
            lines.append(where + "(pass --migrations DIR or --bundle DIR to see which migration built it)")
        elif owner is None:
            lines.append(where + "built by no recorded migration")
        else:
            lines.append(where + f"{owner} ({states.get(owner, 'recorded')}) should have built it")
    example = next((row for row, owner in invalid if owner is not None), invalid[0][0])
    lines.append(
        f"remedy: rebuild one in place with REINDEX INDEX CONCURRENTLY {example.qualified}, or drop it with "
        "DROP INDEX CONCURRENTLY (a pending or failed migration that builds it then builds it again)"
    )
    return lines


def describe_plan(plan: Any, *, limit: int | None = None) -> str:
    """One line per migration to apply; with ``limit``, a long plan shows its head and tail."""
    items = plan.to_apply
    width = max((len(entry.file) for entry, _ in items), default=0)
    lines = [
        f"  {entry.file.ljust(width)}  ({why}{'' if entry.transactional else '; runs outside a transaction'})"
        for entry, why in items
    ]
    if limit is not None and len(lines) > limit:
        keep = limit // 2
        hidden = len(lines) - 2 * keep
        lines = [*lines[:keep], f"  ... {hidden} more (`schemagate plan` lists them all) ...", *lines[-keep:]]
    return "\n".join(lines)


def refusal_error(refusals: list[Any]) -> Exception:
    """One refusal as it is; several as one MigrationRefused listing each with its remedy."""
    if len(refusals) == 1:
        return refusals[0]
    text = "\n".join(f"  - {r}".replace("\n", "\n    ") for r in refusals)
    return MigrationRefused(
        f"{len(refusals)} refusals; nothing was applied:\n{text}",
        remedy="fix each refusal above as its remedy says, then run again (`schemagate info` shows all)",
        context={"refusals": [r.to_dict() for r in refusals if hasattr(r, "to_dict")]},
    )


def applied_count(infos: list[Any]) -> int:
    return sum(1 for i in infos if _state(i) == "applied")


class Progress:
    """Prints the executor's events (``on_event`` of ``executor.apply.apply``) as they happen.

    On a terminal, one line shows the migration being applied, its number and its elapsed time
    while it runs (``[3/40] V003__add_index.sql 12.4 s``); otherwise its name is written when it
    starts and its duration ends the line.  Either way each migration leaves one line with its
    duration; the server's notices of a migration are printed under it (they arrive while it runs).
    """

    def __init__(self, width: int = 0, total: int = 0) -> None:
        from schemagate.console import ProgressLine

        self.width = width  # file names are padded to this, so the durations line up
        self.line = ProgressLine(total, width=width)
        self.notices: list[str] = []

    def __call__(self, event: Any) -> None:
        kind = event.kind
        if kind == "notice":
            self.notices.append(event.message)
            return
        if kind == "start":
            self.notices = []
            self.line.start(event.file)
        elif kind == "applied":
            self.line.finish(f"{_ms(event.duration_ms):>7}")
            self._flush()
        elif kind == "failed":
            self.line.finish(f"FAILED after {_ms(event.duration_ms)}")
            self._flush()
        elif kind == "lock_acquired":
            if event.duration_ms and event.duration_ms >= 1000:
                self._say(f"  lock acquired after {_ms(event.duration_ms)}")
        elif kind in ("waiting_for_lock", "retry", "stopped", "invalid_index_dropped"):
            self._say(f"  {event.message}")

    def _say(self, text: str) -> None:
        self.line.interrupt()
        click.echo(text)
        self.line.resume()

    def _flush(self) -> None:
        for notice in self.notices:
            click.echo(f"      {notice}")
        self.notices = []

    def close(self) -> None:
        self.line.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def confirm_or_refuse(question: str, yes: bool) -> bool:
    """``--yes`` skips the question; without a terminal and without ``--yes`` refuse (exit 2)."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigurationError(
            f'not applied: stdin is not a terminal, so nobody can answer "{question}"',
            remedy="pass --yes to apply without asking",
        )
    return click.confirm(question, default=False)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def do_apply(conn, bundle, settings, target: Target, *, yes: bool) -> Any:
    """plan -> (prompt) -> apply, printing progress; returns the ApplyResult, or None when up to date."""
    from executor import apply as core

    plan = core.plan(conn, bundle, settings)
    if plan.refusals:
        raise refusal_error(plan.refusals)
    if not plan.to_apply:
        click.echo(f"nothing to apply: database is up to date ({applied_count(plan.infos)} applied)")
        return None
    count = len(plan.to_apply)
    click.echo(f"{_plural(count, 'migration')} to apply to {target.label}:")
    click.echo(describe_plan(plan, limit=PLAN_LINES_SHOWN))
    if not confirm_or_refuse(f"apply {_plural(count, 'migration')} to {target.label}?", yes):
        click.echo("not applied: declined at the prompt")
        raise click.exceptions.Exit(1)
    click.echo("applying:")
    started = time.monotonic()
    width = max(len(entry.file) for entry, _ in plan.to_apply)
    try:
        with Progress(width, total=count) as progress:
            result = core.apply(conn, bundle, settings, on_event=progress)
    except SchemagateError as error:
        before = error.context.get("applied_before_failure") or []
        if before:
            click.echo(f"{_plural(len(before), 'migration')} applied before the failure stay applied")
        raise
    elapsed = time.monotonic() - started
    summary = f"applied {_plural(len(result.applied), 'migration')} in {elapsed:.2f} s"
    if result.stopped_early:
        summary += f"; stopped early, {len(result.remaining)} left for the next run"
    elif not result.applied:
        summary = "nothing to apply: another executor applied them meanwhile"
    click.echo(summary)
    return result


# -- commands ----------------------------------------------------------------------------------


def _database_option(f):
    return click.option(
        "--database-url",
        metavar="URL",
        help="libpq URL (default: $DATABASE_URL, then PG* variables, then the embedded PostgreSQL)",
    )(f)


def _source_options(f):
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


def _schema_option(f):
    return click.option(
        "--schema",
        metavar="S",
        help="schema of the history table (default: [tool.schemagate.executor], else public)",
    )(f)


def _search_path_option(f):
    return click.option(
        "--search-path",
        "search_path",
        metavar="SCHEMAS",
        callback=_checked_search_path,
        help="search_path the migrations run with, e.g. 'storage, public' "
        "(default: [tool.schemagate] search_path, else the role's own)",
    )(f)


def _checked_search_path(_ctx: Any, _param: Any, value: str | None) -> str | None:
    if value is None:
        return None
    from validator.config import check_search_path

    return check_search_path(value, "--search-path")


def _tolerance_options(f):
    f = click.option(
        "--allow-missing", is_flag=True, default=None, help="tolerate applied versions absent from the bundle"
    )(f)
    return click.option(
        "--out-of-order", is_flag=True, default=None, help="allow pending versions below the highest applied"
    )(f)


def _print_json(data: Any) -> None:
    click.echo(json.dumps(_jsonable(data), indent=2, sort_keys=False))


def register(group: click.Group) -> None:
    """Add plan, apply (and `migrate`, the same command), info, repair, baseline, undo and run to the
    `schemagate` group."""

    @group.command("plan")
    @_database_option
    @_source_options
    @_tolerance_options
    @_schema_option
    @_search_path_option
    @click.option("--json", "as_json", is_flag=True, help="print the plan as JSON")
    @click.option("--target", "target_version", metavar="VERSION", help="plan `apply --target VERSION`")
    def plan_cmd(
        database_url: str | None,
        bundle_dir: Path | None,
        migrations: Path | None,
        out_of_order: bool | None,
        allow_missing: bool | None,
        schema: str | None,
        search_path: str | None,
        as_json: bool,
        target_version: str | None,
    ) -> None:
        """Show what `apply` would do and why; changes nothing."""
        from executor import apply as core

        config = load_config(migrations)
        bundle = load_migrations(bundle_dir, migrations, config)
        if target_version is not None:
            bundle = up_to_target(bundle, target_version)
        settings = executor_settings(
            config,
            allow_out_of_order=out_of_order or None,
            allow_missing=allow_missing or None,
            schema=schema,
            search_path=search_path,
        )
        with target_database(database_url) as target, connected(target) as conn:
            plan = core.plan(conn, bundle, settings)
            if as_json:
                _print_json(
                    {
                        "target": target.label,
                        "to_apply": [{"file": e.file, "why": why} for e, why in plan.to_apply],
                        "refusals": [r.to_dict() for r in plan.refusals],
                        "migrations": plan.infos,
                    }
                )
            else:
                click.echo(f"target: {target.label}")
                if plan.to_apply:
                    click.echo(f"{len(plan.to_apply)} to apply:")
                    click.echo(describe_plan(plan))
                elif not plan.refusals:
                    click.echo(
                        f"nothing to apply: database is up to date ({applied_count(plan.infos)} applied)"
                    )
            if plan.refusals:
                raise refusal_error(plan.refusals)

    @group.command("apply")
    @_database_option
    @_source_options
    @click.option("--yes", "-y", is_flag=True, help="apply without asking")
    @_tolerance_options
    @_schema_option
    @_search_path_option
    @click.option("--lock-timeout", metavar="D", help="lock_timeout for every migration (e.g. 5s)")
    @click.option(
        "--statement-timeout", metavar="D", help="statement_timeout for every migration (e.g. 30min)"
    )
    @click.option(
        "--target",
        "target_version",
        metavar="VERSION",
        help="stop after this version: later versioned migrations stay pending (Flyway's -target)",
    )
    @click.option(
        "--targets",
        "targets_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="a fleet: a file with one database URL per line, each migrated on its own",
    )
    @click.option(
        "--concurrency",
        type=int,
        default=DEFAULT_FLEET_CONCURRENCY,
        show_default=True,
        metavar="N",
        help="with --targets: how many databases are migrated at once",
    )
    def apply_cmd(
        database_url: str | None,
        bundle_dir: Path | None,
        migrations: Path | None,
        yes: bool,
        out_of_order: bool | None,
        allow_missing: bool | None,
        schema: str | None,
        search_path: str | None,
        lock_timeout: str | None,
        statement_timeout: str | None,
        target_version: str | None,
        targets_file: Path | None,
        concurrency: int,
    ) -> None:
        """Apply pending migrations (asks first unless --yes).  `schemagate migrate` is the same
        command, for Flyway hands.  With --targets FILE, to every database the file lists, each with
        its own lock and history: a failing target fails alone and is named, the others complete,
        the exit code is 1 if any failed, and a re-run finishes it."""
        config = load_config(migrations)
        if targets_file is not None and database_url:
            raise click.UsageError("pass either --database-url or --targets FILE, not both")
        fleet = targets_file is not None
        if bundle_dir is not None or not config.migrations.is_dir() or target_version is not None or fleet:
            bundle = load_migrations(bundle_dir, migrations, config)  # verified before any connection
            if target_version is not None:
                before = len(bundle.manifest.migrations)
                bundle = up_to_target(bundle, target_version)
                left_out = before - len(bundle.manifest.migrations)
                if left_out:
                    click.echo(
                        f"--target {target_version}: {_plural(left_out, 'migration')} above it left out "
                        "(later versions, and the repeatables written against them, stay pending)"
                    )
        else:
            bundle = None  # checked after a look at the history: see already_applied
        settings = executor_settings(
            config,
            allow_out_of_order=out_of_order or None,
            allow_missing=allow_missing or None,
            schema=schema,
            search_path=search_path,
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
        )
        if fleet:
            apply_fleet(targets_file, bundle, settings, concurrency, yes)
            return
        with target_database(database_url) as target, connected(target) as conn:
            if bundle is None:
                applied = already_applied(conn, config, settings)
                if applied is not None:
                    click.echo(f"nothing to apply: database is up to date ({applied} applied)")
                    return
                bundle = load_migrations(None, migrations, config)
            do_apply(conn, bundle, settings, target, yes=yes)

    group.add_command(apply_cmd, "migrate")

    @group.command("info")
    @_database_option
    @_source_options
    @_schema_option
    @click.option("--json", "as_json", is_flag=True, help="print the state as JSON")
    def info_cmd(
        database_url: str | None,
        bundle_dir: Path | None,
        migrations: Path | None,
        schema: str | None,
        as_json: bool,
    ) -> None:
        """Applied / pending / failed migrations, as a table."""
        from executor import apply as core

        config = load_config(migrations)
        bundle = load_migrations(bundle_dir, migrations, config, optional=True)
        settings = executor_settings(config, schema=schema)
        with target_database(database_url) as target, connected(target) as conn:
            infos = core.info(conn, bundle, settings)
            invalid = core.invalid_indexes(conn, bundle, settings, infos)
        if as_json:
            _print_json(
                {
                    "target": target.label,
                    "migrations": infos,
                    "invalid_indexes": [{**row.to_dict(), "built_by": owner} for row, owner in invalid],
                }
            )
            return
        click.echo(info_table(infos))
        click.echo(f"\n{state_counts(infos)}")
        if invalid:
            lines = invalid_index_lines(invalid, infos, with_migrations=bundle is not None)
            click.echo("\n" + "\n".join(lines))

    @group.command("repair")
    @_database_option
    @_source_options
    @_schema_option
    @click.option(
        "--realign-checksums", is_flag=True, help="also record the bundle's checksums for drifted rows"
    )
    def repair_cmd(
        database_url: str | None,
        bundle_dir: Path | None,
        migrations: Path | None,
        schema: str | None,
        realign_checksums: bool,
    ) -> None:
        """Remove failed history rows (after a person fixed the database)."""
        from executor import apply as core

        config = load_config(migrations)
        bundle = load_migrations(bundle_dir, migrations, config, optional=not realign_checksums)
        settings = executor_settings(config, schema=schema)
        with target_database(database_url) as target, connected(target) as conn:
            result = core.repair(conn, bundle, settings, realign_checksums=realign_checksums)
        if not result.removed_failed and not result.realigned:
            click.echo(
                f"nothing to repair in {target.label}: no failed rows"
                + (", no drifted checksums" if realign_checksums else "")
            )
            return
        for script in result.removed_failed:
            click.echo(f"  removed the failed row of {script}")
        for script in result.realigned:
            click.echo(f"  realigned the checksum of {script} to the bundle's")
        click.echo(
            f"repaired {target.label}: {_plural(len(result.removed_failed), 'failed row')} removed, "
            f"{_plural(len(result.realigned), 'checksum')} realigned"
        )

    @group.command("baseline", short_help="Mark an existing database as at version V.")
    @click.option("--version", "version", required=True, metavar="V", help="the version the database is at")
    @click.option("--description", default="baseline", show_default=True, metavar="TEXT")
    @click.option("--force", is_flag=True, help="baseline even a database that holds no tables")
    @_database_option
    @_source_options
    @_schema_option
    def baseline_cmd(
        version: str,
        description: str,
        force: bool,
        database_url: str | None,
        bundle_dir: Path | None,
        migrations: Path | None,
        schema: str | None,
    ) -> None:
        """Mark an existing database as being at version V (adopting a schema made without schemagate):
        every migration up to V is recorded with its checksum and never applied.  V must be one of the
        migrations; a database that holds no tables is refused unless --force.  A database another tool
        migrated is better taken over with `schemagate import --from TOOL`."""
        from executor import apply as core

        config = load_config(migrations)
        bundle = load_migrations(bundle_dir, migrations, config)
        settings = executor_settings(config, schema=schema)
        with target_database(database_url) as target, connected(target) as conn:
            marked = core.baseline(conn, version, description, settings, bundle=bundle, force=force)
        click.echo(
            f"baselined {target.label} at version {version}: {_plural(len(marked), 'migration')} up to "
            f"{version} recorded as applied, with their checksums"
        )

    @group.command("undo", short_help="Reverse the latest applied version with its U-file.")
    @_database_option
    @_source_options
    @_schema_option
    @_search_path_option
    @click.option("--version", "version", metavar="V", help="refuse unless V is the latest applied version")
    @click.option("--yes", "-y", is_flag=True, help="undo without asking")
    def undo_cmd(
        database_url: str | None,
        bundle_dir: Path | None,
        migrations: Path | None,
        schema: str | None,
        search_path: str | None,
        version: str | None,
        yes: bool,
    ) -> None:
        """Apply U<version> to reverse the most recently applied version (an explicit request;
        `apply` never runs undo files).  The version is pending again afterwards."""
        from executor import apply as core

        config = load_config(migrations)
        bundle = load_migrations(bundle_dir, migrations, config)
        settings = executor_settings(config, schema=schema, search_path=search_path)
        with target_database(database_url) as target, connected(target) as conn:
            what = f"version {version}" if version else "the latest applied version"
            if not confirm_or_refuse(f"undo {what} in {target.label}?", yes):
                click.echo("not undone: declined at the prompt")
                raise click.exceptions.Exit(1)
            with Progress(len("undo")) as progress:
                done = core.undo(conn, bundle, settings, version=version, on_event=progress)
        click.echo(
            f"undid version {done.entry.version} with {done.entry.file} in {done.duration_ms} ms: "
            f"version {done.entry.version} is pending again in {target.label}"
        )

    @group.command("run", short_help="Validate, ask, apply, then show the state.")
    @_database_option
    @_search_path_option
    @click.option("--yes", "-y", is_flag=True, help="apply without asking")
    def run_cmd(database_url: str | None, search_path: str | None, yes: bool) -> None:
        """Validate -> show the plan -> ask -> apply -> print the state, on this machine."""
        from executor import apply as core

        config = load_config(None)
        bundle = validate_for_run(config)
        settings = executor_settings(config, search_path=search_path)
        with target_database(database_url) as target, connected(target) as conn:
            do_apply(conn, bundle, settings, target, yes=yes)
            infos = core.info(conn, bundle, settings)
        click.echo("")
        click.echo(info_table(infos))
        click.echo(f"\n{state_counts(infos)}")


def apply_fleet(targets_file: Path, bundle: Any, settings: Any, concurrency: int, yes: bool) -> None:
    """``apply --targets``: the bundle to every target (executor.fleet), one line per target."""
    from executor import fleet

    targets = fleet.read_targets_file(targets_file)
    count = len(bundle.manifest.migrations)
    question = f"apply the bundle ({_plural(count, 'migration')}) to {_plural(len(targets), 'database')}?"
    if not confirm_or_refuse(question, yes):
        click.echo("not applied: declined at the prompt")
        raise click.exceptions.Exit(1)
    at_once = min(concurrency, len(targets))
    click.echo(f"applying to {_plural(len(targets), 'database')}, {at_once} at a time:")
    width = max(len(t.name) for t in targets)
    result = fleet.run_fleet(
        targets,
        lambda target: fleet.apply_to_target(target, bundle, settings),
        concurrency=concurrency,
        on_done=lambda outcome: click.echo(outcome.line(width)),
    )
    click.echo(f"{result.summary()} in {result.duration_ms / 1000:.1f} s")
    if result.failed:
        click.echo("run the same command again once they are fixed: the others are up to date and stay so")
        raise click.exceptions.Exit(1)


def validate_for_run(config) -> Any:
    """Run the full validation (what `schemagate validate` runs); exit 1 on blocking findings."""
    from schemagate.console import echo_lines
    from validator.reports import console_lines
    from validator.validate import run_validation

    click.echo(f"validating {os.path.relpath(config.migrations, Path.cwd())}:")
    result = run_validation(config)
    assert result.report is not None
    echo_lines(console_lines(result.report, relative_to=Path.cwd()))
    if result.exit_code or result.bundle is None:
        click.echo("not applied: validation found blocking problems (above); nothing touched the database")
        raise click.exceptions.Exit(result.exit_code or 1)
    click.echo("")
    return result.bundle
