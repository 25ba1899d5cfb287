"""plan / apply / info / repair / baseline through the real CLI, on a real PostgreSQL (fresh_db).

Most tests call ``schemagate.cli.main`` in-process (the same function the console script runs,
with its exit-code mapping); a few run ``python -m schemagate`` as a subprocess where the process
boundary matters (environment variables, what a user's terminal shows).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

from schemagate.cli import main
from tests.helpers import fetch_value

REPO_ROOT = Path(__file__).resolve().parent.parent

BASIC = {
    "V1__create_customers.sql": "CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL);\n",
    "V2__add_customers_email.sql": (
        "ALTER TABLE customers ADD COLUMN email text;\n"
        "DO $$ BEGIN RAISE NOTICE 'email column added'; END $$;\n"
    ),
    "R__customer_names.sql": "CREATE OR REPLACE VIEW customer_names AS SELECT name FROM customers;\n",
}


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with migrations/ and no database configured in the environment."""
    write(tmp_path / "migrations", BASIC)
    monkeypatch.chdir(tmp_path)
    for var in ("DATABASE_URL", "PGHOST", "PGSERVICE", "PGDATABASE"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """Run `schemagate ARGS` in-process; return the exit code and stdout+stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def query(url: str, sql: str, params: tuple = ()):
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def history(url: str, table: str = "public.schemagate_history") -> list[tuple]:
    return query(url, f"SELECT script, success FROM {table} ORDER BY installed_rank")


def with_password(url: str, password: str) -> str:
    p = urlsplit(url)
    netloc = f"{p.username}:{password}@{p.hostname}:{p.port}"
    return urlunsplit((p.scheme, netloc, p.path, p.query, p.fragment))


def test_apply_then_info_then_a_second_apply_does_nothing(project: Path, fresh_db: str, capsys) -> None:
    # when applied
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 0, out
    assert "3 migrations to apply" in out
    assert "V2__add_customers_email.sql" in out and " ms" in out  # one line per migration, with its duration
    assert "email column added" in out  # the server's notice is shown
    assert "applied 3 migrations in" in out
    assert [s for s, _ in history(fresh_db)] == [
        "V1__create_customers.sql",
        "V2__add_customers_email.sql",
        "R__customer_names.sql",
    ]

    # then info shows them applied, as a table
    code, out = cli(capsys, "info", "--database-url", fresh_db)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["Version", "Description", "Kind", "State", "Installed", "on", "Time"]
    assert set(lines[1]) <= {"-", " "}
    assert any(
        line.startswith("2 ") and "add customers email" in line and "applied" in line for line in lines
    )
    assert "3 applied" in out

    # and a second apply does nothing and says so
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 0
    assert out.strip() == "nothing to apply: database is up to date (3 applied)"
    assert len(history(fresh_db)) == 3


def test_plan_changes_nothing_and_speaks_json(project: Path, fresh_db: str, capsys) -> None:
    code, out = cli(capsys, "plan", "--database-url", fresh_db)
    assert code == 0
    assert "3 to apply" in out and "V1__create_customers.sql" in out and "(pending)" in out
    assert "(repeatable new)" in out
    assert query(fresh_db, "SELECT to_regclass('public.schemagate_history') IS NULL") == [(True,)]

    code, out = cli(capsys, "plan", "--database-url", fresh_db, "--json")
    assert code == 0
    data = json.loads(out)
    assert [m["file"] for m in data["to_apply"]] == [
        "V1__create_customers.sql",
        "V2__add_customers_email.sql",
        "R__customer_names.sql",
    ]
    assert data["refusals"] == []
    assert {m["state"] for m in data["migrations"]} == {"pending"}


def test_info_json_lists_states(project: Path, fresh_db: str, capsys) -> None:
    assert cli(capsys, "apply", "--database-url", fresh_db, "--yes")[0] == 0
    write(
        project / "migrations",
        {"V3__add_customers_phone.sql": "ALTER TABLE customers ADD COLUMN phone text;\n"},
    )
    code, out = cli(capsys, "info", "--database-url", fresh_db, "--json")
    assert code == 0
    states = {m["file"]: m["state"] for m in json.loads(out)["migrations"]}
    assert states == {
        "V1__create_customers.sql": "applied",
        "V2__add_customers_email.sql": "applied",
        "R__customer_names.sql": "applied",
        "V3__add_customers_phone.sql": "pending",
    }


def test_drift_is_refused_then_realigned_by_repair(project: Path, fresh_db: str, capsys) -> None:
    assert cli(capsys, "apply", "--database-url", fresh_db, "--yes")[0] == 0
    v1 = project / "migrations" / "V1__create_customers.sql"
    v1.write_text("-- a comment added after the fact\n" + BASIC["V1__create_customers.sql"], encoding="utf-8")

    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 1
    assert "V1__create_customers.sql" in out and "checksum-drift" in out
    assert "remedy:" in out and "repair --realign-checksums" in out
    code, _ = cli(capsys, "plan", "--database-url", fresh_db)
    assert code == 1

    code, out = cli(capsys, "repair", "--database-url", fresh_db, "--realign-checksums")
    assert code == 0
    assert "realigned the checksum of V1__create_customers.sql" in out
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 0 and "nothing to apply" in out


def test_failed_statement_names_file_line_and_sqlstate_and_leaves_no_trace(
    project: Path, fresh_db: str, capsys
) -> None:
    write(
        project / "migrations",
        {"V3__broken.sql": "CREATE TABLE orders (id int);\n\nALTER TABLE nowhere ADD COLUMN x int;\n"},
    )
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 1
    assert "V3__broken.sql:3" in out  # file and line of the failing statement
    assert "42P01" in out  # PostgreSQL's SQLSTATE (undefined_table)
    assert "FAILED" in out
    # the two before it stayed applied; nothing of V3 remains
    assert [s for s, _ in history(fresh_db)] == ["V1__create_customers.sql", "V2__add_customers_email.sql"]
    assert query(fresh_db, "SELECT to_regclass('public.orders') IS NULL") == [(True,)]


def test_failed_non_transactional_migration_blocks_until_repair(project: Path, fresh_db: str, capsys) -> None:
    # given a CREATE UNIQUE INDEX CONCURRENTLY that fails on duplicate data (it leaves an INVALID index)
    write(
        project / "migrations",
        {
            "V3__seed.sql": "INSERT INTO customers VALUES (1, 'a', 'x@ex.com'), (2, 'b', 'x@ex.com');",
            "V4__unique_email.sql": (
                "CREATE UNIQUE INDEX CONCURRENTLY customers_email_key ON customers (email);\n"
            ),
        },
    )
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 1 and "V4__unique_email.sql" in out
    assert history(fresh_db)[-1] == ("V4__unique_email.sql", False)

    # then every run refuses until a person repairs
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 1 and "failed-migration" in out and "schemagate repair" in out

    # a person fixes the data and drops the invalid index, then repairs and applies again
    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("DROP INDEX customers_email_key")
        cur.execute("UPDATE customers SET email = 'y@ex.com' WHERE id = 2")
    conn.close()
    code, out = cli(capsys, "repair", "--database-url", fresh_db)
    assert code == 0 and "removed the failed row of V4__unique_email.sql" in out
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 0, out
    assert ("V4__unique_email.sql", True) in history(fresh_db)
    assert ("V4__unique_email.sql", False) not in history(fresh_db)
    code, out = cli(capsys, "repair", "--database-url", fresh_db)
    assert code == 0 and "nothing to repair" in out


def test_baseline_then_apply_only_what_is_above_it(project: Path, fresh_db: str, capsys) -> None:
    # an empty database is refused: the migrations up to the baseline never ran there
    code, out = cli(capsys, "baseline", "--version", "1", "--database-url", fresh_db)
    assert code == 1 and "baseline-empty-database" in out
    # a version that matches no file is refused
    query_sql = "CREATE TABLE customers (id bigint PRIMARY KEY, name text NOT NULL)"
    conn = psycopg2.connect(fresh_db)
    with conn, conn.cursor() as cur:  # the "existing schema" the baseline adopts
        cur.execute(query_sql)
    conn.close()
    code, out = cli(capsys, "baseline", "--version", "7", "--database-url", fresh_db)
    assert code == 1 and "baseline-unknown-version" in out and "nearest: 1, 2" in out
    conn = psycopg2.connect(fresh_db)
    with conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.schemagate_history')")
        assert fetch_value(cur) is None  # nothing was created by the refusals
    conn.close()

    code, out = cli(capsys, "baseline", "--version", "1", "--database-url", fresh_db)
    assert code == 0 and "version 1" in out and "1 migration up to 1" in out

    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 0, out
    assert "V1__create_customers.sql" not in out.split("applying:")[1]
    assert [s for s, _ in history(fresh_db)][1:] == ["V2__add_customers_email.sql", "R__customer_names.sql"]

    # a second baseline is refused: the history is not empty
    code, out = cli(capsys, "baseline", "--version", "2", "--database-url", fresh_db)
    assert code == 1 and "baseline-not-empty" in out


def test_out_of_order_is_refused_unless_allowed(project: Path, fresh_db: str, capsys) -> None:
    (project / "migrations" / "V2__add_customers_email.sql").rename(project / "V2.sql.hold")
    write(
        project / "migrations",
        {"V3__add_customers_phone.sql": "ALTER TABLE customers ADD COLUMN phone text;\n"},
    )
    assert cli(capsys, "apply", "--database-url", fresh_db, "--yes")[0] == 0
    (project / "V2.sql.hold").rename(project / "migrations" / "V2__add_customers_email.sql")

    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 1 and "V2__add_customers_email.sql" in out
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes", "--out-of-order")
    assert code == 0, out
    assert "(out of order)" in out
    assert history(fresh_db)[-1] == ("V2__add_customers_email.sql", True)


def test_schema_and_timeouts_flags(project: Path, fresh_db: str, capsys) -> None:
    code, out = cli(
        capsys,
        "apply",
        "--database-url",
        fresh_db,
        "--yes",
        "--schema",
        "ops",
        "--lock-timeout",
        "2s",
        "--statement-timeout",
        "1min",
    )
    assert code == 0, out
    assert len(history(fresh_db, "ops.schemagate_history")) == 3
    assert query(fresh_db, "SELECT to_regclass('public.schemagate_history') IS NULL") == [(True,)]
    code, out = cli(capsys, "info", "--database-url", fresh_db, "--schema", "ops")
    assert code == 0 and "3 applied" in out
    code, out = cli(capsys, "plan", "--database-url", fresh_db, "--schema", "ops")
    assert code == 0 and "nothing to apply" in out


def test_usage_and_configuration_errors_exit_2(project: Path, fresh_db: str, capsys) -> None:
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes", "--lock-timeout", "soon")
    assert code == 2 and "lock_timeout" in out
    bundle_dir = project / "bundle"
    bundle_dir.mkdir()
    code, out = cli(
        capsys, "plan", "--database-url", fresh_db, "--bundle", str(bundle_dir), "--migrations", "migrations"
    )
    assert code == 2 and "either --bundle DIR or --migrations DIR" in out
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--migrations", "nowhere", "--yes")
    assert code == 2 and "nowhere" in out
    # no terminal to ask and no --yes: refuse, apply nothing
    code, out = cli(capsys, "apply", "--database-url", fresh_db)
    assert code == 2 and "--yes" in out
    assert query(fresh_db, "SELECT to_regclass('public.schemagate_history') IS NULL") == [(True,)]


def test_approved_bundle_is_verified_before_touching_the_database(
    project: Path, fresh_db: str, capsys
) -> None:
    from executor.bundle import write_bundle
    from validator.config import load_config
    from validator.structural import bundle_from_directory

    bundle_dir = project / "bundle"
    write_bundle(bundle_from_directory(load_config(project)), bundle_dir)
    tampered = bundle_dir / "migrations" / "V1__create_customers.sql"
    original = tampered.read_bytes()
    tampered.write_bytes(original + b"DROP TABLE customers;\n")
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--bundle", str(bundle_dir), "--yes")
    assert code == 1 and "V1__create_customers.sql" in out
    assert query(fresh_db, "SELECT to_regclass('public.schemagate_history') IS NULL") == [(True,)]

    tampered.write_bytes(original)
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--bundle", str(bundle_dir), "--yes")
    assert code == 0 and "applied 3 migrations" in out


def _subprocess(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGHOST", "PGDATABASE")}
    full_env.update({"PYTHONPATH": str(REPO_ROOT), **env})
    return subprocess.run(
        [sys.executable, "-m", "schemagate", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_passwords_are_masked_and_database_url_comes_from_the_environment(
    project: Path, fresh_db: str
) -> None:
    # trust authentication ignores the password, so the URL works and shows up in the output
    secret_url = with_password(fresh_db, "s3cret-pw")
    done = _subprocess(["apply", "--yes"], project, {"DATABASE_URL": secret_url})
    assert done.returncode == 0, done.stderr
    assert "postgres:***@" in done.stdout
    assert "s3cret-pw" not in done.stdout + done.stderr

    # a refused connection names the target, masked, and exits 1
    p = urlsplit(secret_url)
    dead = urlunsplit((p.scheme, f"{p.username}:s3cret-pw@127.0.0.1:1", p.path, "connect_timeout=2", ""))
    done = _subprocess(["info", "--database-url", dead], project, {})
    assert done.returncode == 1
    assert "could not connect" in done.stderr and "***" in done.stderr
    assert "s3cret-pw" not in done.stdout + done.stderr


def test_libpq_variables_name_the_database_when_no_url_is_given(
    project: Path, fresh_db: str, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = urlsplit(fresh_db)
    assert p.hostname is not None and p.username is not None
    monkeypatch.setenv("PGHOST", p.hostname)
    monkeypatch.setenv("PGPORT", str(p.port))
    monkeypatch.setenv("PGUSER", p.username)
    monkeypatch.setenv("PGDATABASE", p.path.lstrip("/"))
    code, out = cli(capsys, "apply", "--yes")
    assert code == 0, out
    assert "using libpq's PG* variables" in out and f"PGDATABASE={p.path.lstrip('/')}" in out
    assert len(history(fresh_db)) == 3
    # the embedded server was not involved (.schemagate/ may hold caches, such as the layout memo)
    state = project / ".schemagate"
    assert not (state / "postgres").exists() and not (state / "rehearsal").exists()


def test_undo_reverses_only_the_latest_version_on_explicit_request(
    project: Path, fresh_db: str, capsys
) -> None:
    write(
        project / "migrations", {"U2__add_customers_email.sql": "ALTER TABLE customers DROP COLUMN email;\n"}
    )
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 0, out
    columns = "SELECT column_name FROM information_schema.columns WHERE table_name = 'customers' ORDER BY 1"
    assert [c for (c,) in query(fresh_db, columns)] == ["email", "id", "name"]  # apply never runs U-files

    # only the latest applied version may be undone
    code, out = cli(capsys, "undo", "--database-url", fresh_db, "--version", "1", "--yes")
    assert code == 1 and "only the most recently applied version (2" in out

    code, out = cli(capsys, "undo", "--database-url", fresh_db, "--version", "2", "--yes")
    assert code == 0, out
    assert "undid version 2 with U2__add_customers_email.sql" in out
    assert [c for (c,) in query(fresh_db, columns)] == ["id", "name"]
    assert query(
        fresh_db, "SELECT type FROM public.schemagate_history ORDER BY installed_rank DESC LIMIT 1"
    ) == [("UNDO",)]

    # V2 is pending again: the next apply re-applies it
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 0 and "V2__add_customers_email.sql" in out
    assert [c for (c,) in query(fresh_db, columns)] == ["email", "id", "name"]
