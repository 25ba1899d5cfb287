"""`schemagate import --from flyway` on a database Flyway migrated (tests/flyway_state.py builds it as
Flyway does), then apply, a new migration, and every refusal with the database left as it was."""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from executor.adopt.flyway import flyway_checksum
from executor.history import read_history
from executor.settings import ExecutorSettings
from schemagate.cli import main
from tests.conftest import DatabaseTemplates, content_key, temporary_database
from tests.flyway_state import flyway_migrate, flyway_order, flyway_rows
from tests.histories import flyway_billing
from tests.schema_snapshot import schema_snapshot

SETTINGS = ExecutorSettings()


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


@pytest.fixture
def flyway_db(database_templates: DatabaseTemplates, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Every migration run as flyway migrate runs them (built once, a copy for each test)."""
    root = flyway_billing.write(tmp_path / "db" / "migration")
    key = content_key("flyway migrate", root)
    with database_templates.copy(key, lambda url: flyway_migrate(url, root)) as url:
        yield url, root


def test_flyway_checksum_is_crc32_of_the_lines_without_line_endings() -> None:
    lf = b"CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n"
    assert flyway_checksum(lf) == flyway_checksum(lf.replace(b"\n", b"\r\n"))
    assert flyway_checksum(lf) == flyway_checksum(b"\xef\xbb\xbf" + lf)
    assert flyway_checksum(lf) != flyway_checksum(lf.replace(b"a (", b"aa ("))
    # a signed 32-bit integer, as Flyway's INTEGER column holds it
    assert flyway_checksum(b"x\ny\n") % 2**32 == zlib.crc32(b"xy")
    negative = next(
        f"select {i};".encode() for i in range(100) if zlib.crc32(f"select {i};".encode()) >= 2**31
    )
    assert flyway_checksum(negative) == zlib.crc32(negative) - 2**32


def test_import_records_every_applied_migration_then_apply_does_nothing_and_a_new_one_applies_alone(
    flyway_db: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = flyway_db
    old_table = flyway_rows(url)
    schema_before = schema_snapshot(url)

    assert run("import", "--from", "flyway", "--migrations", str(root), "--database-url", url, "--yes") == 0
    out = capsys.readouterr().out
    assert f"imported {len(flyway_order(root))} migration(s) from Flyway" in out

    rows = sg_history(url)
    assert [r[2] for r in rows] == flyway_order(root)
    assert {r[1] for r in rows} == {"IMPORTED"} and {r[4] for r in rows} == {"import:flyway"}
    from executor.checksum import file_checksum

    assert [r[3] for r in rows] == [file_checksum((root / rel).read_bytes()) for rel in flyway_order(root)]
    assert flyway_rows(url) == old_table  # the old table is left exactly as it was
    assert schema_snapshot(url) == schema_before

    # a second import changes nothing and says so
    assert run("import", "--from", "flyway", "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "nothing to import" in capsys.readouterr().out
    assert sg_history(url) == rows

    # apply applies nothing; info shows the imported rows as applied, with their origin
    assert run("apply", "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "nothing to apply" in capsys.readouterr().out
    assert run("info", "--migrations", str(root), "--database-url", url, "--json") == 0
    infos = json.loads(capsys.readouterr().out)
    infos = infos["migrations"] if isinstance(infos, dict) else infos
    assert {i["state"] for i in infos} == {"applied"}
    assert all("imported" in i["reason"] and "flyway" in i["reason"] for i in infos)

    # the next migration, made by `schemagate new`, applies alone
    assert run("new", "--migrations", str(root), "add", "accounts", "locale") == 0
    new_path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert new_path.name == "V021__add_accounts_locale.sql"
    new_path.write_text(new_path.read_text() + "ALTER TABLE accounts ADD COLUMN locale text;\n")
    assert run("apply", "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "applied 1 migration" in capsys.readouterr().out
    assert sg_history(url)[-1][:3] == ("021", "SQL", "V021__add_accounts_locale.sql")


def test_an_edited_file_refuses_the_import_naming_both_checksums_and_writes_nothing(
    flyway_db: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = flyway_db
    edited = root / "V007__backfill_accounts_country.sql"
    before = flyway_checksum(edited.read_bytes())
    edited.write_text(edited.read_text().replace("'DE'", "'AT'"))
    assert run("import", "--from", "flyway", "--migrations", str(root), "--database-url", url, "--yes") == 1
    err = capsys.readouterr().err
    assert "V007__backfill_accounts_country.sql was changed after Flyway applied it" in err
    assert str(before) in err and str(flyway_checksum(edited.read_bytes())) in err
    assert "import-checksum-mismatch" in err
    assert sg_history(url) == []  # nothing written, not even the table


def test_a_failed_flyway_row_refuses_the_import(flyway_db: tuple[str, Path], capsys) -> None:
    url, root = flyway_db
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE flyway_schema_history SET success = false WHERE script = 'V008__index_invoices_issued_at.sql'"
        )
    conn.close()
    old = flyway_rows(url)
    assert run("import", "--from", "flyway", "--migrations", str(root), "--database-url", url, "--yes") == 1
    err = capsys.readouterr().err
    assert "failed" in err and "V008__index_invoices_issued_at.sql" in err and "flyway repair" in err
    assert sg_history(url) == [] and flyway_rows(url) == old


def test_an_applied_migration_without_a_file_refuses_the_import(flyway_db: tuple[str, Path], capsys) -> None:
    url, root = flyway_db
    (root / "2025" / "V013__add_status_paused.sql").unlink()
    assert run("import", "--from", "flyway", "--migrations", str(root), "--database-url", url, "--yes") == 1
    err = capsys.readouterr().err
    assert "import-no-file" in err and "V013__add_status_paused.sql" in err
    assert sg_history(url) == []


def test_no_flyway_table_refuses(fresh_db: str, tmp_path: Path, capsys) -> None:
    root = flyway_billing.write(tmp_path / "m")
    assert (
        run("import", "--from", "flyway", "--migrations", str(root), "--database-url", fresh_db, "--yes") == 1
    )
    err = capsys.readouterr().err
    assert "no Flyway history table" in err and "import-no-table" in err
    assert sg_history(fresh_db) == []


def test_a_partly_migrated_database_imports_what_flyway_applied_and_apply_runs_the_rest(
    fresh_db: str, pg_admin_url: str, tmp_path: Path, capsys
) -> None:
    root = flyway_billing.write(tmp_path / "m")
    applied = flyway_migrate(fresh_db, root, upto=12)
    assert (
        run("import", "--from", "flyway", "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    )
    assert [r[2] for r in sg_history(fresh_db)] == applied
    capsys.readouterr()
    assert run("apply", "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    scripts = [r[2] for r in sg_history(fresh_db)]
    assert scripts == flyway_order(root)
    # the same schema as Flyway applying everything
    with temporary_database(pg_admin_url) as clean:
        flyway_migrate(clean, root)
        assert schema_snapshot(fresh_db) == schema_snapshot(clean)


def test_history_that_disagrees_with_flyway_refuses(flyway_db: tuple[str, Path], capsys) -> None:
    url, root = flyway_db
    assert run("import", "--from", "flyway", "--migrations", str(root), "--database-url", url, "--yes") == 0
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE schemagate_history SET checksum = repeat('0', 64) WHERE script = 'V002__create_plans.sql'"
        )
    conn.close()
    before = sg_history(url)
    capsys.readouterr()
    assert run("import", "--from", "flyway", "--migrations", str(root), "--database-url", url, "--yes") == 1
    assert "import-history-disagrees" in capsys.readouterr().err
    assert sg_history(url) == before


def test_a_flyway_baseline_becomes_schemagate_baseline(fresh_db: str, tmp_path: Path, capsys) -> None:
    root = flyway_billing.write(tmp_path / "m")
    # the team created the first five tables by hand and ran `flyway baseline -baselineVersion=5`
    from tests.schema_snapshot import psql_run

    psql_run(fresh_db, [root / rel for rel in flyway_order(root)[:5]])
    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True
    with conn.cursor() as cur:
        from tests.flyway_state import FLYWAY_DDL

        cur.execute(FLYWAY_DDL)
        cur.execute(
            "INSERT INTO flyway_schema_history (installed_rank, version, description, type, script, checksum, "
            "installed_by, execution_time, success) VALUES (1, '5', '<< Flyway Baseline >>', 'BASELINE', "
            "'<< Flyway Baseline >>', NULL, current_user, 0, true)"
        )
    conn.close()
    assert (
        run("import", "--from", "flyway", "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    )
    rows = sg_history(fresh_db)
    assert [(r[0], r[1]) for r in rows] == [("5", "BASELINE")]
    capsys.readouterr()
    assert run("apply", "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    applied = [r[2] for r in sg_history(fresh_db)[1:]]
    assert applied == flyway_order(root)[5:]


def test_the_import_waits_for_the_migration_lock_and_writes_nothing_while_another_executor_holds_it(
    flyway_db: tuple[str, Path],
) -> None:
    from executor.adopt import take_over
    from executor.connection import connect
    from executor.errors import LockTimeout
    from executor.lock import lock_key
    from validator.config import load_config
    from validator.structural import bundle_from_directory

    url, root = flyway_db
    settings = ExecutorSettings(advisory_lock_wait_s=1.0)
    bundle = bundle_from_directory(load_config(root.parent.parent, migrations=root))
    holder = psycopg2.connect(url)  # another executor, between two migrations
    holder.autocommit = True
    try:
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (lock_key(settings),))
        conn = connect(url)
        try:
            with pytest.raises(LockTimeout, match=r"held by another session \(waited 1\.\ds\)"):
                take_over(conn, bundle, "flyway", settings)
        finally:
            conn.close()
        assert sg_history(url) == []  # nothing written, not even the table
    finally:
        holder.close()
    conn = connect(url)  # the lock is free again: the same import goes through
    try:
        take_over(conn, bundle, "flyway", settings)
    finally:
        conn.close()
    imported = sg_history(url)
    assert len(imported) == len(flyway_rows(url)) and {r[1] for r in imported} <= {"IMPORTED", "BASELINE"}
