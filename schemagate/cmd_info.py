"""``schemagate info``: the applied, pending and failed migrations of the target database, and the
INVALID indexes a concurrent build left behind.  Changes nothing."""

from __future__ import annotations

from pathlib import Path

import click

from schemagate.db_output import info_table, invalid_index_lines, print_json, state_counts
from schemagate.target import (
    connected,
    database_option,
    directory_bundle,
    executor_settings,
    load_config,
    load_migrations,
    schema_option,
    source_options,
    target_database,
)


def register(group: click.Group) -> None:
    """Add info to the `schemagate` group."""

    @group.command("info")
    @database_option
    @source_options
    @schema_option
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
        by_history = bundle_dir is None and config.migrations.is_dir()  # judged as apply judges it
        bundle = None if by_history else load_migrations(bundle_dir, migrations, config, optional=True)
        settings = executor_settings(config, schema=schema)
        with target_database(database_url) as target, connected(target) as conn:
            if by_history:
                bundle = directory_bundle(conn, config, settings)
            infos = core.info(conn, bundle, settings)
            invalid = core.invalid_indexes(conn, bundle, settings, infos)
        if as_json:
            print_json(
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
