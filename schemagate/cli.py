"""``schemagate`` console script.

Exit codes (README.md "Commands"): 0 success; 1 the migrations or the database refused (findings, drift,
failed statement); 2 bad usage or configuration.  Commands live in one module per area and
register themselves on the group; every refusal is a ``SchemagateError`` rendered here.
"""

from __future__ import annotations

import sys

import click

from executor.errors import SchemagateError
from schemagate import console


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="schemagate")
@click.option(
    "--no-color",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=console.disable_colour,
    help="Never colour the output (also: NO_COLOR=1). Colour is used only on a terminal anyway.",
)
def cli() -> None:
    """A gated delivery pipeline for PostgreSQL schema migrations."""


def _register() -> None:
    from schemagate import cmd_clean, cmd_db, cmd_import, cmd_new, cmd_pr_comment, cmd_rules, cmd_validate

    for module in (cmd_new, cmd_validate, cmd_db, cmd_import, cmd_clean, cmd_rules, cmd_pr_comment):
        module.register(cli)


_register()


def main(argv: list[str] | None = None) -> int:
    console.reset_colour()  # --no-color is per invocation
    try:
        # non-standalone click returns (not raises) the code of a command's `raise click.exceptions.Exit(n)`
        code = cli.main(args=argv, prog_name="schemagate", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SchemagateError as exc:
        console.echo(f"error: {exc}", "error", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


def entry() -> None:  # pragma: no cover - console script wrapper
    sys.exit(main())
