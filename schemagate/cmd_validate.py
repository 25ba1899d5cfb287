"""``schemagate validate``: the same checks locally and in CodeBuild (see buildspec.yml).

Exit codes (README.md "Commands"): 0 nothing blocks; 1 findings block (the bundle is not written);
2 bad usage or configuration (e.g. no migrations directory).
"""

from __future__ import annotations

from pathlib import Path

import click

from schemagate.console import echo_lines


@click.command("validate")
@click.option(
    "--migrations",
    "migrations",
    type=click.Path(path_type=Path, file_okay=False),
    help="Migrations directory (default: [tool.schemagate] migrations, else ./migrations).",
)
@click.option(
    "--reports",
    "reports",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write junit.xml, report.md and report.json into DIR.",
)
@click.option(
    "--bundle",
    "bundle",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write the bundle (manifest.json + migrations/) into DIR when nothing blocks.",
)
@click.option(
    "--base-ref",
    "base_ref",
    metavar="REF",
    help="Git ref the change is based on: immutability and order are checked against it, lint, "
    "safety rules and rehearsal judge only what changed since it, and the gate's configuration is "
    "read from it; default: $CODEBUILD_WEBHOOK_BASE_REF in CodeBuild PR builds.",
)
@click.option("--no-lint", "no_lint", is_flag=True, help="Skip sqlfluff.")
@click.option(
    "--rehearse", is_flag=True, help="Apply the migrations to a throwaway PostgreSQL and report locks."
)
@click.option(
    "--rehearsal-database-url",
    "rehearsal_database_url",
    metavar="URL",
    help="Server for --rehearse (default: the embedded PostgreSQL).",
)
@click.option(
    "--search-path",
    "search_path",
    metavar="SCHEMAS",
    help="search_path the rehearsal runs the migrations with, e.g. 'storage, public' "
    "(default: [tool.schemagate] search_path).",
)
@click.option(
    "--sign-with-kms",
    "sign_with_kms",
    metavar="KEY",
    help="Sign the bundle manifest with this KMS key (id, ARN or alias).",
)
def validate_command(
    migrations: Path | None,
    reports: Path | None,
    bundle: Path | None,
    base_ref: str | None,
    no_lint: bool,
    rehearse: bool,
    rehearsal_database_url: str | None,
    search_path: str | None,
    sign_with_kms: str | None,
) -> None:
    """Check the migrations: naming, order, syntax, lint, safety; write reports and the bundle."""
    from validator.config import check_search_path, load_config
    from validator.reports import console_lines
    from validator.validate import run_validation

    config = load_config(Path.cwd(), migrations=migrations.resolve() if migrations else None)
    if search_path is not None:
        config.executor = config.executor.with_overrides(
            search_path=check_search_path(search_path, "--search-path")
        )
    result = run_validation(
        config,
        base_ref=base_ref,
        lint=not no_lint,
        rehearse=rehearse,
        rehearsal_database_url=rehearsal_database_url,
        sign_with_kms=sign_with_kms,
        bundle_dir=bundle,
        reports_dir=reports,
    )
    assert result.report is not None
    echo_lines(console_lines(result.report, result.report_paths))
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)


def register(group: click.Group) -> None:
    """Add `schemagate validate` to the group."""
    group.add_command(validate_command)
