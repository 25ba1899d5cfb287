"""`schemagate import --from drizzle` on databases that drizzle-orm's own migrator migrated (installed
from npm, tests/drizzle/migrator.py), then apply, info, a new migration, and every refusal with the
database left as it was."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from executor.adopt.drizzle import DrizzleHistory
from executor.checksum import file_checksum
from executor.history import read_history
from executor.layouts.drizzle import JOURNAL, drizzle_hash
from executor.settings import ExecutorSettings
from schemagate.cli import main
from tests.conftest import DatabaseTemplates, content_key, temporary_database
from tests.drizzle.migrator import drizzle_migrate, drizzle_rows, install
from tests.helpers import sorted_rules
from tests.histories import drizzle_helpdesk
from tests.schema_snapshot import schema_snapshot
from validator.config import load_config
from validator.structural import bundle_from_directory

SETTINGS = ExecutorSettings()
ORDER = drizzle_helpdesk.files_in_order()


@pytest.fixture(scope="session")
def drizzle_orm() -> Path:
    """drizzle-orm and pg from npm (installed once into a cache outside the repository)."""
    return install()


@pytest.fixture
def drizzle_db(
    database_templates: DatabaseTemplates, tmp_path: Path, drizzle_orm: Path
) -> Iterator[tuple[str, Path]]:
    """Every migration run by drizzle-orm's migrator (built once, a copy for each test)."""
    root = drizzle_helpdesk.write(tmp_path / "drizzle")
    key = content_key("drizzle-orm migrate", str(drizzle_orm), root)
    with database_templates.copy(key, lambda url: drizzle_migrate(drizzle_orm, url, root)) as url:
        yield url, root


def sg_history(url: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        return [
            (r.version, r.type, r.script, r.checksum, r.run_id, r.success)
            for r in read_history(conn, SETTINGS)
        ]
    finally:
        conn.close()


def run(*args: str) -> int:
    return main(list(args))


def import_drizzle(url: str, root: Path, *extra: str) -> int:
    return run(
        "import", "--from", "drizzle", "--migrations", str(root), "--database-url", url, "--yes", *extra
    )


def sql(url: str, statement: str) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
    finally:
        conn.close()


def test_drizzle_records_the_hash_of_the_file_and_the_journal_when(drizzle_db: tuple[str, Path]) -> None:
    url, root = drizzle_db
    rows = drizzle_rows(url)
    whens = [e["when"] for e in drizzle_helpdesk.journal_entries()]
    assert [(h, c) for _, h, c in rows] == [
        (drizzle_hash((root / rel).read_bytes()), when) for rel, when in zip(ORDER, whens, strict=True)
    ]


def test_import_then_apply_does_nothing_and_a_new_migration_applies_alone(
    drizzle_db: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = drizzle_db
    old_table = drizzle_rows(url)
    schema_before = schema_snapshot(url)

    assert import_drizzle(url, root) == 0
    out = capsys.readouterr().out
    assert 'imported 32 migration(s) from Drizzle\'s "drizzle"."__drizzle_migrations"' in out
    rows = sg_history(url)
    assert [(r[0], r[2]) for r in rows] == [(f"{i:04d}", rel) for i, rel in enumerate(ORDER)]
    assert {r[1] for r in rows} == {"IMPORTED"} and {r[4] for r in rows} == {"import:drizzle"}
    assert [r[3] for r in rows] == [file_checksum((root / rel).read_bytes()) for rel in ORDER]
    assert drizzle_rows(url) == old_table  # drizzle's table is left exactly as it was
    assert schema_snapshot(url) == schema_before

    assert import_drizzle(url, root) == 0
    assert "nothing to import" in capsys.readouterr().out
    assert sg_history(url) == rows

    assert run("apply", "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "nothing to apply" in capsys.readouterr().out
    assert run("info", "--migrations", str(root), "--database-url", url, "--json") == 0
    infos = json.loads(capsys.readouterr().out)
    infos = infos["migrations"] if isinstance(infos, dict) else infos
    assert len(infos) == 32 and {i["state"] for i in infos} == {"applied"}
    assert all("imported" in i["reason"] and "drizzle" in i["reason"] for i in infos)

    assert run("new", "--migrations", str(root), "add", "ticket", "locale") == 0
    new_path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert new_path.name == "0032_add_ticket_locale.sql"
    new_path.write_text(new_path.read_text() + 'ALTER TABLE "tickets" ADD COLUMN "locale" varchar(16);\n')
    assert run("apply", "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "applied 1 migration" in capsys.readouterr().out
    assert sg_history(url)[-1][:3] == ("0032", "SQL", "0032_add_ticket_locale.sql")
    assert drizzle_rows(url) == old_table


def test_a_partly_migrated_database_imports_what_drizzle_applied_and_apply_runs_the_rest(
    fresh_db: str, pg_admin_url: str, tmp_path: Path, drizzle_orm: Path, capsys
) -> None:
    root = drizzle_helpdesk.write(tmp_path / "drizzle")
    drizzle_migrate(drizzle_orm, fresh_db, root, upto=19)
    assert import_drizzle(fresh_db, root) == 0
    assert [r[2] for r in sg_history(fresh_db)] == ORDER[:19]
    capsys.readouterr()
    assert run("apply", "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    assert "applied 13 migrations" in capsys.readouterr().out
    assert [r[2] for r in sg_history(fresh_db)] == ORDER
    with temporary_database(pg_admin_url) as clean:
        drizzle_migrate(drizzle_orm, clean, root)
        assert schema_snapshot(fresh_db) == schema_snapshot(clean)


def test_an_edited_file_refuses_naming_both_hashes_and_writes_nothing(
    drizzle_db: tuple[str, Path], capsys
) -> None:
    url, root = drizzle_db
    edited = root / "0021_default_sla_policies.sql"
    recorded = drizzle_hash(edited.read_bytes())
    edited.write_text(edited.read_text().replace("240, 2880", "120, 1440"))
    old = drizzle_rows(url)
    assert import_drizzle(url, root) == 1
    err = capsys.readouterr().err
    assert "0021_default_sla_policies.sql was changed after Drizzle applied it" in err
    assert recorded in err and drizzle_hash(edited.read_bytes()) in err
    assert "import-checksum-mismatch" in err
    assert sg_history(url) == [] and drizzle_rows(url) == old


def test_a_row_without_a_migration_refuses(drizzle_db: tuple[str, Path], capsys) -> None:
    url, root = drizzle_db
    # the team dropped 0029 from the journal and deleted the file after drizzle had applied it
    data = json.loads((root / JOURNAL).read_text())
    gone = data["entries"].pop(29)
    (root / JOURNAL).write_text(json.dumps(data, indent=2))
    (root / f"{gone['tag']}.sql").unlink()
    recorded = drizzle_rows(url)[29][1]
    assert import_drizzle(url, root) == 1
    err = capsys.readouterr().err
    assert "import-no-file" in err and recorded in err and f"created_at {gone['when']}" in err
    assert sg_history(url) == []


def test_a_migration_drizzle_skipped_refuses(
    fresh_db: str, tmp_path: Path, drizzle_orm: Path, capsys
) -> None:
    root = drizzle_helpdesk.write(tmp_path / "drizzle")
    data = drizzle_helpdesk.journal()
    # a merge put 0020 into the journal with a `when` before 0019's, after 0019 had run: drizzle skips it
    data["entries"][20]["when"] = data["entries"][18]["when"] + 1
    (root / JOURNAL).write_text(json.dumps(data, indent=2))
    drizzle_migrate(drizzle_orm, fresh_db, root, upto=20)
    drizzle_migrate(drizzle_orm, fresh_db, root)
    hashes = [h for _, h, _ in drizzle_rows(fresh_db)]
    assert drizzle_hash((root / "0020_famous_quasar.sql").read_bytes()) not in hashes
    assert len(hashes) == 31  # drizzle-orm ran everything else and never 0020
    old = drizzle_rows(fresh_db)
    assert import_drizzle(fresh_db, root) == 1
    err = capsys.readouterr().err
    assert "import-skipped-migration" in err and "Drizzle never applied 0020_famous_quasar.sql" in err
    assert "drizzle-kit migrate" in err
    assert sg_history(fresh_db) == [] and drizzle_rows(fresh_db) == old


def test_no_drizzle_table_refuses(fresh_db: str, tmp_path: Path, capsys) -> None:
    root = drizzle_helpdesk.write(tmp_path / "drizzle")
    assert import_drizzle(fresh_db, root) == 1
    err = capsys.readouterr().err
    assert "no Drizzle history table" in err and "import-no-table" in err
    assert sg_history(fresh_db) == []


def test_a_custom_migrations_table_is_read_with_table(
    fresh_db: str, tmp_path: Path, drizzle_orm: Path, capsys
) -> None:
    root = drizzle_helpdesk.write(tmp_path / "drizzle")
    # migrate(db, { migrationsFolder, migrationsTable: "migrations", migrationsSchema: "ops" })
    drizzle_migrate(drizzle_orm, fresh_db, root, table="migrations", schema="ops")
    assert len(drizzle_rows(fresh_db, '"ops"."migrations"')) == 32
    assert import_drizzle(fresh_db, root) == 1  # not where drizzle keeps it by default
    assert "import-no-table" in capsys.readouterr().err
    assert import_drizzle(fresh_db, root, "--table", "ops.nothing_here") == 1
    assert "no table ops.nothing_here" in capsys.readouterr().err
    assert sg_history(fresh_db) == []
    assert import_drizzle(fresh_db, root, "--table", "ops.migrations") == 0
    assert "imported 32 migration(s) from Drizzle's ops.migrations" in capsys.readouterr().out
    assert [r[2] for r in sg_history(fresh_db)] == ORDER


def test_a_table_of_another_shape_refuses(fresh_db: str, tmp_path: Path, capsys) -> None:
    root = drizzle_helpdesk.write(tmp_path / "drizzle")
    sql(
        fresh_db, "CREATE TABLE public.schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL)"
    )
    assert import_drizzle(fresh_db, root, "--table", "public.schema_migrations") == 1
    err = capsys.readouterr().err
    assert "not a drizzle-orm migrations table" in err and "dirty, version" in err
    assert sg_history(fresh_db) == []


def test_history_that_disagrees_with_drizzle_refuses(drizzle_db: tuple[str, Path], capsys) -> None:
    url, root = drizzle_db
    assert import_drizzle(url, root) == 0
    sql(
        url,
        "UPDATE schemagate_history SET checksum = repeat('0', 64) WHERE script = '0002_wandering_kitty_pryde.sql'",
    )
    before = sg_history(url)
    capsys.readouterr()
    assert import_drizzle(url, root) == 1
    assert "import-history-disagrees" in capsys.readouterr().err
    assert sg_history(url) == before


# -- a built bundle has the SQL files but not the journal: rows are matched by hash, in order --------


def bundle_without_journal(root: Path):
    bundle = bundle_from_directory(load_config(root.parent, migrations=root))
    bundle.manifest.source = {"kind": "git", "commit": "0" * 40}  # as `validate --bundle` records it
    return bundle


def rows_of(root: Path, upto: int | None = None) -> list[dict]:
    entries = drizzle_helpdesk.journal_entries()[:upto]
    return [
        {"id": i + 1, "hash": drizzle_hash((root / f"{e['tag']}.sql").read_bytes()), "created_at": e["when"]}
        for i, e in enumerate(entries)
    ]


def test_without_the_journal_rows_map_by_hash_in_journal_order(tmp_path: Path) -> None:
    root = drizzle_helpdesk.write(tmp_path / "drizzle")
    bundle = bundle_without_journal(root)
    adoption = DrizzleHistory().adopt(rows_of(root, 25), bundle)
    assert adoption.refusals == []
    assert [r.script for r in adoption.rows] == ORDER[:25]


def test_without_the_journal_an_edited_file_is_named_by_its_place(tmp_path: Path) -> None:
    root = drizzle_helpdesk.write(tmp_path / "drizzle")
    rows = rows_of(root, 25)
    rows[12]["hash"] = "f" * 64  # drizzle applied another content of 0012
    adoption = DrizzleHistory().adopt(rows, bundle_without_journal(root))
    (refusal,) = adoption.refusals
    assert refusal.rule == "import-checksum-mismatch" and refusal.file == "0012_tickets_updated_at.sql"
    assert "f" * 64 in refusal.message and drizzle_hash((root / ORDER[12]).read_bytes()) in refusal.message
    assert "matched by its place in the journal" in refusal.message


def test_without_the_journal_a_skipped_migration_and_an_unknown_row_refuse(tmp_path: Path) -> None:
    root = drizzle_helpdesk.write(tmp_path / "drizzle")
    rows = [r for r in rows_of(root) if r["id"] != 8]  # no row for 0007, rows for what follows
    rows.append({"id": 99, "hash": "e" * 64, "created_at": rows[-1]["created_at"] + 1})
    refusals = DrizzleHistory().adopt(rows, bundle_without_journal(root)).refusals
    assert sorted_rules(refusals) == ["import-no-file", "import-skipped-migration"]
    skipped = next(r for r in refusals if r.rule == "import-skipped-migration")
    assert skipped.file == "0007_clean_gamma_corps.sql"


def test_the_hash_is_of_the_content_as_node_reads_it() -> None:
    # a BOM is kept, CRLF is kept, invalid UTF-8 becomes U+FFFD (fs.readFileSync(...).toString())
    import hashlib

    assert (
        drizzle_hash(b"\xef\xbb\xbfselect 1;\r\n") == hashlib.sha256(b"\xef\xbb\xbfselect 1;\r\n").hexdigest()
    )
    assert drizzle_hash(b"select '\xff';") == hashlib.sha256("select '\ufffd';".encode()).hexdigest()


def test_with_the_journal_two_entries_that_share_a_when_map_by_hash(tmp_path: Path) -> None:
    root = drizzle_helpdesk.write(tmp_path / "drizzle")
    data = drizzle_helpdesk.journal()
    data["entries"][20]["when"] = data["entries"][19]["when"]  # a merge kept the same `when`
    (root / JOURNAL).write_text(json.dumps(data, indent=2))
    bundle = bundle_from_directory(load_config(root.parent, migrations=root))
    rows = [
        {"id": i + 1, "hash": drizzle_hash((root / f"{e['tag']}.sql").read_bytes()), "created_at": e["when"]}
        for i, e in enumerate(data["entries"][:21])
    ]
    adoption = DrizzleHistory().adopt(rows, bundle)
    assert adoption.refusals == [] and [r.script for r in adoption.rows] == ORDER[:21]
    rows[20]["hash"] = "d" * 64  # 0020 edited since: named, with both hashes
    (refusal,) = DrizzleHistory().adopt(rows, bundle).refusals
    assert refusal.file == "0020_famous_quasar.sql" and "d" * 64 in refusal.message
    assert "matched by its place" not in refusal.message  # the journal's `when` named it
