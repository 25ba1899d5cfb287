"""`schemagate import --from dbmate` on a database the real dbmate (2.36, from npm) migrated, then apply,
a new migration, and every refusal with the database left as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from executor.adopt.dbmate import DbmateHistory
from executor.bundle import make_bundle
from executor.checksum import file_checksum
from executor.history import read_history
from executor.manifest import ManifestEntry
from executor.settings import ExecutorSettings
from schemagate.cli import main
from tests.conftest import DatabaseTemplates, content_key, temporary_database
from tests.dbmate_tool import dbmate_binary, run_dbmate
from tests.golang_migrate_state import ensure_version_table, set_version
from tests.histories import dbmate_bookings
from tests.schema_snapshot import schema_snapshot

SETTINGS = ExecutorSettings()
FROM = ("import", "--from", "dbmate")
FILES = sorted(dbmate_bookings.FILES)


@pytest.fixture(scope="session")
def dbmate() -> Path:
    return dbmate_binary()


def sg_history(url: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        return [(r.version, r.type, r.script, r.checksum, r.run_id) for r in read_history(conn, SETTINGS)]
    finally:
        conn.close()


def sg_history_exists(url: str) -> bool:
    return bool(query(url, "SELECT to_regclass('public.schemagate_history') IS NOT NULL")[0][0])


def query(url: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall() if cur.description else []
    finally:
        conn.commit()
        conn.close()


def dbmate_rows(url: str, table: str = "schema_migrations") -> list[tuple]:
    return query(url, f"SELECT * FROM {table} ORDER BY version")


def run(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return dbmate_bookings.write(tmp_path / dbmate_bookings.ROOT)


@pytest.fixture
def migrated(database_templates: DatabaseTemplates, root: Path, dbmate: Path) -> Iterator[tuple[str, Path]]:
    """``dbmate up`` of every migration (built once, a copy for each test)."""
    key = content_key("dbmate up", str(dbmate), root)
    with database_templates.copy(key, lambda url: run_dbmate(dbmate, url, root, "up")) as url:
        yield url, root


def test_the_table_dbmate_writes_is_what_the_importer_reads(migrated: tuple[str, Path]) -> None:
    url, _ = migrated
    columns = query(
        url,
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'schema_migrations'",
    )
    assert columns == [("version", "character varying")]
    assert [r[0] for r in dbmate_rows(url)] == [name.split("_", 1)[0] for name in FILES]


def test_import_records_every_applied_migration_then_apply_does_nothing_and_new_applies_alone(
    migrated: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = migrated
    old_table = dbmate_rows(url)
    schema_before = schema_snapshot(url)

    assert run(*FROM, "--migrations", str(root), "--database-url", url, "--yes") == 0
    out = capsys.readouterr().out
    assert f"imported {len(FILES)} migration(s) from dbmate's" in out and "records no checksums" in out

    rows = sg_history(url)
    assert [r[2] for r in rows] == FILES
    assert [r[0] for r in rows] == [name.split("_", 1)[0] for name in FILES]
    assert {r[1] for r in rows} == {"IMPORTED"} and {r[4] for r in rows} == {"import:dbmate"}
    assert [r[3] for r in rows] == [file_checksum((root / f).read_bytes()) for f in FILES]
    assert dbmate_rows(url) == old_table and schema_snapshot(url) == schema_before

    assert run(*FROM, "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "nothing to import" in capsys.readouterr().out
    assert sg_history(url) == rows

    assert run("apply", "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "nothing to apply" in capsys.readouterr().out
    assert run("info", "--migrations", str(root), "--database-url", url, "--json") == 0
    infos = json.loads(capsys.readouterr().out)
    infos = infos["migrations"] if isinstance(infos, dict) else infos
    versioned = [i for i in infos if i["kind"] == "versioned"]
    assert len(versioned) == len(FILES) and {i["state"] for i in versioned} == {"applied"}
    assert all("imported" in i["reason"] and "dbmate" in i["reason"] for i in versioned)

    assert run("new", "--migrations", str(root), "add", "bookings", "room") == 0
    new_path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert new_path.parent == root and new_path.name.endswith("_add_bookings_room.sql")
    text = new_path.read_text().replace(
        "-- migrate:down\n", "alter table bookings add column room text;\n\n-- migrate:down\n"
    )
    new_path.write_text(text + "alter table bookings drop column room;\n")
    assert run("apply", "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "applied 1 migration" in capsys.readouterr().out
    assert sg_history(url)[-1][1:3] == ("SQL", new_path.name)
    assert dbmate_rows(url) == old_table  # schemagate never writes dbmate's table


def test_a_database_dbmate_migrated_part_way_imports_what_it_applied_and_apply_runs_the_rest(
    fresh_db: str, root: Path, dbmate: Path, pg_admin_url: str, capsys
) -> None:
    run_dbmate(dbmate, fresh_db, root, "up")
    for _ in range(3):
        run_dbmate(dbmate, fresh_db, root, "rollback")
    assert len(dbmate_rows(fresh_db)) == len(FILES) - 3
    assert run(*FROM, "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    assert [r[2] for r in sg_history(fresh_db)] == FILES[:-3]
    capsys.readouterr()
    assert run("apply", "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    assert "applied 3 migrations" in capsys.readouterr().out
    with temporary_database(pg_admin_url) as by_dbmate:
        run_dbmate(dbmate, by_dbmate, root, "up")
        assert schema_snapshot(fresh_db) == schema_snapshot(by_dbmate)


def test_a_migration_dbmate_skipped_below_applied_ones_is_named(
    fresh_db: str, root: Path, dbmate: Path, capsys
) -> None:
    skipped = root / FILES[10]
    text = skipped.read_text()
    skipped.unlink()
    run_dbmate(dbmate, fresh_db, root, "up")  # merged late: dbmate ran everything else first
    skipped.write_text(text)
    assert run(*FROM, "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    out = capsys.readouterr().out
    assert (
        f"1 migration(s) dbmate has not applied have a version below the highest it applied (first: {FILES[10]})"
        in out
    )
    assert "out_of_order" in out
    assert len(sg_history(fresh_db)) == len(FILES) - 1


def test_an_applied_version_with_no_file_refuses_the_import(migrated: tuple[str, Path], capsys) -> None:
    url, root = migrated
    (root / FILES[4]).unlink()
    old_table = dbmate_rows(url)
    assert run(*FROM, "--migrations", str(root), "--database-url", url, "--yes") == 1
    err = capsys.readouterr().err
    assert "import-no-file" in err and FILES[4].split("_", 1)[0] in err
    assert not sg_history_exists(url) and dbmate_rows(url) == old_table


def test_no_dbmate_table_refuses(fresh_db: str, root: Path, capsys) -> None:
    assert run(*FROM, "--migrations", str(root), "--database-url", fresh_db, "--yes") == 1
    err = capsys.readouterr().err
    assert "no dbmate history table" in err and "import-no-table" in err
    assert not sg_history_exists(fresh_db)


def test_migrations_table_option_is_read_with_table(fresh_db: str, root: Path, dbmate: Path, capsys) -> None:
    run_dbmate(dbmate, fresh_db, root, "--migrations-table", "booking_schema.versions", "up")
    assert len(dbmate_rows(fresh_db, "booking_schema.versions")) == len(FILES)
    assert run(*FROM, "--migrations", str(root), "--database-url", fresh_db, "--yes") == 1
    assert "import-no-table" in capsys.readouterr().err
    args = (
        "--migrations",
        str(root),
        "--database-url",
        fresh_db,
        "--table",
        "booking_schema.versions",
        "--yes",
    )
    assert run(*FROM, *args) == 0
    assert len(sg_history(fresh_db)) == len(FILES)


def test_a_golang_migrate_table_given_to_dbmate_is_refused_naming_golang_migrate(
    fresh_db: str, root: Path, capsys
) -> None:
    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True
    with conn.cursor() as cur:
        set_version(cur, ensure_version_table(cur), 20230114093012, False)
    conn.close()
    assert run(*FROM, "--migrations", str(root), "--database-url", fresh_db, "--yes") == 1
    err = capsys.readouterr().err
    assert "import-wrong-tool" in err and "it is golang-migrate's table, not dbmate's" in err
    assert "--from golang-migrate" in err
    assert not sg_history_exists(fresh_db)
    assert query(fresh_db, "SELECT version, dirty FROM schema_migrations") == [(20230114093012, False)]


def test_an_edit_after_dbmate_ran_it_cannot_be_seen_and_the_import_says_so(
    migrated: tuple[str, Path], capsys
) -> None:
    url, root = migrated
    edited = root / FILES[6]
    edited.write_text(edited.read_text().replace("add column notes text", "add column notes varchar(500)"))
    assert run(*FROM, "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "an edit made to one of them after it ran cannot be detected" in capsys.readouterr().out
    # from now on schemagate records today's checksum: a later edit is drift
    assert sg_history(url)[6][3] == file_checksum(edited.read_bytes())


def test_history_that_disagrees_refuses_and_changes_nothing(migrated: tuple[str, Path], capsys) -> None:
    url, root = migrated
    assert run(*FROM, "--migrations", str(root), "--database-url", url, "--yes") == 0
    query(url, f"UPDATE schemagate_history SET checksum = repeat('0', 64) WHERE script = '{FILES[2]}'")
    before = sg_history(url)
    capsys.readouterr()
    assert run(*FROM, "--migrations", str(root), "--database-url", url, "--yes") == 1
    assert "import-history-disagrees" in capsys.readouterr().err
    assert sg_history(url) == before


def test_versions_match_as_strings_as_dbmate_compares_them() -> None:
    data = b"-- migrate:up\nselect 1;\n-- migrate:down\n"
    entry = ManifestEntry("001_init.sql", "versioned", "001", "init", file_checksum(data), section="up")
    bundle = make_bundle([(entry, data)], layout="dbmate")
    assert DbmateHistory().adopt([{"version": "001"}], bundle).rows[0].script == "001_init.sql"
    [refusal] = DbmateHistory().adopt([{"version": "1"}], bundle).refusals  # dbmate: '1' is not '001'
    assert refusal.rule == "import-no-file"
