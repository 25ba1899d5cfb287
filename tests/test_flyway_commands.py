"""What Flyway users reach for, on a real PostgreSQL: `migrate` (apply under Flyway's name),
`apply --target VERSION`, `validate --database-url` (the files against a database's history, like
`flyway validate`) and `clean` (local and throwaway databases only).

The history is a Spring Boot team's Flyway history (22 files in year directories, an enum, partial
and concurrent indexes, a DO block, backfills, repeatable views and functions), adopted with
``accepted_history`` so its old findings are not judged again."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import psycopg2
import pytest

from schemagate.cli import main
from tests.helpers import available_extension
from tests.histories.flyway_billing import FILES, write

MIGRATIONS = "src/main/resources/db/migration"
REPEATABLES = ["R__billing_views.sql", "R__mrr_function.sql"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.schemagate]\nmigrations = "{MIGRATIONS}"\naccepted_history = "020"\n', encoding="utf-8"
    )
    write(tmp_path / MIGRATIONS, FILES)
    monkeypatch.chdir(tmp_path)
    for var in ("DATABASE_URL", "PGHOST", "PGSERVICE", "PGDATABASE", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def cli(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def query(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
            return cur.fetchall()
    finally:
        conn.close()


def history(url: str) -> list[tuple]:
    return query(
        url,
        "SELECT version, script, checksum, success FROM public.schemagate_history ORDER BY installed_rank",
    )


def tables(url: str) -> list[str]:
    return [
        r[0]
        for r in query(
            url,
            "SELECT table_schema || '.' || table_name FROM information_schema.tables "
            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
        )
    ]


def test_migrate_is_apply_under_flyway_s_name(project, fresh_db, capsys):
    code, out = cli(capsys, "migrate", "--database-url", fresh_db, "--yes")
    assert code == 0, out
    assert "applied 22 migrations" in out
    rows = history(fresh_db)
    assert len(rows) == 22 and all(success for *_, success in rows)
    assert "public.usage_events" in tables(fresh_db)
    code, out = cli(capsys, "migrate", "--database-url", fresh_db, "--yes")
    assert code == 0 and "nothing to apply: database is up to date (22 applied)" in out
    code, help_text = cli(capsys, "migrate", "--help")
    assert code == 0 and "--target VERSION" in help_text and "--bundle" in help_text


def test_apply_target_stops_after_that_version_and_leaves_the_rest_pending(project, fresh_db, capsys):
    code, out = cli(capsys, "plan", "--database-url", fresh_db, "--target", "010")
    assert code == 0 and "10 to apply:" in out and "V011" not in out
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes", "--target", "010")
    assert code == 0, out
    assert "--target 010: 12 migrations above it left out" in out
    assert [v for v, *_ in history(fresh_db)] == [f"{n:03d}" for n in range(1, 11)]
    assert "public.coupons" not in tables(fresh_db)  # V011 creates it

    # the rest, later: the repeatables run once the last version is applied
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes")
    assert code == 0, out
    scripts = [script for _, script, *_ in history(fresh_db)]
    assert len(scripts) == 22 and scripts[-2:] == REPEATABLES

    # a target below what is applied changes nothing (the later versions are "future", not refused)
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes", "--target", "005")
    assert code == 0 and "nothing to apply" in out
    assert len(history(fresh_db)) == 22


def test_apply_target_that_names_no_version_is_exit_2(project, fresh_db, capsys):
    code, out = cli(capsys, "apply", "--database-url", fresh_db, "--yes", "--target", "010.5")
    assert code == 2
    assert "--target 010.5: no versioned migration has this version" in out and "010, 011" in out
    assert query(fresh_db, "SELECT to_regclass('public.schemagate_history')") == [(None,)]


def test_validate_against_the_database_reports_pending_drift_and_missing(project, fresh_db, capsys):
    assert cli(capsys, "migrate", "--database-url", fresh_db, "--yes", "--target", "018")[0] == 0
    before = history(fresh_db)

    # in step: what is left is pending, a warning; the gate passes
    code, out = cli(capsys, "validate", "--no-lint", "--database-url", fresh_db, "--reports", "reports")
    assert code == 0, out
    pending = [
        line for line in out.splitlines() if line.startswith("warning:") and "pending-migration" in line
    ]
    assert len(pending) == 4  # V019, V020 and the two repeatables
    assert pending[0].startswith(
        f"warning: {MIGRATIONS}/2026/V019__index_usage_events_account.sql pending-migration"
    )
    report = (project / "reports" / "report.md").read_text(encoding="utf-8")
    assert "### Database" in report and "18 applied, 4 pending" in report

    # an applied file edited, another deleted: what `flyway validate` fails on
    edited = project / MIGRATIONS / "V006__add_accounts_country.sql"
    edited.write_text(edited.read_text(encoding="utf-8") + "-- ISO 3166-1 alpha-2\n", encoding="utf-8")
    (project / MIGRATIONS / "2025" / "V013__add_status_paused.sql").unlink()
    code, out = cli(capsys, "validate", "--no-lint", "--database-url", fresh_db, "--bundle", "bundle")
    assert code == 1, out
    assert f"error: {MIGRATIONS}/V006__add_accounts_country.sql checksum-drift: " in out
    assert (
        "missing-migration: 2025/V013__add_status_paused.sql (version 013) is applied to the database but has no file"
        in out
    )
    assert "restore the file exactly as it was applied" in out  # the remedy, under the finding
    assert not (project / "bundle" / "manifest.json").exists()  # nothing ships
    assert history(fresh_db) == before  # and the database was only read


def test_validate_database_url_names_the_table_s_schema_and_masks_the_password(project, fresh_db, capsys):
    assert cli(capsys, "migrate", "--database-url", fresh_db, "--yes")[0] == 0
    secret = fresh_db.replace("postgres@", "postgres:s3cret-pw@", 1)
    code, out = cli(capsys, "validate", "--no-lint", "--database-url", secret, "--format", "json")
    assert code == 0, out
    assert "s3cret-pw" not in out
    assert '"table": "public.schemagate_history"' in out and '"history_rows": 22' in out


def schemas(url: str) -> list[str]:
    return [
        r[0]
        for r in query(
            url,
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
            "AND nspname <> 'information_schema' ORDER BY 1",
        )
    ]


def test_clean_refuses_any_database_but_the_embedded_one_without_force(project, fresh_db, capsys):
    assert cli(capsys, "migrate", "--database-url", fresh_db, "--yes")[0] == 0
    code, out = cli(capsys, "clean", "--database-url", fresh_db, "--yes")
    assert code == 2
    assert "refusing to clean" in out and "only cleans the embedded PostgreSQL" in out and "--force" in out
    assert len(history(fresh_db)) == 22


def test_clean_with_force_wants_the_database_name_typed(project, fresh_db, capsys, monkeypatch):
    assert cli(capsys, "migrate", "--database-url", fresh_db, "--yes")[0] == 0
    name = fresh_db.rsplit("/", 1)[1]
    monkeypatch.setattr(sys, "stdin", io.StringIO("postgres\n"))
    code, out = cli(capsys, "clean", "--database-url", fresh_db, "--force", "--yes")
    assert code == 1 and f"'postgres' is not {name!r}; nothing was dropped" in out
    assert len(history(fresh_db)) == 22


def test_clean_drops_every_schema_and_gives_public_back_as_it_was(project, fresh_db, capsys, monkeypatch):
    assert cli(capsys, "migrate", "--database-url", fresh_db, "--yes")[0] == 0
    query_admin = psycopg2.connect(fresh_db)
    query_admin.autocommit = True
    with query_admin.cursor() as cur:
        cur.execute("CREATE SCHEMA reporting")
        cur.execute("CREATE TABLE reporting.monthly AS SELECT 1 AS n")
        extension = available_extension(fresh_db)
        cur.execute(f'CREATE EXTENSION IF NOT EXISTS "{extension}" SCHEMA public')
        cur.execute("COMMENT ON SCHEMA public IS 'standard public schema'")
    query_admin.close()
    acl_before = query(
        fresh_db, "SELECT nspowner::regrole::text, nspacl::text FROM pg_namespace WHERE nspname = 'public'"
    )
    name = fresh_db.rsplit("/", 1)[1]
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{name}\n"))

    code, out = cli(capsys, "clean", "--database-url", fresh_db, "--force")
    assert code == 0, out
    assert "dropped 2 schemas (public, reporting)" in out
    assert schemas(fresh_db) == ["public"]
    assert tables(fresh_db) == []
    assert query(fresh_db, f"SELECT count(*) FROM pg_extension WHERE extname = '{extension}'") == [(0,)]
    after = query(
        fresh_db, "SELECT nspowner::regrole::text, nspacl::text FROM pg_namespace WHERE nspname = 'public'"
    )
    assert after == acl_before
    assert query(fresh_db, "SELECT obj_description('public'::regnamespace, 'pg_namespace')") == [
        ("standard public schema",)
    ]
    # and the history applies from scratch again
    code, out = cli(capsys, "migrate", "--database-url", fresh_db, "--yes")
    assert code == 0 and "applied 22 migrations" in out


def test_clean_the_embedded_database(project, capsys):
    """No URL: the embedded PostgreSQL under .schemagate/, cleaned after a yes."""
    code, out = cli(capsys, "migrate", "--yes")
    assert code == 0 and "applied 22 migrations" in out, out
    code, out = cli(capsys, "clean")  # stdin is not a terminal: nobody can say yes
    assert code == 2 and "pass --yes" in out
    code, out = cli(capsys, "clean", "--yes")
    assert code == 0, out
    assert "cleaned embedded PostgreSQL" in out and "public" in out
    code, out = cli(capsys, "info")
    assert code == 0 and "22 pending" in out
