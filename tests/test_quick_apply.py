"""A no-op ``schemagate apply`` answered without click and without parsing SQL (schemagate.quick_apply),
``apply --yes`` with work to do run without click (``schemagate.cli.plain_apply``), and the lazy CLI
behind them (schemagate.cli): what the process imports, the same output, exit code and database as
the click command's, and a fall-back to the click command for everything else."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import click
import pytest

from schemagate import cli as cli_module
from schemagate.cli import COMMANDS, main, plain_apply
from schemagate.quick_apply import parse, quick_apply
from tests.conftest import temporary_database
from tests.database_faults import catalog_snapshot, history_rows
from tests.histories import flyway_billing

REPO_ROOT = Path(__file__).resolve().parent.parent

# modules a no-op apply must not load: click and what only other commands need
NOT_ON_THE_NO_OP_PATH = (
    "click",
    "pglast",
    "sqlfluff",
    "boto3",
    "botocore",
    "rich",
    "aws_lambda_powertools",
    "localdb",
    "executor.adopt",
    "executor.apply",
    "schemagate.cmd_apply",
    "schemagate.cmd_info",
    "schemagate.cmd_repair",
    "schemagate.db_output",
    "schemagate.target",
    "schemagate.console",
    "validator.structural",
    "validator.parse",
    "validator.transactions",
    "validator.lint",
    "validator.safety",
    "validator.rehearsal",
    "validator.validate",
    "validator.reports",
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Flyway billing history (sub-directories per year, a CONCURRENTLY file) in migrations/."""
    flyway_billing.write(tmp_path / "migrations")
    (tmp_path / "pyproject.toml").write_text('[tool.schemagate]\nmigrations = "migrations"\n')
    monkeypatch.chdir(tmp_path)
    for var in ("DATABASE_URL", "PGHOST", "PGSERVICE", "PGDATABASE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def imported_modules(stderr: str) -> set[str]:
    """The modules ``python -X importtime`` reports as imported."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":
                names.add(name)
    return names


def run_schemagate(
    project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "schemagate", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), **(env or {})},
    )


def forbidden(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in NOT_ON_THE_NO_OP_PATH))


def test_a_no_op_apply_process_imports_neither_click_nor_the_validators_heavy_parts(
    project: Path, fresh_db: str
) -> None:
    first = run_schemagate(project, "apply", "--yes", "--database-url", fresh_db)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "applied 22 migrations" in first.stdout
    # the first apply had something to do: the apply command's body ran, without click
    first_modules = imported_modules(first.stderr)
    assert "schemagate.cmd_apply" in first_modules and "validator.structural" in first_modules
    assert "click" not in first_modules

    again = run_schemagate(project, "apply", "--yes", env={"DATABASE_URL": fresh_db})
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout == "nothing to apply: database is up to date (22 applied)\n"
    modules = imported_modules(again.stderr)
    assert "schemagate.quick_apply" in modules and "psycopg2" in modules  # it did the work itself
    assert forbidden(modules) == []
    assert len(history_rows(fresh_db)) == 22


def test_the_quick_answer_is_the_full_commands_answer(project: Path, fresh_db: str, capsys) -> None:
    assert main(["apply", "--yes", "--database-url", fresh_db]) == 0
    capsys.readouterr()
    for argv in (
        ["apply", "--yes", "--database-url", fresh_db],
        ["migrate", "-y", f"--database-url={fresh_db}", "--migrations", "migrations"],
        ["apply", "--schema", "public", "--database-url", fresh_db],
    ):
        assert main(argv) == 0
        full = capsys.readouterr()
        assert quick_apply(argv) == 0
        quick = capsys.readouterr()
        assert (quick.out, quick.err) == (full.out, full.err), argv
        assert quick.out == "nothing to apply: database is up to date (22 applied)\n"


def test_a_refusal_on_the_quick_path_is_printed_as_the_full_command_prints_it(
    project: Path, fresh_db: str, capsys
) -> None:
    bad = fresh_db.rsplit("/", 1)[0] + "/no_such_database_here"
    argv = ["apply", "--yes", "--database-url", bad]
    code = main(argv)
    full = capsys.readouterr()
    assert code == 1 and "could not connect" in full.err
    assert quick_apply(argv) == code
    quick = capsys.readouterr()
    assert (quick.out, quick.err) == (full.out, full.err)


def test_anything_but_a_no_op_apply_falls_back_to_the_full_cli(project: Path, fresh_db: str, capsys) -> None:
    # nothing applied yet: something to do, nothing printed, the full command takes it from the start
    assert quick_apply(["apply", "--yes", "--database-url", fresh_db]) is None
    assert capsys.readouterr() == ("", "")
    assert history_rows(fresh_db) == []
    # arguments only click reads, or no database URL (the PG* variables, the embedded server)
    for argv in (
        ["apply", "--help"],
        ["apply", "--yes", "--bundle", "dist/bundle"],
        ["apply", "--target", "5", "--database-url", fresh_db],
        ["apply", "--database-url"],
        ["apply", "--database-url", "--yes"],
        ["apply", "--yes"],
        ["apply", "--yes", "--migrations", "pyproject.toml", "--database-url", fresh_db],
        ["--no-color", "apply", "--yes", "--database-url", fresh_db],
        ["info", "--database-url", fresh_db],
        [],
    ):
        assert quick_apply(argv) is None, argv
    assert capsys.readouterr() == ("", "")
    assert parse(["apply", "-y", "--database-url=a", "--database-url", "b"]) == {"--database-url": "b"}


def test_a_new_file_on_disk_is_applied_by_the_full_command(project: Path, fresh_db: str, capsys) -> None:
    assert main(["apply", "--yes", "--database-url", fresh_db]) == 0
    (project / "migrations" / "2026" / "V021__add_invoices_memo.sql").write_text(
        "ALTER TABLE invoices ADD COLUMN memo text;\n"
    )
    capsys.readouterr()
    assert quick_apply(["apply", "--yes", "--database-url", fresh_db]) is None
    assert main(["apply", "--yes", "--database-url", fresh_db]) == 0
    assert "applied 1 migration" in capsys.readouterr().out
    assert history_rows(fresh_db)[-1] == ("2026/V021__add_invoices_memo.sql", True)


def test_the_lazy_command_table_names_every_command_with_its_module() -> None:
    registered: dict[str, str] = {}
    for module in sorted(set(COMMANDS.values())):
        group = click.Group()
        __import__(f"schemagate.{module}", fromlist=["register"]).register(group)
        registered.update(dict.fromkeys(group.commands, module))
    assert registered == COMMANDS
    assert sorted(cli_module.cli.commands) == sorted(COMMANDS)


def test_help_and_an_unknown_command_still_list_every_command(capsys) -> None:
    assert main(["--help"]) == 0
    listing = capsys.readouterr().out
    for name in COMMANDS:
        assert f"  {name} " in listing
    assert main(["aply"]) == 2
    assert "Did you mean 'apply'?" in capsys.readouterr().err


def test_the_full_command_takes_over_the_files_the_quick_path_read_once(
    project: Path, fresh_db: str, monkeypatch
) -> None:
    """When the quick path declines, the full command in the same process does not read and hash
    every file again: its first discovery takes the quick path's result (the same bytes); any later
    discovery reads the directory afresh."""
    from validator import discovery

    reads: list[Path] = []
    real = discovery.DirectoryTree

    def counting(root, **kw):
        reads.append(Path(root))
        return real(root, **kw)

    monkeypatch.setattr(discovery, "DirectoryTree", counting)
    from schemagate import quick_apply as qa

    checks: list[object] = []
    real_applied = qa._applied

    def counted(*args, **kwargs):
        checks.append(args)
        return real_applied(*args, **kwargs)

    monkeypatch.setattr(qa, "_applied", counted)
    assert quick_apply(["apply", "--yes", "--database-url", fresh_db]) is None
    assert len(reads) == 1 and len(checks) == 1
    assert main(["apply", "--yes", "--database-url", fresh_db]) == 0
    assert len(reads) == 1  # the full command read nothing more (a plan, then the apply)
    assert len(checks) == 1  # nor asked again whether all is applied, on the connection it took over
    assert len(history_rows(fresh_db)) == 22  # 20 versioned, 2 repeatable
    discovery.discover(project / "migrations")
    assert len(reads) == 2  # taken once only


def load_pg_proxy():
    """bench/pg_proxy.py, the benchmark's counting proxy (bench/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("pg_proxy", REPO_ROOT / "bench" / "pg_proxy.py")
    assert spec is not None and spec.loader is not None
    pg_proxy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pg_proxy)
    return pg_proxy


def run_through_proxy(
    project: Path, database_url: str, *args: str
) -> tuple[subprocess.CompletedProcess, Counter[str]]:
    """``schemagate *args`` as a process whose $DATABASE_URL is bench's counting proxy in front of
    ``database_url``: the process (asserted to exit 0) and the proxy's totals, with ``round_trips``."""
    pg_proxy = load_pg_proxy()
    with pg_proxy.CountingProxy(database_url) as proxy:
        done = run_schemagate(project, *args, env={"DATABASE_URL": proxy.url, "PGGSSENCMODE": "disable"})
        assert done.returncode == 0, done.stdout + done.stderr
        totals = proxy.totals()  # a Counter: a message kind never sent counts 0
    totals["round_trips"] = pg_proxy.round_trips(totals)
    return done, totals


def test_a_no_op_apply_sends_one_query_on_one_connection(project: Path, fresh_db: str) -> None:
    """Through bench's counting proxy: the up-to-date check is the history SELECT alone (an
    autocommit session: no BEGIN and ROLLBACK around it), on the one connection it opens."""
    assert main(["apply", "--yes", "--database-url", fresh_db]) == 0
    again, totals = run_through_proxy(project, fresh_db, "apply", "--yes")
    assert again.stdout == "nothing to apply: database is up to date (22 applied)\n"
    assert (totals["connections"], totals["Q"], totals["round_trips"]) == (1, 1, 1)


def test_an_apply_with_work_to_do_opens_one_connection(project: Path, fresh_db: str) -> None:
    """When the quick path declines, the full command applies on the connection it opened (taken over
    once, out of autocommit): one connection for the whole process, and every migration applied."""
    done, totals = run_through_proxy(project, fresh_db, "apply", "--yes")
    assert totals["connections"] == 1
    assert len(history_rows(fresh_db)) == 22
    assert "applied 22 migrations" in done.stdout


def test_a_connection_is_taken_over_once_and_only_for_its_url(project: Path, fresh_db: str) -> None:
    from schemagate import quick_apply as qa

    assert quick_apply(["apply", "--yes", "--database-url", fresh_db]) is None
    handed = qa.take_connection(fresh_db)
    assert handed is not None and not handed.closed and handed.autocommit is False
    assert qa.take_connection(fresh_db) is None  # once
    handed.close()
    assert quick_apply(["apply", "--yes", "--database-url", fresh_db]) is None
    assert qa._handed is not None
    left = qa._handed[1]
    other = fresh_db + "?application_name=other"
    assert qa.take_connection(other) is None  # another URL: the handed one is closed, not used
    assert left.closed and qa._handed is None


def write_bundle_of(project: Path, name: str = "bundle") -> Path:
    """The bundle of the project's migrations (structural checks only), as `validate --bundle` writes."""
    from executor.bundle import write_bundle
    from validator.config import load_config
    from validator.structural import bundle_from_directory

    bundle_dir = project / name
    write_bundle(bundle_from_directory(load_config(project)), bundle_dir)
    return bundle_dir


def test_a_no_op_apply_of_a_bundle_is_answered_quickly_and_as_the_full_command_answers(
    project: Path, fresh_db: str, capsys
) -> None:
    """``apply --bundle DIR`` (the pipeline's form) on an up-to-date database: the same output as the
    full command, from a process that imports neither click nor the validator, on one query."""
    bundle_dir = write_bundle_of(project)
    argv = ["apply", "--yes", "--database-url", fresh_db, "--bundle", str(bundle_dir)]
    assert quick_apply(argv) is None  # nothing applied yet
    assert main(argv) == 0
    capsys.readouterr()
    assert len(history_rows(fresh_db)) == 22
    assert main(argv) == 0
    full = capsys.readouterr()
    assert quick_apply(argv) == 0
    quick = capsys.readouterr()
    assert (quick.out, quick.err) == (full.out, full.err)
    assert quick.out == "nothing to apply: database is up to date (22 applied)\n"

    again, totals = run_through_proxy(project, fresh_db, "apply", "--yes", "--bundle", str(bundle_dir))
    assert again.stdout == quick.out
    modules = imported_modules(again.stderr)
    assert "schemagate.quick_apply" in modules and "executor.bundle" in modules
    assert forbidden(modules) == []
    assert (totals["connections"], totals["round_trips"]) == (1, 1)


def test_a_tampered_bundle_is_left_to_the_full_command_which_refuses_it_before_connecting(
    project: Path, fresh_db: str, capsys
) -> None:
    bundle_dir = write_bundle_of(project)
    argv = ["apply", "--yes", "--database-url", fresh_db, "--bundle", str(bundle_dir)]
    assert main(argv) == 0
    tampered = bundle_dir / "migrations" / "V005__create_invoices.sql"
    tampered.write_bytes(tampered.read_bytes() + b"DROP TABLE accounts CASCADE;\n")
    before = history_rows(fresh_db)
    capsys.readouterr()
    assert quick_apply(argv) is None  # declined: not printed here
    assert capsys.readouterr() == ("", "")
    from schemagate import quick_apply as qa

    assert qa._handed is None and qa._bundle_handed is None  # no connection opened, no bundle kept
    assert main(argv) == 1
    assert tampered.name in capsys.readouterr().err
    assert history_rows(fresh_db) == before


def test_a_bundle_with_work_to_do_is_read_once_and_applied_on_one_connection(
    project: Path, fresh_db: str, monkeypatch
) -> None:
    from executor import bundle as bundle_module

    bundle_dir = write_bundle_of(project)
    loads: list[object] = []
    real = bundle_module.load_bundle

    def counting(*args, **kwargs):
        loads.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(bundle_module, "load_bundle", counting)
    argv = ["apply", "--yes", "--database-url", fresh_db, "--bundle", str(bundle_dir)]
    assert quick_apply(argv) is None
    assert main(argv) == 0
    assert len(loads) == 1  # the full command applied the bundle the quick path verified
    assert len(history_rows(fresh_db)) == 22
    (project / "migrations" / "2026" / "V021__add_accounts_note.sql").write_text(
        "ALTER TABLE accounts ADD COLUMN note text;\n"
    )
    newer = write_bundle_of(project, "bundle-2")
    done, totals = run_through_proxy(project, fresh_db, "apply", "--yes", "--bundle", str(newer))
    assert "applied 1 migration" in done.stdout
    assert totals["connections"] == 1
    assert len(history_rows(fresh_db)) == 23


def normalised(text: str, url: str) -> str:
    """Output without what differs between two runs on two databases: the durations and the URL."""
    from executor.connection import mask_url

    text = text.replace(mask_url(url), "<database>").replace(url, "<database>")
    return re.sub(r" +\d+(\.\d+)? (ms|s)\b", " <time>", text)  # right-aligned: the padding too


def twin_runs(argv_for, pg_admin_url: str, first_db: str, capsys) -> list[tuple[int | None, str, str]]:
    """``argv_for(url)`` run as the console script runs it, through the click command on
    ``first_db`` and without click on a twin database: exit code, stdout and stderr of each."""
    outcomes = []
    with temporary_database(pg_admin_url, prefix="sg_twin") as twin:
        for run, url in ((main, first_db), (plain_apply, twin)):
            argv = argv_for(url)
            assert quick_apply(argv) is None  # something to do (or to refuse): nothing printed
            code = run(argv)
            captured = capsys.readouterr()
            outcomes.append((code, normalised(captured.out, url), normalised(captured.err, url)))
        assert history_rows(twin) == history_rows(first_db)
        assert catalog_snapshot(twin) == catalog_snapshot(first_db)
    return outcomes


@pytest.mark.parametrize("source", ["migrations", "bundle"])
def test_an_apply_with_work_to_do_runs_without_click_as_the_click_command_runs_it(
    project: Path, fresh_db: str, pg_admin_url: str, capsys, source: str
) -> None:
    given = (
        ["--bundle", str(write_bundle_of(project))] if source == "bundle" else ["--migrations", "migrations"]
    )
    click_run, plain_run = twin_runs(
        lambda url: ["apply", "--yes", "--database-url", url, *given], pg_admin_url, fresh_db, capsys
    )
    assert plain_run == click_run
    assert plain_run[0] == 0 and "applied 22 migrations" in plain_run[1] and "[22/22]" in plain_run[1]
    assert len(history_rows(fresh_db)) == 22


def test_a_failing_migration_fails_without_click_as_it_fails_with_it(
    project: Path, fresh_db: str, pg_admin_url: str, capsys
) -> None:
    """A file that parses but fails on the server (the table exists): the same error, exit code and
    history on both paths, the files before it applied, nothing of it."""
    (project / "migrations" / "2026" / "V021__create_accounts_again.sql").write_text(
        "-- a merge conflict resolved twice\nCREATE TABLE accounts (id bigint PRIMARY KEY);\n"
    )
    click_run, plain_run = twin_runs(
        lambda url: ["migrate", "-y", f"--database-url={url}"], pg_admin_url, fresh_db, capsys
    )
    assert plain_run == click_run
    code, out, err = plain_run
    assert code == 1
    assert "V021__create_accounts_again.sql" in err and "already exists" in err and "line 2" in err
    assert "FAILED after" in out and "20 migrations applied before the failure stay applied" in out
    rows = history_rows(fresh_db)  # the 20 versioned files before it; the repeatables run after it
    assert len(rows) == 20 and all(ok for _, ok in rows)
    assert rows[-1] == ("2026/V020__drop_plans_interval_default.sql", True)


def test_an_interrupted_apply_says_aborted_without_click_as_with_it(
    project: Path, fresh_db: str, pg_admin_url: str, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from schemagate import cmd_apply

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cmd_apply, "do_apply", interrupted)
    click_run, plain_run = twin_runs(
        lambda url: ["apply", "--yes", "--database-url", url], pg_admin_url, fresh_db, capsys
    )
    assert plain_run == click_run == (1, "", "\naborted\n")
    assert history_rows(fresh_db) == []


def test_what_click_would_refuse_or_ask_is_left_to_the_click_command(
    project: Path, fresh_db: str, capsys
) -> None:
    (project / "a-file").write_text("not a directory\n")
    for argv in (
        ["apply", "--database-url", fresh_db],  # no --yes: the prompt is click's
        ["apply", "--yes", "--database-url", fresh_db, "--bundle", "a-file"],
        ["apply", "--yes", "--database-url", fresh_db, "--bundle", "no-such-bundle"],
        ["apply", "--yes", "--database-url", fresh_db, "--migrations", "a-file"],
        ["apply", "--yes", "--database-url", fresh_db, "--migrations", "migrations", "--bundle", "."],
        ["apply", "--yes", "--target", "5", "--database-url", fresh_db],
        ["info", "--database-url", fresh_db],
    ):
        assert plain_apply(argv) is None, argv
    assert capsys.readouterr() == ("", "")
    assert history_rows(fresh_db) == []
    assert main(["apply", "--yes", "--database-url", fresh_db, "--bundle", "a-file"]) == 2  # click's


def test_a_closed_stdout_ends_the_apply_quietly_with_exit_1(project: Path, fresh_db: str) -> None:
    """``schemagate apply --yes | head -1``: the console script stops at the first line it cannot
    write, exits 1 without a traceback, and what it committed is recorded as committed."""
    child = subprocess.Popen(
        [sys.executable, "-m", "schemagate", "apply", "--yes", "--database-url", fresh_db],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert child.stdout is not None and child.stderr is not None
    assert child.stdout.readline().startswith(b"22 migrations to apply to ")
    child.stdout.close()
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=120) == 1, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr
    rows = history_rows(fresh_db)
    assert len(rows) < 22 and all(ok for _, ok in rows)
    assert main(["apply", "--yes", "--database-url", fresh_db]) == 0  # a re-run finishes it
    assert len(history_rows(fresh_db)) == 22
