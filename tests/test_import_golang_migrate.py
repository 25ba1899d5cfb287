"""`schemagate import --from golang-migrate` on a database golang-migrate migrated (tests/golang_migrate_state.py
follows its PostgreSQL driver), then apply, a new migration, and every refusal with the database left as
it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from executor.adopt.golang_migrate import GolangMigrateHistory
from executor.bundle import make_bundle
from executor.checksum import file_checksum
from executor.history import read_history
from executor.manifest import ManifestEntry
from executor.settings import ExecutorSettings
from schemagate.cli import main
from tests.conftest import DatabaseTemplates, content_key, temporary_database
from tests.golang_migrate_state import force, migrate_up, state, up_files
from tests.helpers import fetch_value
from tests.histories import golang_migrate_fleet
from tests.schema_snapshot import schema_snapshot

SETTINGS = ExecutorSettings()
FROM = ("import", "--from", "golang-migrate")


def sg_history(url: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        return [(r.version, r.type, r.script, r.checksum, r.run_id) for r in read_history(conn, SETTINGS)]
    finally:
        conn.close()


def sg_history_exists(url: str) -> bool:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.schemagate_history')")
            return fetch_value(cur) is not None
    finally:
        conn.close()


def run(*args: str) -> int:
    return main(list(args))


def execute(url: str, *statements: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
    finally:
        conn.close()


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return golang_migrate_fleet.write(tmp_path / golang_migrate_fleet.ROOT)


@pytest.fixture
def migrated(database_templates: DatabaseTemplates, root: Path) -> Iterator[tuple[str, Path]]:
    """``migrate up`` of every migration (built once, a copy for each test)."""
    key = content_key("golang-migrate up", root)
    with database_templates.copy(key, lambda url: migrate_up(url, root)) as url:
        yield url, root


def test_import_records_every_version_up_to_golang_migrates_then_apply_does_nothing_and_new_applies_alone(
    migrated: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = migrated
    assert state(url) == [(28, False)]
    schema_before = schema_snapshot(url)

    assert run(*FROM, "--migrations", str(root), "--database-url", url, "--yes") == 0
    out = capsys.readouterr().out
    assert "imported 28 migration(s) from golang-migrate's" in out
    assert "records no checksums" in out  # said, not hidden

    rows = sg_history(url)
    ups = up_files(root)
    assert [r[2] for r in rows] == [p.name for p in ups]
    assert [r[0] for r in rows] == [str(n) for n in range(1, 29)]
    assert {r[1] for r in rows} == {"IMPORTED"} and {r[4] for r in rows} == {"import:golang-migrate"}
    assert [r[3] for r in rows] == [file_checksum(p.read_bytes()) for p in ups]
    assert state(url) == [(28, False)]  # golang-migrate's table is left exactly as it was
    assert schema_snapshot(url) == schema_before
    # the grant 000017 gave on golang-migrate's own table is still there: nothing touched it
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT has_table_privilege('pg_monitor', 'schema_migrations', 'SELECT')")
        assert fetch_value(cur) is True
    conn.close()

    assert run(*FROM, "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "nothing to import" in capsys.readouterr().out
    assert sg_history(url) == rows

    assert run("apply", "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "nothing to apply" in capsys.readouterr().out
    assert run("info", "--migrations", str(root), "--database-url", url, "--json") == 0
    infos = json.loads(capsys.readouterr().out)
    infos = infos["migrations"] if isinstance(infos, dict) else infos
    versioned = [i for i in infos if i["kind"] == "versioned"]
    assert len(versioned) == 28 and {i["state"] for i in versioned} == {"applied"}
    assert all("golang-migrate" in i["reason"] and "imported" in i["reason"] for i in versioned)

    assert run("new", "--migrations", str(root), "add", "shipments", "notes") == 0
    new_path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert new_path.name == "000029_add_shipments_notes.up.sql"
    new_path.write_text(new_path.read_text() + "ALTER TABLE shipments ADD COLUMN notes TEXT;\n")
    assert run("apply", "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "applied 1 migration" in capsys.readouterr().out
    assert sg_history(url)[-1][:3] == ("29", "SQL", "000029_add_shipments_notes.up.sql")
    assert state(url) == [(28, False)]  # schemagate never writes golang-migrate's table


def test_a_partly_migrated_database_imports_up_to_its_version_and_apply_runs_the_rest(
    fresh_db: str, root: Path, pg_admin_url: str, capsys
) -> None:
    migrate_up(fresh_db, root, upto=12)
    assert run(*FROM, "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    assert "16 migration(s) above version 12 are not applied yet" in capsys.readouterr().out
    assert [r[0] for r in sg_history(fresh_db)] == [str(n) for n in range(1, 13)]
    assert run("apply", "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    assert "applied 16 migrations" in capsys.readouterr().out
    with temporary_database(pg_admin_url) as by_golang_migrate:
        migrate_up(by_golang_migrate, root)
        assert schema_snapshot(fresh_db) == schema_snapshot(by_golang_migrate)


def test_a_dirty_state_refuses_the_import_naming_the_file_and_migrate_force(
    fresh_db: str, root: Path, capsys
) -> None:
    broken = root / "000029_add_shipments_customs.up.sql"
    broken.write_text(
        "BEGIN;\nALTER TABLE shipments ADD COLUMN customs_ref TEXT;\nALTER TABLE customs ADD COLUMN x INT;\nCOMMIT;\n"
    )
    with pytest.raises(psycopg2.errors.UndefinedTable):
        migrate_up(fresh_db, root)
    assert state(fresh_db) == [(29, True)]
    schema_before = schema_snapshot(fresh_db)

    assert run(*FROM, "--migrations", str(root), "--database-url", fresh_db, "--yes") == 1
    err = capsys.readouterr().err
    assert "import-dirty" in err
    assert "dirty at version 29 (000029_add_shipments_customs.up.sql)" in err
    assert "force 29" in err and "force 28" in err
    assert not sg_history_exists(fresh_db)  # nothing written, not even the table
    assert state(fresh_db) == [(29, True)] and schema_snapshot(fresh_db) == schema_before

    # the team undoes the half-done change (nothing to undo here), drops the file and tells golang-migrate
    broken.unlink()
    force(fresh_db, 28)
    assert run(*FROM, "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    assert len(sg_history(fresh_db)) == 28


def test_a_version_with_no_file_refuses_the_import(migrated: tuple[str, Path], capsys) -> None:
    url, root = migrated
    for path in root.glob("000028_*"):
        path.unlink()
    assert run(*FROM, "--migrations", str(root), "--database-url", url, "--yes") == 1
    err = capsys.readouterr().err
    assert "import-no-file" in err and "version 28" in err
    assert not sg_history_exists(url) and state(url) == [(28, False)]


def test_no_golang_migrate_table_refuses(fresh_db: str, root: Path, capsys) -> None:
    assert run(*FROM, "--migrations", str(root), "--database-url", fresh_db, "--yes") == 1
    err = capsys.readouterr().err
    assert "no golang-migrate history table" in err and "import-no-table" in err
    assert not sg_history_exists(fresh_db)


def test_x_migrations_table_is_read_with_table(fresh_db: str, root: Path, capsys) -> None:
    # migrate -database 'postgres://...?x-migrations-table=fleet_schema_versions' up
    migrate_up(fresh_db, root, upto=5, table="fleet_schema_versions")
    assert run(*FROM, "--migrations", str(root), "--database-url", fresh_db, "--yes") == 1
    assert "import-no-table" in capsys.readouterr().err
    assert not sg_history_exists(fresh_db)
    assert (
        run(
            *FROM,
            "--migrations",
            str(root),
            "--database-url",
            fresh_db,
            "--table",
            "fleet_schema_versions",
            "--yes",
        )
        == 0
    )
    assert len(sg_history(fresh_db)) == 5
    assert (
        run(
            *FROM, "--migrations", str(root), "--database-url", fresh_db, "--table", "public.no_such", "--yes"
        )
        == 1
    )
    assert "has no table public.no_such" in capsys.readouterr().err


def test_a_dbmate_table_given_to_golang_migrate_is_refused_naming_dbmate(
    fresh_db: str, root: Path, capsys
) -> None:
    execute(
        fresh_db,
        "create table if not exists public.schema_migrations (version varchar primary key)",
        "insert into schema_migrations (version) values ('20240101000000')",
    )
    assert run(*FROM, "--migrations", str(root), "--database-url", fresh_db, "--yes") == 1
    err = capsys.readouterr().err
    assert "import-wrong-tool" in err and "it is dbmate's table, not golang-migrate's" in err
    assert "--from dbmate" in err
    assert not sg_history_exists(fresh_db)


def test_history_that_disagrees_refuses_and_changes_nothing(migrated: tuple[str, Path], capsys) -> None:
    url, root = migrated
    assert run(*FROM, "--migrations", str(root), "--database-url", url, "--yes") == 0
    execute(url, "UPDATE schemagate_history SET checksum = repeat('0', 64) WHERE version = '3'")
    before = sg_history(url)
    capsys.readouterr()
    assert run(*FROM, "--migrations", str(root), "--database-url", url, "--yes") == 1
    assert "import-history-disagrees" in capsys.readouterr().err
    assert sg_history(url) == before


# adopt() is pure: the cases the real tool cannot easily be made to write


def bundle_of(*versions: int):
    entries = []
    for v in versions:
        name = f"{v:06d}_m{v}.up.sql"
        data = f"SELECT {v};\n".encode()
        entries.append((ManifestEntry(name, "versioned", str(v), f"m{v}", file_checksum(data)), data))
    return make_bundle(entries, layout="golang-migrate")


def test_more_than_one_row_is_refused_because_the_version_is_unknown() -> None:
    adoption = GolangMigrateHistory().adopt(
        [{"version": 3, "dirty": False, "table": "t"}, {"version": 5, "dirty": False, "table": "t"}],
        bundle_of(3, 5),
    )
    [refusal] = adoption.refusals
    assert (
        refusal.remedy is not None
        and refusal.rule == "import-dirty"
        and "holds 2 rows" in refusal.message
        and "force" in refusal.remedy
    )
    assert adoption.rows == []


def test_an_empty_table_imports_nothing_and_says_so() -> None:
    adoption = GolangMigrateHistory().adopt([], bundle_of(1, 2))
    assert adoption.rows == [] and adoption.refusals == []
    assert "applied nothing" in adoption.notes[0]


def test_a_dirty_first_migration_names_only_force_of_that_version() -> None:
    [refusal] = GolangMigrateHistory().adopt([{"version": 1, "dirty": True}], bundle_of(1, 2)).refusals
    assert (
        refusal.remedy is not None and "force 1" in refusal.remedy and "if you undid it" not in refusal.remedy
    )


def test_a_dotted_x_migrations_table_is_one_table_name_as_golang_migrate_quotes_it(
    fresh_db: str, root: Path
) -> None:
    # without x-migrations-table-quoted, golang-migrate creates a table literally named "migrate.versions"
    # in the current schema, not the table versions in a schema migrate
    migrate_up(fresh_db, root, upto=3, table="migrate.versions")
    args = ("--migrations", str(root), "--database-url", fresh_db, "--table", "migrate.versions", "--yes")
    assert run(*FROM, *args) == 0
    assert [r[0] for r in sg_history(fresh_db)] == ["1", "2", "3"]
