"""`schemagate import --from prisma` on a database Prisma migrated (tests/prisma_state.py writes
`_prisma_migrations` as Prisma's schema engine does): a baseline marked applied, deployed migrations,
failed, unfinished and rolled-back ones, edited files; apply, a new migration, and every refusal with
the database left as it was."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg2
import pytest

from executor.adopt.prisma import prisma_checksum, prisma_checksum_matches
from executor.checksum import file_checksum
from executor.history import read_history
from executor.settings import ExecutorSettings
from schemagate.cli import main
from tests.conftest import DatabaseTemplates, content_key, temporary_database
from tests.helpers import fetch_value
from tests.histories import prisma_scheduling
from tests.prisma_state import (
    prisma_deploy,
    prisma_deploy_failing,
    prisma_order,
    prisma_resolve_applied,
    prisma_resolve_rolled_back,
    prisma_rows,
)
from tests.schema_snapshot import psql_run, schema_snapshot

SETTINGS = ExecutorSettings()
LATEST = "20240510083000_add_webhook_secret"


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


def execute(url: str, sql: str, params: tuple = ()) -> None:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql, params)
    conn.close()


def run(*args: str) -> int:
    return main(list(args))


def import_prisma(root: Path, url: str, *extra: str) -> int:
    return run(
        "import", "--from", "prisma", "--migrations", str(root), "--database-url", url, "--yes", *extra
    )


def baselined(url: str, root: Path) -> None:
    """The database existed before Prisma: 0_init's SQL was already there, and the team ran
    `prisma migrate resolve --applied 0_init` (Prisma's baselining guide)."""
    psql_run(url, [root / "0_init" / "migration.sql"])
    prisma_resolve_applied(url, root, "0_init")


def baselined_and_deployed(root: Path) -> Callable[[str], None]:
    def build(url: str) -> None:
        baselined(url, root)
        prisma_deploy(url, root)

    return build


@pytest.fixture
def prisma_db(database_templates: DatabaseTemplates, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """0_init baselined, every other migration deployed (built once, a copy for each test)."""
    root = prisma_scheduling.write(tmp_path / "prisma" / "migrations")
    key = content_key("prisma: baselined 0_init, deployed the rest", root)
    with database_templates.copy(key, baselined_and_deployed(root)) as url:
        yield url, root


def failed_deploy_of_latest(url: str, root: Path) -> str:
    """`prisma migrate deploy` of every migration, the latest failing (its first version named a
    table that does not exist); returns that broken script, the file is restored afterwards."""
    baselined(url, root)
    prisma_deploy(url, root, upto=len(prisma_order(root)) - 1)
    script = root / LATEST / "migration.sql"
    good = script.read_text()
    broken = good.replace('ALTER TABLE "Webhook"', 'ALTER TABLE "Webhooks"')
    script.write_text(broken)
    prisma_deploy_failing(url, root, LATEST)
    script.write_text(good)
    return broken


def test_prisma_checksum_is_sha256_of_the_exact_bytes_and_matches_across_line_endings() -> None:
    lf = b'-- CreateTable\nCREATE TABLE "A" ("id" SERIAL NOT NULL);\n'
    crlf = lf.replace(b"\n", b"\r\n")
    assert prisma_checksum(lf) == hashlib.sha256(lf).hexdigest() != prisma_checksum(crlf)
    assert prisma_checksum_matches(crlf, prisma_checksum(lf)) and prisma_checksum_matches(
        lf, prisma_checksum(crlf)
    )
    assert not prisma_checksum_matches(lf + b"\n", prisma_checksum(lf))
    assert not prisma_checksum_matches(b"\xef\xbb\xbf" + lf, prisma_checksum(lf))  # Prisma keeps the BOM
    # an old engine wrote the bytes without zero padding
    script = next(s for i in range(100) if min(hashlib.sha256(s := f"SELECT {i};".encode()).digest()) < 16)
    old = "".join(f"{b:x}" for b in hashlib.sha256(script).digest())
    assert len(old) < 64 and prisma_checksum_matches(script, old)


def test_import_records_every_applied_migration_then_apply_does_nothing_and_a_new_one_applies_alone(
    prisma_db: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, root = prisma_db
    old_table = prisma_rows(url)
    schema_before = schema_snapshot(url)
    order = prisma_order(root)

    assert import_prisma(root, url) == 0
    out = capsys.readouterr().out
    assert f'imported {len(order)} migration(s) from Prisma\'s "public"."_prisma_migrations"' in out
    assert "0_init was marked as applied with `prisma migrate resolve --applied`" in out

    rows = sg_history(url)
    assert [r[2] for r in rows] == order  # Prisma's migration_name: the directory names
    assert rows[0][0] == "0" and rows[1][0] == "20230214101522"
    assert {r[1] for r in rows} == {"IMPORTED"} and {r[4] for r in rows} == {"import:prisma"}
    assert [r[3] for r in rows] == [file_checksum((root / n / "migration.sql").read_bytes()) for n in order]
    assert prisma_rows(url) == old_table
    assert schema_snapshot(url) == schema_before
    conn = psycopg2.connect(url)
    with conn.cursor() as cur:  # installed_on is Prisma's finished_at
        cur.execute(
            "SELECT bool_and(h.installed_on = p.finished_at) FROM schemagate_history h "
            "JOIN _prisma_migrations p ON p.migration_name = h.script"
        )
        assert fetch_value(cur) is True
    conn.close()

    assert import_prisma(root, url) == 0
    assert "nothing to import" in capsys.readouterr().out
    assert sg_history(url) == rows

    assert run("apply", "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "nothing to apply" in capsys.readouterr().out
    assert run("info", "--migrations", str(root), "--database-url", url, "--json") == 0
    infos = json.loads(capsys.readouterr().out)
    infos = [
        i for i in (infos["migrations"] if isinstance(infos, dict) else infos) if i["kind"] == "versioned"
    ]
    assert len(infos) == len(order) and {i["state"] for i in infos} == {"applied"}
    assert all("imported" in i["reason"] and "prisma" in i["reason"] for i in infos)

    assert run("new", "--migrations", str(root), "add", "booking", "location") == 0
    script = Path(capsys.readouterr().out.strip().splitlines()[-1])
    script.write_text('-- AlterTable\nALTER TABLE "Booking" ADD COLUMN     "location" TEXT;\n')
    assert run("apply", "--migrations", str(root), "--database-url", url, "--yes") == 0
    assert "applied 1 migration" in capsys.readouterr().out
    assert sg_history(url)[-1][1:3] == ("SQL", script.parent.name)
    assert prisma_rows(url) == old_table


def test_an_edited_file_refuses_the_import_naming_both_checksums_and_writes_nothing(
    prisma_db: tuple[str, Path], capsys
) -> None:
    url, root = prisma_db
    edited = root / "20230915083000_backfill_event_type_slugs" / "migration.sql"
    recorded = prisma_checksum(edited.read_bytes())
    edited.write_text(edited.read_text().replace("'-'", "'_'"))
    old = prisma_rows(url)
    assert import_prisma(root, url) == 1
    err = capsys.readouterr().err
    assert "import-checksum-mismatch" in err
    assert "20230915083000_backfill_event_type_slugs/migration.sql was changed after Prisma applied it" in err
    assert recorded in err and prisma_checksum(edited.read_bytes()) in err
    assert "UPDATE _prisma_migrations SET checksum" in err  # what to settle in Prisma's table
    assert not history_table_exists(url) and prisma_rows(url) == old


def test_line_endings_changed_by_git_are_not_an_edit(prisma_db: tuple[str, Path], capsys) -> None:
    url, root = prisma_db
    script = root / "20230301083044_add_bookings" / "migration.sql"
    script.write_bytes(script.read_bytes().replace(b"\n", b"\r\n"))  # a checkout with core.autocrlf
    assert import_prisma(root, url) == 0
    [row] = [r for r in sg_history(url) if r[2] == "20230301083044_add_bookings"]
    assert row[3] == file_checksum(script.read_bytes())


def test_a_failed_migration_refuses_the_import(fresh_db: str, tmp_path: Path, capsys) -> None:
    root = prisma_scheduling.write(tmp_path / "m")
    failed_deploy_of_latest(fresh_db, root)
    old = prisma_rows(fresh_db)
    assert import_prisma(root, fresh_db) == 1
    err = capsys.readouterr().err
    assert "import-failed-migration" in err and f"Prisma's migration {LATEST}" in err
    assert 'relation "Webhooks" does not exist' in err  # Prisma's log, first line
    assert f"prisma migrate resolve --rolled-back {LATEST}" in err
    assert not history_table_exists(fresh_db) and prisma_rows(fresh_db) == old


def test_a_migration_started_and_never_finished_refuses_the_import(
    prisma_db: tuple[str, Path], capsys
) -> None:
    url, root = prisma_db
    # `prisma migrate deploy` was killed while it ran the script: a started row, no log
    execute(
        url,
        "INSERT INTO _prisma_migrations (id, checksum, started_at, migration_name) VALUES (%s, %s, now(), %s)",
        (str(uuid.uuid4()), "0" * 64, "20240601000000_add_booking_notes"),
    )
    old = prisma_rows(url)
    assert import_prisma(root, url) == 1
    err = capsys.readouterr().err
    assert "import-unfinished" in err and "started but never finished" in err
    assert "20240601000000_add_booking_notes" in err
    assert not history_table_exists(url) and prisma_rows(url) == old


def test_a_migration_rolled_back_and_applied_again_is_imported_from_its_successful_row(
    fresh_db: str, tmp_path: Path, capsys
) -> None:
    root = prisma_scheduling.write(tmp_path / "m")
    broken = failed_deploy_of_latest(fresh_db, root)
    prisma_resolve_rolled_back(fresh_db, LATEST)
    assert prisma_deploy(fresh_db, root) == [LATEST]  # the fixed file, applied again
    rows = [r for r in prisma_rows(fresh_db) if r[3] == LATEST]
    assert len(rows) == 2 and rows[0][1] == prisma_checksum(broken.encode())  # the rolled-back row
    assert import_prisma(root, fresh_db) == 0
    history = sg_history(fresh_db)
    assert [r[2] for r in history] == prisma_order(root)
    assert history[-1][3] == file_checksum((root / LATEST / "migration.sql").read_bytes())


def test_a_migration_only_rolled_back_is_pending_and_apply_runs_it_alone(
    fresh_db: str, tmp_path: Path, capsys
) -> None:
    root = prisma_scheduling.write(tmp_path / "m")
    failed_deploy_of_latest(fresh_db, root)
    prisma_resolve_rolled_back(fresh_db, LATEST)
    assert import_prisma(root, fresh_db) == 0
    out = capsys.readouterr().out
    assert f"Prisma rolled back {LATEST}" in out and "it is pending" in out
    assert LATEST not in [r[2] for r in sg_history(fresh_db)]
    assert run("apply", "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    assert "applied 1 migration" in capsys.readouterr().out
    assert sg_history(fresh_db)[-1][1:3] == ("SQL", LATEST)


def test_an_applied_migration_without_a_directory_refuses(prisma_db: tuple[str, Path], capsys) -> None:
    url, root = prisma_db
    (root / "20231205080000_add_selected_calendars" / "migration.sql").unlink()
    (root / "20231205080000_add_selected_calendars").rmdir()
    old = prisma_rows(url)
    assert import_prisma(root, url) == 1
    err = capsys.readouterr().err
    assert (
        "import-no-file" in err and "Prisma recorded 20231205080000_add_selected_calendars as applied" in err
    )
    assert "restore the directory 20231205080000_add_selected_calendars/" in err
    assert not history_table_exists(url) and prisma_rows(url) == old


def test_no_prisma_table_refuses(fresh_db: str, tmp_path: Path, capsys) -> None:
    root = prisma_scheduling.write(tmp_path / "m")
    assert import_prisma(root, fresh_db) == 1
    err = capsys.readouterr().err
    assert "no Prisma history table" in err and "import-no-table" in err
    assert not history_table_exists(fresh_db)


@pytest.mark.slow
def test_a_partly_migrated_database_imports_what_prisma_applied_and_apply_runs_the_rest(
    fresh_db: str, pg_admin_url: str, tmp_path: Path, capsys
) -> None:
    root = prisma_scheduling.write(tmp_path / "m")
    baselined(fresh_db, root)
    applied = ["0_init", *prisma_deploy(fresh_db, root, upto=15)]
    assert import_prisma(root, fresh_db) == 0
    assert [r[2] for r in sg_history(fresh_db)] == applied
    capsys.readouterr()
    assert run("apply", "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    assert f"applied {len(prisma_order(root)) - 15} migrations" in capsys.readouterr().out
    assert [r[2] for r in sg_history(fresh_db)] == prisma_order(root)
    with temporary_database(pg_admin_url) as clean:
        prisma_deploy(clean, root)
        assert schema_snapshot(fresh_db) == schema_snapshot(clean)


def test_history_that_disagrees_with_prisma_refuses(prisma_db: tuple[str, Path], capsys) -> None:
    url, root = prisma_db
    assert import_prisma(root, url) == 0
    execute(
        url,
        "UPDATE schemagate_history SET checksum = repeat('0', 64) WHERE script = '20230301083044_add_bookings'",
    )
    before = sg_history(url)
    capsys.readouterr()
    assert import_prisma(root, url) == 1
    assert "import-history-disagrees" in capsys.readouterr().err
    assert sg_history(url) == before
