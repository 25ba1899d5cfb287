"""``schemagate import --from TOOL``: take over a database that Flyway, Prisma, Drizzle, Diesel,
golang-migrate or dbmate migrated (``executor.adopt``).  The old tool's table is read, never changed."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import click

from executor.errors import ConfigurationError

if TYPE_CHECKING:
    from executor.adopt import TakeOver

SHOWN = 20


def register(group: click.Group) -> None:
    from executor.adopt import TOOLS
    from schemagate.target import (
        confirm_or_refuse,
        connected,
        database_option,
        executor_settings,
        load_config,
        recorded_bundle,
        schema_option,
        source_options,
        target_database,
    )

    @group.command("import", short_help="Take over a database another migration tool migrated.")
    @click.option("--from", "tool_name", required=True, type=click.Choice(list(TOOLS)), help="the tool")
    @database_option
    @source_options
    @schema_option
    @click.option(
        "--table", metavar="SCHEMA.TABLE", help="the old tool's history table, if not where it keeps it"
    )
    @click.option("--dry-run", is_flag=True, help="show what would be imported; change nothing")
    @click.option("--yes", "-y", is_flag=True, help="import without asking")
    def import_cmd(
        tool_name: str,
        database_url: str | None,
        bundle_dir: Path | None,
        migrations: Path | None,
        schema: str | None,
        table: str | None,
        dry_run: bool,
        yes: bool,
    ) -> None:
        """Read TOOL's history table, map every applied migration to its file, and record each in
        schemagate's history with the file's checksum (type IMPORTED). Refuses, writing nothing, when
        the old tool's history is dirty, failed or does not match the files."""
        from executor.adopt import get_tool, take_over

        tool = get_tool(tool_name)
        config = load_config(migrations)
        if bundle_dir is None:
            if config.layout not in (None, tool.layout):
                raise ConfigurationError(
                    f"[tool.schemagate] layout is {config.layout!r}, but {tool.title} migrations use the "
                    f"{tool.layout} layout",
                    remedy=f'set layout = "{tool.layout}" (or remove it) to import from {tool.title}',
                )
            config = dataclasses.replace(config, layout=tool.layout)
        bundle = recorded_bundle(bundle_dir, migrations, config)  # names and checksums: nothing runs
        assert bundle is not None  # not optional: a missing directory is refused
        settings = executor_settings(config, schema=schema)
        with target_database(database_url) as target, connected(target) as conn:

            def confirm(plan: TakeOver) -> bool:
                _show(plan, target.label)
                return confirm_or_refuse(
                    f"record {len(plan.to_write)} migration(s) {tool.title} applied in {target.label}?", yes
                )

            result = take_over(
                conn, bundle, tool_name, settings, table=table, dry_run=dry_run, confirm=confirm
            )
        if dry_run:
            _show(result, target.label)
            click.echo(f"dry run: nothing written ({result.summary()})")
            return
        for note in result.notes:
            click.echo(f"note: {note}")
        if not result.up_to_date and not result.written:
            click.echo("not imported: declined at the prompt")
            raise click.exceptions.Exit(1)
        click.echo(result.summary())
        if result.written:
            click.echo(
                f"{tool.title}'s table {result.table} was left as it was; "
                "from now on run `schemagate apply` instead of the old tool"
            )


def _show(plan: TakeOver, label: str) -> None:
    if not plan.to_write:
        return
    click.echo(f"{len(plan.to_write)} migration(s) applied by {plan.tool} to record in {label}:")
    for row in plan.to_write[:SHOWN]:
        what = "baseline at version " + str(row.version) if row.type == "BASELINE" else row.script
        click.echo(f"  {what}")
    if len(plan.to_write) > SHOWN:
        click.echo(f"  … and {len(plan.to_write) - SHOWN} more")
