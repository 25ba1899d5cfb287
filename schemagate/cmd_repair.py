"""``schemagate repair`` and ``baseline``: change the history table, never the schema (failed rows
removed, checksums realigned; an existing database marked as at a version)."""

from __future__ import annotations

from pathlib import Path

import click

from schemagate.db_output import plural
from schemagate.target import (
    connected,
    database_option,
    executor_settings,
    load_config,
    recorded_bundle,
    schema_option,
    source_options,
    target_database,
)


def register(group: click.Group) -> None:
    """Add repair and baseline to the `schemagate` group."""

    @group.command("repair")
    @database_option
    @source_options
    @schema_option
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
        bundle = recorded_bundle(bundle_dir, migrations, config, optional=not realign_checksums)
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
            f"repaired {target.label}: {plural(len(result.removed_failed), 'failed row')} removed, "
            f"{plural(len(result.realigned), 'checksum')} realigned"
        )

    @group.command("baseline", short_help="Mark an existing database as at version V.")
    @click.option("--version", "version", required=True, metavar="V", help="the version the database is at")
    @click.option("--description", default="baseline", show_default=True, metavar="TEXT")
    @click.option("--force", is_flag=True, help="baseline even a database that holds no tables")
    @database_option
    @source_options
    @schema_option
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
        bundle = recorded_bundle(bundle_dir, migrations, config)
        settings = executor_settings(config, schema=schema)
        with target_database(database_url) as target, connected(target) as conn:
            marked = core.baseline(conn, version, description, settings, bundle=bundle, force=force)
        click.echo(
            f"baselined {target.label} at version {version}: {plural(len(marked), 'migration')} up to "
            f"{version} recorded as applied, with their checksums"
        )
