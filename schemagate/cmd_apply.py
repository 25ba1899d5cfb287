"""``plan``, ``apply`` (and ``migrate``, the same command), ``undo`` and ``run``: the commands that
change what is applied.  A thin edge over ``executor.apply``: resolve the target database
(``schemagate.target``), load the bundle, build the settings, call one core function, and print
its result (``schemagate.db_output``)."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from executor.errors import ConfigurationError, SchemagateError
from schemagate.console import out
from schemagate.db_output import (
    Progress,
    applied_count,
    describe_plan,
    info_table,
    plural,
    print_json,
    refusal_error,
    state_counts,
)
from schemagate.quick_apply import checked_on
from schemagate.target import (
    Target,
    confirm_or_refuse,
    connected,
    database_option,
    directory_bundle,
    executor_settings,
    layout_option,
    load_config,
    load_migrations,
    schema_option,
    search_path_option,
    source_options,
    target_database,
    tolerance_options,
)

if TYPE_CHECKING:
    import click
    from psycopg2.extensions import connection as Connection

    from executor.apply import ApplyResult
    from executor.bundle import Bundle
    from executor.planning import Plan
    from executor.settings import ExecutorSettings
    from validator.config import ValidatorConfig

PLAN_LINES_SHOWN = 20  # before `apply` asks; `plan` lists everything
DEFAULT_FLEET_CONCURRENCY = 4  # executor.fleet.DEFAULT_CONCURRENCY (imported lazily: the CLI starts fast)


def _exit(code: int) -> NoReturn:
    """End the command with ``code`` (click's Exit: a declined prompt, a failed fleet target)."""
    import click

    raise click.exceptions.Exit(code)


def already_applied(conn: Connection, config: ValidatorConfig, settings: ExecutorSettings) -> int | None:
    """``apply --migrations DIR`` on an up-to-date database: see ``schemagate.quick_apply`` (click-free,
    so the console script answers a no-op apply before importing click)."""
    from schemagate.quick_apply import already_applied as applied

    return applied(conn, config, settings)


def up_to_target(bundle: Bundle, target: str) -> Bundle:
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
    any_above = any(v > wanted for v in versions)
    kept = [
        e
        for e in bundle.manifest.migrations
        if (e.kind == VERSIONED and e.parsed_version is not None and e.parsed_version <= wanted)
        or e.kind == UNDO
        or (e.kind == REPEATABLE and not any_above)
    ]
    return dataclasses.replace(bundle, manifest=dataclasses.replace(bundle.manifest, migrations=kept))


def _up_to_target(bundle: Bundle, target_version: str) -> Bundle:
    """``up_to_target``, saying how many migrations above the target it left out."""
    before = len(bundle.manifest.migrations)
    bundle = up_to_target(bundle, target_version)
    left_out = before - len(bundle.manifest.migrations)
    if left_out:
        out(
            f"--target {target_version}: {plural(left_out, 'migration')} above it left out "
            "(later versions, and the repeatables written against them, stay pending)"
        )
    return bundle


def do_apply(
    conn: Connection, bundle: Bundle, settings: ExecutorSettings, target: Target, *, yes: bool
) -> ApplyResult | None:
    """plan -> (prompt) -> apply, printing progress; returns the ApplyResult, or None when up to date.

    With ``yes`` nobody is asked, so the plan shown is the one the executor makes under the lock
    (``on_plan``): the history is read once.  Without it, the plan is shown before the prompt and the
    lock (nobody holds the lock while a person reads), and the executor plans again under it."""
    from executor import apply as core

    progress = Progress()
    started = time.monotonic()

    def show(plan: Plan) -> bool:
        nonlocal started
        if plan.refusals:
            raise refusal_error(plan.refusals)
        if not plan.to_apply:
            out(f"nothing to apply: database is up to date ({applied_count(plan.infos)} applied)")
            return False
        count = len(plan.to_apply)
        out(f"{plural(count, 'migration')} to apply to {target.label}:")
        out(describe_plan(plan, limit=PLAN_LINES_SHOWN))
        if not confirm_or_refuse(f"apply {plural(count, 'migration')} to {target.label}?", yes):
            out("not applied: declined at the prompt")
            _exit(1)
        out("applying:")
        progress.expect(max(len(entry.file) for entry, _ in plan.to_apply), count)
        started = time.monotonic()
        return True

    if not yes and not show(core.plan(conn, bundle, settings)):
        return None
    try:
        with progress:
            result = core.apply(conn, bundle, settings, on_event=progress, on_plan=show if yes else None)
    except SchemagateError as error:
        before = error.context.get("applied_before_failure") or []
        if before:
            out(f"{plural(len(before), 'migration')} applied before the failure stay applied")
        raise
    if yes and not result.plan.to_apply:
        return None
    elapsed = time.monotonic() - started
    summary = f"applied {plural(len(result.applied), 'migration')} in {elapsed:.2f} s"
    if result.stopped_early:
        summary += f"; stopped early, {len(result.remaining)} left for the next run"
    elif not result.applied:
        summary = "nothing to apply: another executor applied them meanwhile"
    out(summary)
    return result


def run_apply(
    database_url: str | None,
    bundle_dir: Path | None,
    migrations: Path | None,
    *,
    yes: bool,
    out_of_order: bool | None = None,
    allow_missing: bool | None = None,
    schema: str | None = None,
    search_path: str | None = None,
    lock_timeout: str | None = None,
    statement_timeout: str | None = None,
    target_version: str | None = None,
    targets_file: Path | None = None,
    concurrency: int = DEFAULT_FLEET_CONCURRENCY,
) -> None:
    """``schemagate apply`` (its options as click reads them; see ``apply_cmd``), without click: the
    console script runs it directly for the plain ``apply --yes`` (``schemagate.cli.entry``), the
    click command for everything else."""
    config = load_config(migrations)
    if targets_file is not None and database_url:
        import click

        raise click.UsageError("pass either --database-url or --targets FILE, not both")
    fleet = targets_file is not None
    if bundle_dir is not None or not config.migrations.is_dir() or fleet:
        bundle = load_migrations(bundle_dir, migrations, config)  # verified before any connection
        if target_version is not None:
            bundle = _up_to_target(bundle, target_version)
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
    if targets_file is not None:
        assert bundle is not None  # a fleet's bundle is loaded above, before any connection
        apply_fleet(targets_file, bundle, settings, concurrency, yes)
        return
    with target_database(database_url) as target, connected(target) as conn:
        if bundle is None:
            applied = None if checked_on(conn) else already_applied(conn, config, settings)
            if applied is not None:
                out(f"nothing to apply: database is up to date ({applied} applied)")
                return
            bundle = directory_bundle(conn, config, settings, looked=True)
            if target_version is not None:
                bundle = _up_to_target(bundle, target_version)
        do_apply(conn, bundle, settings, target, yes=yes)


def register(group: click.Group) -> None:
    """Add plan, apply (and `migrate`, the same command), undo and run to the `schemagate` group."""
    import click

    @group.command("plan")
    @database_option
    @source_options
    @tolerance_options
    @schema_option
    @search_path_option
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
        bundle: Bundle | None = None
        if bundle_dir is not None or not config.migrations.is_dir():
            bundle = load_migrations(bundle_dir, migrations, config)
        settings = executor_settings(
            config,
            allow_out_of_order=out_of_order or None,
            allow_missing=allow_missing or None,
            schema=schema,
            search_path=search_path,
        )
        with target_database(database_url) as target, connected(target) as conn:
            if bundle is None:  # the directory as apply judges it
                bundle = directory_bundle(conn, config, settings)
            if target_version is not None:
                bundle = up_to_target(bundle, target_version)
            plan = core.plan(conn, bundle, settings)
            if as_json:
                print_json(
                    {
                        "target": target.label,
                        "to_apply": [{"file": e.file, "why": why} for e, why in plan.to_apply],
                        "refusals": [r.to_dict() for r in plan.refusals],
                        "migrations": plan.infos,
                    }
                )
            else:
                out(f"target: {target.label}")
                if plan.to_apply:
                    out(f"{len(plan.to_apply)} to apply:")
                    out(describe_plan(plan))
                elif not plan.refusals:
                    out(f"nothing to apply: database is up to date ({applied_count(plan.infos)} applied)")
            if plan.refusals:
                raise refusal_error(plan.refusals)

    @group.command("apply")
    @database_option
    @source_options
    @click.option("--yes", "-y", is_flag=True, help="apply without asking")
    @tolerance_options
    @schema_option
    @search_path_option
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
        run_apply(
            database_url,
            bundle_dir,
            migrations,
            yes=yes,
            out_of_order=out_of_order,
            allow_missing=allow_missing,
            schema=schema,
            search_path=search_path,
            lock_timeout=lock_timeout,
            statement_timeout=statement_timeout,
            target_version=target_version,
            targets_file=targets_file,
            concurrency=concurrency,
        )

    group.add_command(apply_cmd, "migrate")

    @group.command("undo", short_help="Reverse the latest applied version with its U-file.")
    @database_option
    @source_options
    @schema_option
    @search_path_option
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
                out("not undone: declined at the prompt")
                _exit(1)
            with Progress(len("undo")) as progress:
                done = core.undo(conn, bundle, settings, version=version, on_event=progress)
        out(
            f"undid version {done.entry.version} with {done.entry.file} in {done.duration_ms} ms: "
            f"version {done.entry.version} is pending again in {target.label}"
        )

    @group.command("run", short_help="Validate, ask, apply, then show the state.")
    @layout_option
    @database_option
    @search_path_option
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
        out("")
        out(info_table(infos))
        out(f"\n{state_counts(infos)}")


def apply_fleet(
    targets_file: Path, bundle: Bundle, settings: ExecutorSettings, concurrency: int, yes: bool
) -> None:
    """``apply --targets``: the bundle to every target (executor.fleet), one line per target."""
    from executor import fleet

    targets = fleet.read_targets_file(targets_file)
    count = len(bundle.manifest.migrations)
    question = f"apply the bundle ({plural(count, 'migration')}) to {plural(len(targets), 'database')}?"
    if not confirm_or_refuse(question, yes):
        out("not applied: declined at the prompt")
        _exit(1)
    at_once = min(concurrency, len(targets))
    out(f"applying to {plural(len(targets), 'database')}, {at_once} at a time:")
    width = max(len(t.name) for t in targets)
    result = fleet.run_fleet(
        targets,
        lambda target: fleet.apply_to_target(target, bundle, settings),
        concurrency=concurrency,
        on_done=lambda outcome: out(outcome.line(width)),
    )
    out(f"{result.summary()} in {result.duration_ms / 1000:.1f} s")
    if result.failed:
        out("run the same command again once they are fixed: the others are up to date and stay so")
        _exit(1)


def validate_for_run(config: ValidatorConfig) -> Bundle:
    """Run the full validation (what `schemagate validate` runs); exit 1 on blocking findings."""
    from schemagate.console import echo_lines
    from validator.reports import console_lines
    from validator.validate import run_validation

    out(f"validating {os.path.relpath(config.migrations, Path.cwd())}:")
    result = run_validation(config)
    assert result.report is not None
    echo_lines(console_lines(result.report, relative_to=Path.cwd()))
    if result.exit_code or result.bundle is None:
        out("not applied: validation found blocking problems (above); nothing touched the database")
        _exit(result.exit_code or 1)
    out("")
    return result.bundle
