"""The Flyway layout (executor/layouts/flyway.py) on a realistic history (tests/histories/flyway_billing.py,
laid out as a Spring Boot service keeps it, under ``src/main/resources/db/migration`` with a
sub-directory per year): detection, the structural checks, apply compared with psql running the
files in Flyway's order, `schemagate new` numbered like the directory, and a branch that adds one
migration made by `schemagate new` judged alone although the old files hold errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest

from executor.bundle import load_bundle
from executor.naming import REPEATABLE, VERSIONED
from schemagate.cli import main
from schemagate.cmd_new import create_migration
from tests.conftest import temporary_database
from tests.git_project import commit_all, git, project_on_main
from tests.helpers import version_text
from tests.histories import flyway_billing
from tests.schema_snapshot import psql_run, schema_snapshot
from validator.config import load_config
from validator.discovery import discover
from validator.structural import check_structure
from validator.validate import run_validation

ROOT = "src/main/resources/db/migration"
STRUCTURAL = ("naming", "order", "syntax", "integrity")
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
VERSIONED_FILES = sorted(
    (rel for rel in flyway_billing.FILES if rel.rpartition("/")[2].startswith("V")),
    key=lambda rel: int(rel.rpartition("/")[2][1:4]),
)
REPEATABLE_FILES = sorted(  # Flyway runs repeatables after the versioned ones, by description
    rel for rel in flyway_billing.FILES if rel.rpartition("/")[2].startswith("R__")
)


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return flyway_billing.write(tmp_path / ROOT)


def test_the_history_resolves_as_flyway_reads_it(history: Path) -> None:
    found = discover(history)
    assert found.layout == "flyway" and found.findings == []
    versioned = [f for f in found.files if f.kind == VERSIONED]
    assert [f.rel for f in versioned] == VERSIONED_FILES  # by version, across the year directories
    assert [version_text(f.name) for f in versioned][:3] == ["001", "002", "003"]
    # the descriptions Flyway accepts: hyphens, spaces, capitals
    assert versioned[2].name.description == "subscription-status-type"
    assert "Rename display name" in {f.name.description for f in versioned}
    assert [f.rel for f in found.files if f.kind == REPEATABLE] == REPEATABLE_FILES
    # V008 builds its index CONCURRENTLY: outside a transaction, as Flyway runs it
    structural = check_structure(load_config(history.parent, migrations=history))
    manifest = {entry.file: entry for entry, _ in structural.manifest_entries()}
    assert manifest["V008__index_invoices_issued_at.sql"].transactional is False
    assert manifest["V001__create_accounts.sql"].transactional is True


def test_the_history_has_no_naming_order_syntax_or_integrity_error(history: Path) -> None:
    result = check_structure(load_config(history.parent, migrations=history))
    errors = [f for f in result.findings if f.family in STRUCTURAL and f.severity == "error"]
    assert errors == [], "\n".join(f"{f.location} {f.rule} {f.message}" for f in errors)
    assert result.layout == "flyway"


def test_apply_builds_the_schema_psql_builds_running_the_files_in_flyways_order(
    history: Path, fresh_db: str, pg_admin_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["apply", "--migrations", str(history), "--database-url", fresh_db, "--yes"]) == 0
    assert f"applied {len(flyway_billing.FILES)} migrations" in capsys.readouterr().out
    with temporary_database(pg_admin_url) as by_psql:
        psql_run(by_psql, [history / rel for rel in VERSIONED_FILES + REPEATABLE_FILES])
        assert schema_snapshot(fresh_db) == schema_snapshot(by_psql)
    conn = psycopg2.connect(fresh_db)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT version, script, type, success FROM schemagate_history ORDER BY installed_rank"
            )
            rows = cur.fetchall()
            cur.execute("SELECT count(*) FROM plans")
            assert cur.fetchone() == (3,)  # V002's seed rows, once
    finally:
        conn.close()
    assert [r[1] for r in rows] == VERSIONED_FILES + REPEATABLE_FILES
    assert all(r[3] for r in rows)
    assert rows[-1][0] is None  # a repeatable has no version, as in flyway_schema_history


def test_schemagate_new_numbers_the_next_file_like_the_directory(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["new", "--migrations", str(history), "add", "invoices", "currency"]) == 0
    path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert path.parent == history and path.name == "V021__add_invoices_currency.sql"
    path.write_text(
        path.read_text() + "ALTER TABLE invoices ADD COLUMN currency text NOT NULL DEFAULT 'EUR';\n"
    )
    found = discover(history)
    assert found.findings == []
    assert [f for f in found.files if f.kind == VERSIONED][-1].rel == path.name


@pytest.mark.parametrize(
    ("change", "passes"),
    [
        ("ALTER TABLE invoices ADD COLUMN currency text NOT NULL DEFAULT 'EUR';\n", True),
        (
            "ALTER TABLE invoices ADD COLUMN currency text;\n"
            "CREATE INDEX invoices_currency_idx ON invoices (currency);\n",
            False,
        ),
    ],
    ids=["safe", "blocking-index"],
)
def test_a_branch_adding_one_migration_made_by_new_is_judged_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str, passes: bool
) -> None:
    root = tmp_path / "billing-service"
    history = flyway_billing.write(root / ROOT)
    project_on_main(root, ROOT)
    monkeypatch.chdir(root)
    # the history alone fails: its old files hold errors nobody will edit (they are applied)
    alone = run_validation(load_config(root))
    assert alone.exit_code == 1
    old_errors = {f.file for f in alone.findings if f.severity == "error"}
    assert old_errors and all(f is not None and not f.startswith("V021") for f in old_errors)

    git(root, "checkout", "-qb", "feature/currency")
    path = create_migration(history, ["add", "invoices", "currency"], now=NOW)
    path.write_text(path.read_text() + change)
    commit_all(root, "invoice currency")
    result = run_validation(load_config(root), base_ref="main", bundle_dir=root / "bundle")

    errors = [f for f in result.findings if f.severity == "error"]
    if passes:
        assert result.exit_code == 0, [f"{f.location} {f.rule}" for f in errors]
        manifest = load_bundle(root / "bundle").manifest
        assert len(manifest.migrations) == len(flyway_billing.FILES) + 1  # every file is bundled
        assert manifest.layout == "flyway"
        assert path.name in {e.file for e in manifest.migrations}
    else:
        assert result.exit_code == 1
        assert {f.file for f in errors} == {path.name}
        assert "require-concurrent-index-creation" in {f.rule for f in errors}
        assert not (root / "bundle" / "manifest.json").exists()
