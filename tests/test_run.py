"""`schemagate run` end to end: validate -> plan -> ask -> apply -> info, on a real PostgreSQL.

Also the prompt itself, answered through a real pseudo-terminal, and one run against the
embedded PostgreSQL in a fresh working directory (no database configured).
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from localdb.server import EmbeddedPostgres
from schemagate.cli import main
from tests.helpers import fetch_value

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = REPO_ROOT / "migrations"
PYPROJECT = '[project]\nname = "shop"\nversion = "0"\n\n[tool.schemagate]\nmigrations = "migrations"\n'
SMALL = {
    "V1__create_customers.sql": "CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL);\n",
    "V2__add_customers_email.sql": "ALTER TABLE customers ADD COLUMN email text;\n",
}
NO_DATABASE_VARS = ("DATABASE_URL", "PGHOST", "PGSERVICE", "PGDATABASE")


def make_project(root: Path, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    if files is None:
        shutil.copytree(EXAMPLES, root / "migrations")
    else:
        (root / "migrations").mkdir()
        for name, text in files.items():
            (root / "migrations" / name).write_text(text, encoding="utf-8")
    return root


def history_scripts(url: str) -> list[str] | None:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.schemagate_history') IS NOT NULL")
            if not fetch_value(cur):
                return None
            cur.execute("SELECT script FROM public.schemagate_history WHERE success ORDER BY installed_rank")
            return [r[0] for r in cur.fetchall()]
    finally:
        conn.close()


@pytest.fixture
def in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    def enter(files: dict[str, str] | None = None) -> Path:
        root = make_project(tmp_path / "project", files)
        monkeypatch.chdir(root)
        for var in NO_DATABASE_VARS:
            monkeypatch.delenv(var, raising=False)
        return root

    return enter


def test_run_yes_applies_the_example_migrations_and_prints_the_info_table(
    in_project, fresh_db, capsys
) -> None:
    root = in_project()
    files = sorted(p.name for p in (root / "migrations").glob("*.sql"))
    assert files, "the example migrations are missing"

    code = main(["run", "--database-url", fresh_db, "--yes"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 0, text
    assert "-- passed" in text  # the validation summary
    assert f"applied {len(files)} migrations in" in text
    table = text.split(f"applied {len(files)} migrations in")[1]
    assert "Version" in table and "State" in table
    assert table.count(" applied ") == len(files)
    assert f"{len(files)} applied" in text
    scripts = history_scripts(fresh_db)
    assert scripts is not None
    assert sorted(scripts) == files

    # a second run validates again and has nothing to apply
    code = main(["run", "--database-url", fresh_db, "--yes"])
    text = capsys.readouterr().out
    assert code == 0
    assert f"nothing to apply: database is up to date ({len(files)} applied)" in text


def test_run_stops_on_blocking_findings_before_touching_the_database(in_project, fresh_db, capsys) -> None:
    in_project({**SMALL, "V3__broken.sql": "CREATE TABLE (;\n"})
    code = main(["run", "--database-url", fresh_db, "--yes"])
    out = capsys.readouterr()
    text = out.out + out.err
    assert code == 1
    assert "V3__broken.sql" in text and "-- failed" in text
    assert "nothing touched the database" in text
    assert history_scripts(fresh_db) is None


def test_run_without_a_terminal_and_without_yes_refuses(in_project, fresh_db, capsys) -> None:
    in_project(SMALL)
    code = main(["run", "--database-url", fresh_db])
    out = capsys.readouterr()
    assert code == 2
    assert "pass --yes" in out.err
    assert history_scripts(fresh_db) is None


def _run_in_terminal(args: list[str], cwd: Path, answer: str) -> tuple[int, str]:
    """Run `schemagate ARGS` attached to a pseudo-terminal; type ``answer`` at the [y/N] prompt."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in NO_DATABASE_VARS}
    env["PYTHONPATH"] = str(REPO_ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-m", "schemagate", *args], stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env
    )
    os.close(slave)
    output, answered, deadline = b"", False, time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
                if not answered and b"[y/N]" in output:
                    os.write(master, answer.encode() + b"\n")
                    answered = True
            elif proc.poll() is not None:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        os.close(master)
    return proc.returncode, output.decode("utf-8", "replace").replace("\r\n", "\n")


def test_the_prompt_on_a_terminal(in_project, fresh_db) -> None:
    root = in_project(SMALL)
    # answering no applies nothing and exits 1
    code, text = _run_in_terminal(["apply", "--database-url", fresh_db], root, "n")
    assert "apply 2 migrations to postgresql://postgres@" in text and "[y/N]" in text
    assert code == 1 and "declined" in text
    assert history_scripts(fresh_db) is None
    # answering yes applies
    code, text = _run_in_terminal(["apply", "--database-url", fresh_db], root, "y")
    assert code == 0, text
    assert "applied 2 migrations" in text
    assert history_scripts(fresh_db) == ["V1__create_customers.sql", "V2__add_customers_email.sql"]


def test_run_without_a_database_uses_the_embedded_server_in_the_working_directory(tmp_path: Path) -> None:
    root = make_project(tmp_path / "fresh-checkout", SMALL)
    env = {k: v for k, v in os.environ.items() if k not in NO_DATABASE_VARS}
    env["PYTHONPATH"] = str(REPO_ROOT)
    server = EmbeddedPostgres(root / ".schemagate" / "postgres")
    try:
        done = subprocess.run(
            [sys.executable, "-m", "schemagate", "run", "--yes"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        said = (
            "no database configured: using embedded PostgreSQL 16 at .schemagate/postgres "
            "(database schemagate)"
        )
        assert said in done.stderr
        assert "applied 2 migrations" in done.stdout
        assert (root / ".schemagate" / "postgres" / "server.json").is_file()
        # the command stopped the server it started
        assert not server.is_running

        # the data stayed: `info --json` on the same directory starts it again and sees both applied
        done = subprocess.run(
            [sys.executable, "-m", "schemagate", "info", "--json"],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        states = [m["state"] for m in json.loads(done.stdout)["migrations"]]
        assert states == ["applied", "applied"]
    finally:
        server.stop()
        pgdata = Path(json.loads((root / ".schemagate" / "postgres" / "server.json").read_text())["pgdata"])
        if not pgdata.is_relative_to(root):  # the documented /tmp fallback when running as root
            shutil.rmtree(pgdata.parent, ignore_errors=True)
