"""The Prisma layout on a realistic history (tests/histories/prisma_scheduling.py): resolved as Prisma
resolves it, validated without a structural error, applied to the same schema as `prisma migrate
deploy` builds (tests/prisma_state.py), extended by `schemagate new`, bundled and undone; a lock file
for another provider and every malformed file a naming finding that names Prisma."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest

from executor import layouts
from executor.bundle import load_bundle, write_bundle
from executor.errors import ConfigurationError
from executor.layouts.prisma import EMPTY_MIGRATION, LOCK_TEXT, Prisma
from executor.naming import UNDO, VERSIONED
from schemagate.cli import main
from schemagate.cmd_new import create_migration
from tests.conftest import REPO_ROOT, temporary_database
from tests.helpers import fetch_value, version_text
from tests.histories import diesel_registry, flyway_billing, prisma_scheduling
from tests.history_checks import feature_branch, run_in, structural_errors, validate_report
from tests.prisma_state import prisma_deploy, prisma_order
from tests.schema_snapshot import schema_snapshot
from validator.config import load_config
from validator.discovery import DirectoryTree, discover
from validator.structural import bundle_from_directory

NOW = datetime(2026, 11, 21, 23, 58, 7, tzinfo=UTC)
LATEST = "20240510083000_add_webhook_secret"


@pytest.fixture
def scheduling(tmp_path: Path) -> Path:
    return prisma_scheduling.write(tmp_path / "prisma" / "migrations")


def history_rows(url: str) -> list[tuple[str, str, str]]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version, type, script FROM schemagate_history ORDER BY installed_rank")
            return cur.fetchall()
    finally:
        conn.close()


def with_files(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_the_history_resolves_as_prisma_reads_it(scheduling: Path) -> None:
    found = discover(scheduling)
    assert found.layout == "prisma" and found.findings == []
    assert found.support_files == ["migration_lock.toml"]
    ups = [f for f in found.files if f.kind == VERSIONED]
    assert [f.script_name for f in ups] == prisma_order(scheduling)
    assert (version_text(ups[0].name), ups[0].name.description, ups[0].rel) == (
        "0",
        "init",
        "0_init/migration.sql",
    )
    assert version_text(ups[1].name) == "20230214101522" and ups[1].name.description == "add event types"
    assert {f.layout_transactional for f in found.files} == {None}  # Prisma has no per-migration switch
    downs = [f for f in found.files if f.kind == UNDO]
    assert [f.rel for f in downs] == [
        "20240402093000_add_event_type_search/down.sql",
        "20240425110000_add_booking_references/down.sql",
        f"{LATEST}/down.sql",
    ]


def test_validate_reports_no_naming_order_syntax_or_integrity_error(scheduling: Path) -> None:
    _, report = validate_report(scheduling.parent, scheduling)
    assert structural_errors(report) == []
    assert report["summary"]["files"] == len([r for r in prisma_scheduling.FILES if r.endswith(".sql")])


def test_apply_builds_the_schema_prisma_migrate_deploy_builds(
    fresh_db: str, pg_admin_url: str, scheduling: Path, capsys
) -> None:
    assert main(["apply", "--migrations", str(scheduling), "--database-url", fresh_db, "--yes"]) == 0
    assert f"applied {len(prisma_order(scheduling))} migrations" in capsys.readouterr().out
    assert [r[2] for r in history_rows(fresh_db)] == prisma_order(scheduling)
    with temporary_database(pg_admin_url) as by_prisma:
        assert prisma_deploy(by_prisma, scheduling) == prisma_order(scheduling)
        assert schema_snapshot(fresh_db) == schema_snapshot(by_prisma)


def test_new_creates_the_directory_prisma_migrate_dev_makes(scheduling: Path, capsys) -> None:
    path = create_migration(scheduling, ["add", "booking", "location"], now=NOW)
    assert path == scheduling / "20261121235807_add_booking_location" / "migration.sql"
    assert path.read_text() == EMPTY_MIGRATION
    assert sorted(p.name for p in path.parent.iterdir()) == ["migration.sql"]
    assert (scheduling / "migration_lock.toml").read_text() == prisma_scheduling.LOCK_FILE  # left alone
    assert run_in(scheduling.parent, "new", "--migrations", str(scheduling), "add", "team", "theme") == 0
    printed = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed.name == "migration.sql" and printed.parent.name.endswith("_add_team_theme")
    assert (
        printed.parent.name.partition("_")[0].isdigit() and len(printed.parent.name.partition("_")[0]) == 14
    )
    assert Prisma().resolve(DirectoryTree(scheduling)).problems == []


def test_new_in_an_empty_directory_writes_the_lock_file_too(tmp_path: Path) -> None:
    root = tmp_path / "prisma" / "migrations"
    path = create_migration(root, ["init"], now=NOW, layout="prisma")
    assert path == root / "20261121235807_init" / "migration.sql"
    assert (root / "migration_lock.toml").read_text() == LOCK_TEXT
    with pytest.raises(ConfigurationError, match="already used"):
        create_migration(root, ["again"], now=NOW, layout="prisma", version="20261121235807")
    with pytest.raises(ConfigurationError, match="not a Prisma migration version"):
        create_migration(root, ["bad"], now=NOW, layout="prisma", version="2026-11-21")


def test_a_bundle_round_trips_and_undo_runs_the_latest_down_sql(
    fresh_db: str, scheduling: Path, tmp_path: Path, capsys
) -> None:
    bundle = bundle_from_directory(load_config(tmp_path, migrations=scheduling))
    loaded = load_bundle(write_bundle(bundle, tmp_path / "bundle").parent)
    assert loaded.manifest.layout == "prisma" and loaded.files == bundle.files
    assert "migration_lock.toml" not in loaded.files
    entry = loaded.entry("20231020090000_index_booking_start_time/migration.sql")
    assert (entry.script, entry.transactional) == ("20231020090000_index_booking_start_time", False)
    bundle_dir = str(tmp_path / "bundle")
    assert main(["apply", "--bundle", bundle_dir, "--database-url", fresh_db, "--yes"]) == 0
    assert main(["undo", "--bundle", bundle_dir, "--database-url", fresh_db, "--yes"]) == 0
    assert history_rows(fresh_db)[-1] == ("20240510083000", "UNDO", f"{LATEST}/down.sql")
    conn = psycopg2.connect(fresh_db)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'Webhook' AND column_name = 'secret'"
        )
        assert fetch_value(cur) == 0
    conn.close()
    capsys.readouterr()
    assert main(["apply", "--bundle", bundle_dir, "--database-url", fresh_db, "--yes"]) == 0
    assert "applied 1 migration" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("lock", "words"),
    [
        ('provider = "mysql"\n', "provider = 'mysql'"),
        ('provider = "cockroachdb"\n', "provider = 'cockroachdb'"),
        ("# Please do not edit this file manually\n", "names no provider"),
        ("provider = postgresql\n", "not valid TOML"),
    ],
)
def test_a_lock_file_for_another_provider_is_an_error(scheduling: Path, lock: str, words: str) -> None:
    (scheduling / "migration_lock.toml").write_text(lock)
    found = discover(scheduling)
    [finding] = found.findings
    assert (finding.rule, finding.file, finding.severity) == (
        "prisma-provider",
        "migration_lock.toml",
        "error",
    )
    assert words in finding.message and "Prisma" in finding.message
    assert 'provider = "postgresql"' in finding.help or "PostgreSQL datasource" in finding.help
    code, report = validate_report(scheduling.parent, scheduling, "--no-lint")  # a structural check
    assert code == 1 and [f["rule"] for f in structural_errors(report)] == ["prisma-provider"]


def test_a_history_without_a_lock_file_is_accepted(scheduling: Path) -> None:
    (scheduling / "migration_lock.toml").unlink()
    found = discover(scheduling)
    assert found.layout == "prisma" and found.findings == [] and found.support_files == []


@pytest.mark.parametrize(
    ("files", "file", "words", "example"),
    [
        (  # a directory without migration.sql
            {"20240601100000_add_booking_notes/down.sql": "SELECT 1;\n"},
            "20240601100000_add_booking_notes/down.sql",
            "has no migration.sql",
            "20240601100000_add_booking_notes/migration.sql",
        ),
        (  # a typo for migration.sql
            {"20240601100000_add_booking_notes/migrations.sql": "SELECT 1;\n"},
            "20240601100000_add_booking_notes/migrations.sql",
            "migrations.sql is not a file Prisma runs",
            "20240601100000_add_booking_notes/migration.sql",
        ),
        (  # a directory name without Prisma's timestamp
            {"add_booking_notes/migration.sql": "SELECT 1;\n"},
            "add_booking_notes/migration.sql",
            "does not start with the timestamp",
            "20240501120000_add_booking_notes/migration.sql",
        ),
        (  # a script at the top level, where Prisma never looks
            {"seed.sql": "SELECT 1;\n"},
            "seed.sql",
            "directly in the migrations directory is never run by Prisma",
            "20240501120000_seed/migration.sql",
        ),
        (  # a script Prisma does not run, next to migration.sql and down.sql
            {"20240601100000_x/migration.sql": "SELECT 1;\n", "20240601100000_x/down.sql": "SELECT 1;\n",
             "20240601100000_x/backfill.sql": "SELECT 1;\n"},
            "20240601100000_x/backfill.sql",
            "Prisma runs only migration.sql",
            None,
        ),
        (  # a file nested deeper than a migration directory
            {"20240601100000_x/migration.sql": "SELECT 1;\n", "20240601100000_x/old/migration.sql": "SELECT 1;\n"},
            "20240601100000_x/old/migration.sql",
            "reads only migration.sql directly inside",
            None,
        ),
        (  # hand-named directories Prisma runs in text order: 10_ before 9_
            {"9_fix_slugs/migration.sql": "SELECT 1;\n", "10_add_index/migration.sql": "SELECT 1;\n"},
            "9_fix_slugs/migration.sql",
            "orders migrations by directory name as text",
            "90_fix_slugs/migration.sql",
        ),
    ],
)  # fmt: skip
def test_malformed_files_are_naming_errors_that_name_prisma(
    scheduling: Path, files: dict[str, str], file: str, words: str, example: str | None
) -> None:
    found = discover(with_files(scheduling, files))
    assert found.layout == "prisma"
    problems = [f for f in found.findings if f.file == file]
    assert len(problems) == 1, found.findings
    finding = problems[0]
    assert finding.family == "naming" and finding.severity == "error"
    assert f"{file} is not a valid Prisma migration" in finding.message and words in finding.message
    assert finding.docs.endswith("docs/layouts/prisma.md")
    if example:
        assert f"rename it to {example}" in finding.help
    else:
        assert "delete it" in finding.help


def test_prisma_is_detected_for_its_history_and_never_for_the_others(tmp_path: Path) -> None:
    prisma = prisma_scheduling.write(tmp_path / "prisma")
    assert layouts.detect(DirectoryTree(prisma)).layout == "prisma"
    others = {
        "flyway": flyway_billing.write(tmp_path / "flyway"),
        "diesel": diesel_registry.write(tmp_path / "diesel"),
        "golang-migrate": with_files(
            tmp_path / "golang",
            {"000001_create_users.up.sql": "SELECT 1;\n", "000001_create_users.down.sql": "SELECT 1;\n"},
        ),
        "dbmate": with_files(
            tmp_path / "dbmate",
            {"20240101120000_create_users.sql": "-- migrate:up\nSELECT 1;\n-- migrate:down\nSELECT 1;\n"},
        ),
        "drizzle": with_files(
            tmp_path / "drizzle",
            {
                "0000_silly_wolverine.sql": "CREATE TABLE a (id int);\n",
                "meta/_journal.json": json.dumps({"version": "7", "dialect": "postgresql", "entries": []}),
            },
        ),
        "example": REPO_ROOT / "migrations",
    }
    for name, root in others.items():
        assert Prisma().resolve(DirectoryTree(root)).migrations == [], name
        assert layouts.detect(DirectoryTree(root)).layout != "prisma", name


def test_a_generated_enum_value_removal_wrapped_in_begin_commit_applies(
    fresh_db: str, pg_admin_url: str, scheduling: Path
) -> None:
    """Prisma wraps the migration that removes an enum value in BEGIN; ... COMMIT;: it runs as one
    transactional migration."""
    with_files(
        scheduling, {"20240601100000_remove_no_show/migration.sql": prisma_scheduling.ENUM_VALUE_REMOVAL}
    )
    _, report = validate_report(scheduling.parent, scheduling)
    assert structural_errors(report) == []
    assert main(["apply", "--migrations", str(scheduling), "--database-url", fresh_db, "--yes"]) == 0
    with temporary_database(pg_admin_url) as by_prisma:
        prisma_deploy(by_prisma, scheduling)
        after = schema_snapshot(fresh_db)
        assert after == schema_snapshot(by_prisma)
    [labels] = [e[2] for e in after["enums"] if e[1] == "WebhookTriggerEvents"]
    assert labels == "{BOOKING_CREATED,BOOKING_CANCELLED}"


def test_a_branch_that_adds_one_migration_made_by_new_is_judged_alone(tmp_path: Path, capsys) -> None:
    """The old files have safety findings (down scripts that drop, integer keys...): with a base ref
    only the new file is judged."""
    project = tmp_path / "scheduling"
    migrations = feature_branch(project, prisma_scheduling.write, "prisma/migrations")
    assert run_in(project, "new", "--migrations", str(migrations), "add", "booking", "location") == 0
    script = Path(capsys.readouterr().out.strip().splitlines()[-1])
    script.write_text('-- AlterTable\nALTER TABLE "Booking" ADD COLUMN     "location" TEXT;\n')
    code, report = validate_report(project, migrations, "--base-ref", "main", "--bundle", str(tmp_path / "b"))
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert (code, errors) == (0, [])
    assert (tmp_path / "b" / "manifest.json").is_file()

    script.write_text(
        '-- AlterTable\nALTER TABLE "Booking" ADD COLUMN     "location" TEXT;\n\n'
        '-- CreateIndex\nCREATE INDEX "Booking_location_idx" ON "Booking"("location");\n'
    )
    code, report = validate_report(project, migrations, "--base-ref", "main")
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert code == 1 and errors
    assert {f["file"] for f in errors} == {script.relative_to(migrations).as_posix()}
