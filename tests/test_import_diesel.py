"""`schemagate import --from diesel` on a database Diesel migrated (tests/diesel_state.py builds it as
`diesel migration run` does), then apply, a new migration, and every refusal with the database left
as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg2
import pytest

from executor.adopt.diesel import DieselHistory
from executor.checksum import file_checksum
from executor.history import read_history
from executor.settings import ExecutorSettings
from schemagate.cli import main
from tests.conftest import DatabaseTemplates, content_key, temporary_database
from tests.diesel_state import DIESEL_DDL, diesel_migrate, diesel_order, diesel_rows, diesel_version
from tests.helpers import fetch_value
from tests.histories import diesel_registry
from tests.schema_snapshot import schema_snapshot
from validator.config import load_config
from validator.structural import bundle_from_directory

SETTINGS = ExecutorSettings()


def sg_history(url: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        return [(r.version, r.type, r.script, r.checksum, r.run_id) for r in read_history(conn, SETTINGS)]
    finally:
        conn.close()


def history_table_exists(url: str) -> bool:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.schemagate_history') IS NOT NULL")
            return fetch_value(cur)
    finally:
        conn.close()


def run(*args: str) -> int:
    return main(list(args))


def import_diesel(root: Path, url: str, *extra: str) -> int:
    return run(
        "import", "--from", "diesel", "--migrations", str(root), "--database-url", url, "--yes", *extra
    )


@pytest.fixture
def diesel_db(database_templates: DatabaseTemplates, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Every migration run as diesel runs them (built once, a copy for each test)."""
    root = diesel_registry.write(tmp_path / "migrations")
    key = content_key("diesel migration run", root)
    with database_templates.copy(key, lambda url: diesel_migrate(url, root)) as url:
        yield url, root


def test_import_records_every_applied_migration_then_apply_does_nothing_and_a_new_one_applies_alone(
    diesel_db: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = diesel_db
    old_table = diesel_rows(url)
    schema_before = schema_snapshot(url)

    assert import_diesel(root, url) == 0
    out = capsys.readouterr().out
    assert 'imported 30 migration(s) from Diesel\'s "public"."__diesel_schema_migrations"' in out
    assert "was left as it was" in out

    rows = sg_history(url)
    order = diesel_order(root)
    assert [r[2] for r in rows] == order  # the directory names, as `diesel migration list` shows them
    assert [r[0] for r in rows] == [diesel_version(d) for d in order]  # Diesel's own version strings
    assert {r[1] for r in rows} == {"IMPORTED"} and {r[4] for r in rows} == {"import:diesel"}
    assert [r[3] for r in rows] == [file_checksum((root / d / "up.sql").read_bytes()) for d in order]
    assert diesel_rows(url) == old_table  # the old table is left exactly as it was
    assert schema_snapshot(url) == schema_before
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:  # installed_on is Diesel's run_on
        cur.execute(
            "SELECT bool_and(h.installed_on = d.run_on::timestamptz) FROM schemagate_history h "
            "JOIN __diesel_schema_migrations d ON d.version = h.version"
        )
        assert fetch_value(cur) is True
    conn.close()

    # a second import changes nothing and says so
    assert import_diesel(root, url) == 0
    assert "nothing to import" in capsys.readouterr().out
    assert sg_history(url) == rows

    # apply applies nothing; info shows the imported rows as applied, with their origin
    assert run("apply", "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "nothing to apply" in capsys.readouterr().out
    assert run("info", "--migrations", str(root), "--database-url", url, "--json") == 0
    infos = json.loads(capsys.readouterr().out)
    infos = [
        i for i in (infos["migrations"] if isinstance(infos, dict) else infos) if i["kind"] == "versioned"
    ]
    assert len(infos) == 30 and {i["state"] for i in infos} == {"applied"}
    assert all("imported" in i["reason"] and "diesel" in i["reason"] for i in infos)

    # the next migration, made by `schemagate new`, applies alone
    assert run("new", "--migrations", str(root), "add", "crates", "readme", "path") == 0
    up = Path(capsys.readouterr().out.strip().splitlines()[-1])
    up.write_text(up.read_text() + "ALTER TABLE crates ADD COLUMN readme_path TEXT;\n")
    (up.parent / "down.sql").write_text("ALTER TABLE crates DROP COLUMN readme_path;\n")
    assert run("apply", "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "applied 1 migration" in capsys.readouterr().out
    assert sg_history(url)[-1][1:3] == ("SQL", up.parent.name)
    assert diesel_rows(url) == old_table


def test_diesel_records_no_checksum_so_an_edited_file_is_imported_with_todays(
    diesel_db: tuple[str, Path], capsys
) -> None:
    url, root = diesel_db
    edited = root / "2018-07-02-120000_create_categories" / "up.sql"
    edited.write_text(edited.read_text().replace("'Web programming'", "'Web development'"))
    assert import_diesel(root, url) == 0
    [row] = [r for r in sg_history(url) if r[2] == "2018-07-02-120000_create_categories"]
    assert row[3] == file_checksum(edited.read_bytes())  # from now on, a further edit is drift


def test_an_applied_version_without_a_directory_refuses_and_writes_nothing(
    diesel_db: tuple[str, Path], capsys
) -> None:
    url, root = diesel_db
    old = diesel_rows(url)
    for path in (root / "2019-04-22-090011_create_teams").iterdir():
        path.unlink()
    (root / "2019-04-22-090011_create_teams").rmdir()
    assert import_diesel(root, url) == 1
    err = capsys.readouterr().err
    assert "import-no-file" in err and "Diesel recorded version 20190422090011 as applied" in err
    assert "2019-04-22-090011_<name>/" in err  # where to restore it
    assert not history_table_exists(url) and diesel_rows(url) == old


def test_no_diesel_table_refuses(fresh_db: str, tmp_path: Path, capsys) -> None:
    root = diesel_registry.write(tmp_path / "migrations")
    assert import_diesel(root, fresh_db) == 1
    err = capsys.readouterr().err
    assert "no Diesel history table" in err and "import-no-table" in err
    assert not history_table_exists(fresh_db)


def test_a_table_that_is_not_diesels_refuses(diesel_db: tuple[str, Path], capsys) -> None:
    url, root = diesel_db
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE app_migrations (name text PRIMARY KEY)")
    conn.close()
    assert import_diesel(root, url, "--table", "public.app_migrations") == 1
    err = capsys.readouterr().err
    assert "is not Diesel's history table" in err and "run_on, version" in err
    assert import_diesel(root, url, "--table", "public.no_such_table") == 1
    assert "there is no table public.no_such_table" in capsys.readouterr().err
    assert not history_table_exists(url)


def test_diesels_table_in_another_schema_is_found(fresh_db: str, tmp_path: Path, capsys) -> None:
    """Diesel creates its table in the first schema of the connection's search_path."""
    root = diesel_registry.write(tmp_path / "migrations")
    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE SCHEMA registry")
        cur.execute("SET search_path = registry")
        cur.execute(DIESEL_DDL)
        cur.execute("INSERT INTO __diesel_schema_migrations (version) VALUES ('00000000000000')")
    conn.close()
    assert import_diesel(root, fresh_db, "--dry-run") == 0
    out = capsys.readouterr().out
    assert '"registry"."__diesel_schema_migrations"' in out or "would import 1 migration(s)" in out
    assert not history_table_exists(fresh_db)  # a dry run writes nothing
    assert import_diesel(root, fresh_db) == 0
    assert [r[2] for r in sg_history(fresh_db)] == ["00000000000000_diesel_initial_setup"]


def test_a_partly_migrated_database_imports_what_diesel_applied_and_apply_runs_the_rest(
    fresh_db: str, pg_admin_url: str, tmp_path: Path, capsys
) -> None:
    root = diesel_registry.write(tmp_path / "migrations")
    applied = diesel_migrate(fresh_db, root, upto=12)
    assert import_diesel(root, fresh_db) == 0
    out = capsys.readouterr().out
    assert "imported 12 migration(s)" in out and "Diesel has not applied 18 migration(s)" in out
    assert [r[2] for r in sg_history(fresh_db)] == applied
    assert run("apply", "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    assert "applied 18 migrations" in capsys.readouterr().out
    assert [r[2] for r in sg_history(fresh_db)] == diesel_order(root)
    with temporary_database(pg_admin_url) as clean:
        diesel_migrate(clean, root)
        assert schema_snapshot(fresh_db) == schema_snapshot(clean)


def test_history_that_disagrees_with_diesel_refuses(diesel_db: tuple[str, Path], capsys) -> None:
    url, root = diesel_db
    assert import_diesel(root, url) == 0
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE schemagate_history SET checksum = repeat('0', 64) WHERE script = '20170308141215_create_crates'"
        )
    conn.close()
    before = sg_history(url)
    capsys.readouterr()
    assert import_diesel(root, url) == 1
    assert "import-history-disagrees" in capsys.readouterr().err
    assert sg_history(url) == before


def test_rows_are_ordered_as_diesel_applied_them(tmp_path: Path) -> None:
    """Diesel applies pending migrations in version order; a migration merged late (a lower version
    applied after higher ones) keeps its place in time."""
    root = diesel_registry.write(tmp_path / "migrations")
    bundle = bundle_from_directory(load_config(tmp_path, migrations=root))
    early, late = datetime(2019, 1, 1, 9, 0, 0), datetime(2019, 2, 1, 9, 0, 0)
    rows = [
        {"version": "20170308140537", "run_on": early},
        {"version": "20190422090011", "run_on": early},
        {"version": "20190107162003", "run_on": late},  # merged after create_teams had run
        {"version": "00000000000000", "run_on": early},
    ]
    adoption = DieselHistory().adopt(rows, bundle)
    assert adoption.refusals == []
    assert [r.version for r in adoption.rows] == [
        "00000000000000",
        "20170308140537",
        "20190422090011",
        "20190107162003",
    ]
    assert [r.installed_on for r in adoption.rows] == [early, early, early, late]
    refused = DieselHistory().adopt([{"version": "20991231000000", "run_on": early}], bundle)
    assert [r.rule for r in refused.refusals] == ["import-no-file"]
