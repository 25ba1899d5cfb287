"""``schemagate`` console script.

Exit codes (README.md "Commands"): 0 success; 1 the migrations or the database refused (findings, drift,
failed statement); 2 bad usage or configuration.  Commands live in one module per area and
register themselves on the group; every refusal is a ``SchemagateError`` rendered here.

Start-up is lazy: this module imports neither click nor a command module until it is used.
``entry`` (the console script) first offers the arguments to ``schemagate.quick_apply``, which
answers a no-op ``apply`` without click and without parsing SQL, and falls back here for anything
else; the click group (``cli``, a ``schemagate.lazy_group.LazyGroup``) is built on first use and imports a
command's module only when that command runs (``COMMANDS``), all of them for ``--help`` or an unknown
name.
"""

from __future__ import annotations

import sys
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from schemagate.lazy_group import LazyGroup

# every command -> the module (schemagate.<module>) whose register() adds it to the group
COMMANDS = {
    "new": "cmd_new",
    "validate": "cmd_validate",
    "plan": "cmd_apply",
    "apply": "cmd_apply",
    "migrate": "cmd_apply",
    "undo": "cmd_apply",
    "run": "cmd_apply",
    "info": "cmd_info",
    "repair": "cmd_repair",
    "baseline": "cmd_repair",
    "import": "cmd_import",
    "clean": "cmd_clean",
    "rules": "cmd_rules",
    "explain": "cmd_rules",
    "pr-comment": "cmd_pr_comment",
}


@cache
def _group() -> LazyGroup:
    import click

    from schemagate import console
    from schemagate.lazy_group import LazyGroup

    @click.group(
        cls=LazyGroup,
        modules=COMMANDS,
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )
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

    return cli


def __getattr__(name: str) -> LazyGroup:
    if name == "cli":  # the click group, e.g. for click.testing.CliRunner
        group = _group()
        group.register_all()
        return group
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    import click

    from executor.errors import SchemagateError
    from schemagate import console

    console.reset_colour()  # --no-color is per invocation
    try:
        # non-standalone click returns (not raises) the code of a command's `raise click.exceptions.Exit(n)`
        code = _group().main(args=argv, prog_name="schemagate", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 1
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SchemagateError as exc:
        return console.render_error(exc)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    return code if isinstance(code, int) and not isinstance(code, bool) else 0


def plain_apply(argv: list[str]) -> int | None:
    """The exit code of ``schemagate apply --yes`` run without click, or None: run the full CLI.

    For the arguments ``schemagate.quick_apply.parse`` reads (``apply`` or ``migrate``,
    ``--database-url``, ``--migrations`` or ``--bundle``, ``--schema``) with ``--yes``: the apply
    command's own body (``schemagate.cmd_apply.run_apply``), what the click command runs too, with
    the refusals, the interruption and the closed pipe handled as ``main`` and click handle them.
    Importing click, building the group and parsing with it is about a twentieth of applying 500
    migrations.  None for anything else: no ``--yes`` (the prompt), or what click's option types
    refuse (a ``--bundle`` that is not a directory, a file for ``--migrations``, both at once)."""
    from pathlib import Path

    from schemagate.quick_apply import YES_FLAGS, parse

    options = parse(argv)
    if options is None or not any(arg in YES_FLAGS for arg in argv[1:]):
        return None
    bundle_dir = Path(options["--bundle"]) if "--bundle" in options else None
    migrations = Path(options["--migrations"]) if "--migrations" in options else None
    if bundle_dir is not None and (migrations is not None or not bundle_dir.is_dir()):
        return None
    if migrations is not None and migrations.is_file():
        return None
    import errno

    from executor.errors import SchemagateError
    from schemagate import console
    from schemagate.cmd_apply import run_apply

    console.reset_colour()
    try:
        run_apply(
            options.get("--database-url"), bundle_dir, migrations, yes=True, schema=options.get("--schema")
        )
    except SchemagateError as exc:
        return console.render_error(exc)
    except (EOFError, KeyboardInterrupt):  # click's main turns these into Abort, which main prints
        console.out(err=True)
        console.out("aborted", err=True)
        return 1
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            raise
        import os  # a closed pipe (``| head``): exit 1 quietly, as click does; what is left to flush

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # goes nowhere
        return 1
    return 0


def entry() -> None:  # pragma: no cover - console script wrapper
    from schemagate.quick_apply import quick_apply

    argv = sys.argv[1:]
    code = quick_apply(argv)
    if code is None:
        code = plain_apply(argv)
    sys.exit(main() if code is None else code)
