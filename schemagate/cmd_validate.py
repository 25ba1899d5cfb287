"""``schemagate validate``: the same checks locally and in CodeBuild (see buildspec.yml).

``--format`` says what goes to stdout (the report files of ``--reports`` are the same whatever it
says): ``text`` (the default: each finding with its severity in words, help and docs link, then a
summary), ``json`` (the report.json document), ``sarif`` (SARIF 2.1.0, validator.sarif) or
``github`` (workflow commands that annotate the pull request).  With json and sarif, stdout holds
that document alone and the one-line verdict goes to stderr.  SARIF and annotations name files
relative to the repository root.  ``--sarif FILE`` also writes the SARIF log to FILE (the GitHub
Action annotates and uploads SARIF from one run).

``--database-url URL`` also compares the files with that database's history, as ``flyway validate``
does (validator.database_check).

Exit codes (README.md "Commands"): 0 nothing blocks; 1 findings block (the bundle is not written);
2 bad usage or configuration (e.g. no migrations directory).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING

import click

from schemagate.console import echo, echo_lines
from schemagate.target import layout_option

if TYPE_CHECKING:
    from validator.config import ValidatorConfig
    from validator.database_check import DatabaseCheck
    from validator.reports import RepositoryPaths
    from validator.structural import StructuralResult
    from validator.validate import ValidationResult

FORMATS = ("text", "json", "sarif", "github")


@click.command("validate")
@layout_option
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
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="What to print on stdout: text, json (report.json), sarif (SARIF 2.1.0) or github "
    "(workflow-command annotations). The --reports files are the same whatever the format.",
)
@click.option(
    "--sarif",
    "sarif_file",
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE",
    help="Also write the SARIF 2.1.0 log to FILE.",
)
@click.option(
    "--database-url",
    "database_url",
    metavar="URL",
    help="Also check the files against this database's history, like `flyway validate`: drifted, "
    "missing and failed migrations are errors, pending ones warnings.",
)
@click.option(
    "--schema",
    metavar="S",
    help="Schema of the history table for --database-url (default: [tool.schemagate.executor], else public).",
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
    output_format: str,
    sarif_file: Path | None,
    database_url: str | None,
    schema: str | None,
    sign_with_kms: str | None,
) -> None:
    """Check the migrations: naming, order, syntax, lint, safety; write reports and the bundle."""
    from schemagate.target import load_config
    from validator.config import check_search_path

    config = load_config(migrations.resolve() if migrations else None)  # with --layout
    if search_path is not None:
        config.executor = config.executor.with_overrides(
            search_path=check_search_path(search_path, "--search-path")
        )
    if schema is not None:
        config.executor = config.executor.with_overrides(schema=schema)
    if rehearse and not rehearsal_database_url:
        from localdb.state_dir import state_directory

        state_directory(config.project_root)  # the rehearsal's server lives there: never committed
    from schemagate.console import ProgressLine, is_terminal
    from validator.validate import run_validation

    # what validation is doing, on stderr: on a terminal one line rewritten as the stages go, in a
    # log a line when each stage starts (with the time so far), so a long run shows where it is
    stages: ProgressLine | StageLog = (
        ProgressLine(0, stream=sys.stderr) if is_terminal(sys.stderr) else StageLog(sys.stderr)
    )
    with stages:
        result = run_validation(
            config,
            base_ref=base_ref,
            lint=not no_lint,
            rehearse=rehearse,
            rehearsal_database_url=rehearsal_database_url,
            sign_with_kms=sign_with_kms,
            bundle_dir=bundle,
            reports_dir=reports,
            database_check=_database_check(database_url, config) if database_url else None,
            progress=stages.start,
        )
    assert result.report is not None
    print_report(result, output_format, sarif_file)
    if result.exit_code:
        raise click.exceptions.Exit(result.exit_code)


class StageLog:
    """Validation's stages in a log (no terminal): ``validate: [12.3 s] linting 500 files (sqlfluff)``
    when each starts, then the total when the run ends."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self.stages = 0

    def start(self, stage: str) -> None:
        self.stages += 1
        self._write(f"validate: [{time.monotonic() - self.started:.1f} s] {stage}")

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def __enter__(self) -> StageLog:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stages:
            self._write(f"validate: [{time.monotonic() - self.started:.1f} s] done")


def _database_check(
    database_url: str, config: ValidatorConfig
) -> Callable[[StructuralResult], DatabaseCheck]:
    """``--database-url``: the callback run_validation calls once the files are checked."""

    def check(structural: StructuralResult) -> DatabaseCheck:
        from schemagate.target import connected, target_database
        from validator.database_check import check_against_database

        with target_database(database_url) as target, connected(target) as conn:
            return check_against_database(conn, structural, config.executor, target=target.label)

    return check


def repository_paths(result: ValidationResult) -> RepositoryPaths:
    from validator.reports import RepositoryPaths

    config = result.config
    assert config is not None  # run_validation records the configuration it used
    return RepositoryPaths.for_project(config.migrations, config.project_root, config.config_file)


def print_report(result: ValidationResult, output_format: str, sarif_file: Path | None = None) -> None:
    """The validation's report on stdout in ``output_format`` (and the SARIF log in ``sarif_file``)."""
    import json

    from validator.reports import console_lines, render_github, render_json, summary_line

    report = result.report
    assert report is not None  # run_validation always reports
    if sarif_file is not None or output_format == "sarif":
        from validator.sarif import render_sarif

        sarif = json.dumps(render_sarif(report, repository_paths(result)), indent=2, ensure_ascii=False)
        if sarif_file is not None:
            sarif_file.parent.mkdir(parents=True, exist_ok=True)
            sarif_file.write_text(sarif + "\n", encoding="utf-8")
    if output_format == "text":
        echo_lines(console_lines(report, result.report_paths, relative_to=Path.cwd()))
        if sarif_file is not None:
            echo(f"sarif: {sarif_file}")
        return
    if output_format == "github":
        click.echo(render_github(report, repository_paths(result)), nl=False)
        return
    document = (
        sarif
        if output_format == "sarif"
        else json.dumps(render_json(report), indent=2, ensure_ascii=False, default=str)
    )
    click.echo(document)
    echo(summary_line(report), "ok" if report.passed else "error", err=True)


def register(group: click.Group) -> None:
    """Add `schemagate validate` to the group."""
    group.add_command(validate_command)
