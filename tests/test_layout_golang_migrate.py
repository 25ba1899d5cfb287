"""The golang-migrate layout (executor/layouts/golang_migrate.py) on a realistic history
(tests/histories/golang_migrate_fleet.py): discovery, detection, the naming findings, structural
checks, apply compared with psql, `schemagate new`, a branch judged alone, a bundle round trip and
`undo` of the latest. The files are wrapped in BEGIN; ... COMMIT;, the way golang-migrate histories are
written."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest

from executor.bundle import load_bundle, write_bundle
from executor.layouts import MappingTree, detect, get
from executor.naming import UNDO, VERSIONED
from schemagate.cli import main
from schemagate.cmd_new import create_migration
from tests.conftest import REPO_ROOT, temporary_database
from tests.golang_migrate_state import up_files
from tests.helpers import fetch_value, version_text
from tests.histories import dbmate_bookings, flyway_billing, golang_migrate_fleet
from tests.schema_snapshot import psql_run, schema_snapshot
from validator.config import load_config
from validator.discovery import discover
from validator.structural import bundle_from_directory, check_structure

STRUCTURAL = ("naming", "order", "syntax", "integrity")
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def run(*args: str) -> int:
    return main(list(args))


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return golang_migrate_fleet.write(tmp_path / golang_migrate_fleet.ROOT)


def tree_of(files: dict[str, str]) -> MappingTree:
    return MappingTree({rel: text.encode() for rel, text in files.items()})


def test_the_history_resolves_as_golang_migrate_with_numeric_versions_and_down_files_as_undo(
    history: Path,
) -> None:
    found = discover(history)
    assert found.layout == "golang-migrate"
    assert found.findings == []
    ups = [f for f in found.files if f.kind == VERSIONED]
    assert [f.rel for f in ups] == [p.name for p in up_files(history)]
    assert [version_text(f.name) for f in ups] == [str(n) for n in range(1, 29)]  # bigint, as golang-migrate
    seven = next(f for f in ups if f.rel == "000007_1.7.0_schema.up.sql")
    assert seven.name.description == "1.7.0 schema"  # dots in the title are kept
    assert next(f for f in ups if f.rel.startswith("000006")).name.description == "add-shipment-eta"
    undos = {f.rel: f for f in found.files if f.kind == UNDO}
    assert version_text(undos["000028_shipments_weight_numeric.down.sql"].name) == "28"
    # down files without SQL (irreversible changes) are no undo: `undo` could only pretend
    for empty in ("000011", "000012", "000019", "000027"):
        assert not any(rel.startswith(empty) for rel in undos)
    assert len(undos) == 24


def test_detection_picks_golang_migrate_for_its_history_and_nothing_else(
    history: Path, tmp_path: Path
) -> None:
    assert detect(tree_of(golang_migrate_fleet.FILES)).layout == "golang-migrate"
    assert detect(tree_of(dbmate_bookings.FILES)).layout == "dbmate"
    assert detect(tree_of(flyway_billing.FILES)).layout == "flyway"
    assert discover(REPO_ROOT / "migrations").layout == "flyway"
    golang = get("golang-migrate")
    assert golang.resolve(tree_of(flyway_billing.FILES)).migrations == []
    assert golang.resolve(tree_of(dbmate_bookings.FILES)).migrations == []


@pytest.mark.parametrize(
    ("name", "problem", "example"),
    [
        ("000029_add_notes.up.SQL", "the extension must be lower-case '.sql'", "000029_add_notes.up.sql"),
        ("000029_add_notes.up.sql.bak", "any extension ('.sql.bak')", "000029_add_notes.up.sql"),
        ("000029-add_notes.up.sql", "the version must be followed by '_'", "000029_add_notes.up.sql"),
        ("000029_add_notes.UP.sql", "the direction must be lower-case", "000029_add_notes.up.sql"),
        ("000029_add_notes.sql", "the direction before the extension", "000029_add_notes.up.sql"),
        ("add_notes.up.sql", "must start with the version number", "000001_add_notes.up.sql"),
        ("000029_add_notes.down.sql", "no up file for version 29", "000029_add_notes.up.sql"),
        (
            "000028_weight_again.up.sql",
            "version 28 already has an up file",
            "<next version>_weight_again.up.sql",
        ),
        ("99999999999999999999_big.up.sql", "larger than golang-migrate's bigint", "000001_big.up.sql"),
    ],
)
def test_malformed_files_are_naming_errors_that_name_golang_migrate_and_a_correct_name(
    history: Path, name: str, problem: str, example: str
) -> None:
    (history / name).write_text("BEGIN;\nALTER TABLE shipments ADD COLUMN notes TEXT;\nCOMMIT;\n")
    found = discover(history)
    assert found.layout == "golang-migrate"
    [finding] = found.findings
    assert (finding.rule, finding.severity, finding.file) == ("naming-malformed", "error", name)
    assert f"{name} is not a valid golang-migrate migration" in finding.message
    assert problem in finding.message
    assert f"rename it to {example}" in finding.help
    assert "golang-migrate.md" in finding.docs


def test_a_migration_in_a_sub_directory_is_a_warning_golang_migrate_never_runs_it(history: Path) -> None:
    (history / "archive").mkdir()
    (history / "archive" / "000003_old_vehicles.up.sql").write_text("SELECT 1;\n")
    found = discover(history)
    [finding] = found.findings
    assert (finding.severity, finding.file) == ("warning", "archive/000003_old_vehicles.up.sql")
    assert "reads only the files directly in the migrations directory" in finding.message
    assert len([f for f in found.files if f.kind == VERSIONED]) == 28


def test_the_history_has_no_naming_order_syntax_or_integrity_error(history: Path) -> None:
    result = check_structure(load_config(history.parent.parent, migrations=history))
    errors = [f for f in result.findings if f.family in STRUCTURAL and f.severity == "error"]
    assert errors == [], "\n".join(f"{f.location} {f.rule} {f.message}" for f in errors)
    assert result.layout == "golang-migrate"


def test_apply_builds_the_schema_psql_builds_running_the_up_files_in_golang_migrate_order(
    history: Path, fresh_db: str, pg_admin_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("apply", "--migrations", str(history), "--database-url", fresh_db, "--yes") == 0
    assert "applied 28 migrations" in capsys.readouterr().out
    with temporary_database(pg_admin_url) as by_psql:
        psql_run(by_psql, up_files(history))
        assert schema_snapshot(fresh_db) == schema_snapshot(by_psql)
    conn = psycopg2.connect(fresh_db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version, script, type FROM schemagate_history ORDER BY installed_rank")
            rows = cur.fetchall()
            cur.execute("SELECT to_regclass('schema_migrations')")
            assert fetch_value(cur) is None  # golang-migrate's table is never created by schemagate
    finally:
        conn.close()
    assert rows[0] == ("1", "000001_create_companies.up.sql", "SQL")
    assert rows[-1] == ("28", "000028_shipments_weight_numeric.up.sql", "SQL")


def test_schemagate_new_writes_the_up_and_down_files_with_the_next_sequential_version(
    history: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("new", "--migrations", str(history), "add", "shipments", "notes") == 0
    path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert path == history / "000029_add_shipments_notes.up.sql"
    down = history / "000029_add_shipments_notes.down.sql"
    assert down.exists() and "schemagate undo" in down.read_text()
    path.write_text(path.read_text() + "ALTER TABLE shipments ADD COLUMN notes TEXT;\n")
    found = discover(history)
    assert found.findings == []
    latest = [f for f in found.files if f.kind == VERSIONED][-1]
    assert (latest.rel, version_text(latest.name)) == ("000029_add_shipments_notes.up.sql", "29")
    # its down file holds no SQL yet: no undo until it does
    assert not any(f.rel == down.name for f in found.files)


@pytest.mark.parametrize(
    ("existing", "expected"),
    [
        (["20240501120000_init.up.sql", "20240502093000_users.up.sql"], "20260304050607"),  # `migrate create`
        (["1714564800_init.up.sql"], str(int(NOW.timestamp()))),  # -format unix
        (["1_init.up.sql", "2_users.up.sql"], "3"),  # -seq -digits 1
        (["0009_init.up.sql"], "0010"),  # -seq -digits 4
        ([], "000001"),
    ],
)
def test_new_follows_the_directory_style(tmp_path: Path, existing: list[str], expected: str) -> None:
    for name in existing:
        (tmp_path / name).write_text("SELECT 1;\n")
    path = create_migration(tmp_path, ["add", "notes"], now=NOW, layout="golang-migrate")
    assert path.name == f"{expected}_add_notes.up.sql"
    assert (tmp_path / f"{expected}_add_notes.down.sql").exists()


def test_new_refuses_a_version_in_use_or_not_digits(history: Path) -> None:
    from executor.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="already used"):
        create_migration(history, ["x"], version="28", now=NOW)
    with pytest.raises(ConfigurationError, match="digits only"):
        create_migration(history, ["x"], version="2.0", now=NOW)
    assert create_migration(history, ["x"], version="000100", now=NOW).name == "000100_x.up.sql"


def test_a_bundle_round_trips_and_undo_runs_the_down_file_of_the_latest(
    history: Path, tmp_path: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = bundle_from_directory(load_config(tmp_path, migrations=history))
    write_bundle(bundle, tmp_path / "bundle")
    loaded = load_bundle(tmp_path / "bundle")
    assert loaded.manifest.layout == "golang-migrate"
    assert loaded.bundle_sha256 == bundle.bundle_sha256
    entries = {e.file: e for e in loaded.manifest.migrations}
    assert entries["000028_shipments_weight_numeric.down.sql"].kind == UNDO
    assert entries["000028_shipments_weight_numeric.down.sql"].version == "28"
    assert (
        loaded.sql(entries["000007_1.7.0_schema.up.sql"])
        == (history / "000007_1.7.0_schema.up.sql").read_text()
    )

    assert run("apply", "--bundle", str(tmp_path / "bundle"), "--database-url", fresh_db, "--yes") == 0
    assert run("undo", "--bundle", str(tmp_path / "bundle"), "--database-url", fresh_db, "--yes") == 0
    capsys.readouterr()
    conn = psycopg2.connect(fresh_db)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT data_type FROM information_schema.columns WHERE table_name = 'shipments' "
                "AND column_name = 'weight_kg'"
            )
            assert cur.fetchone() == ("integer",)  # the down file ran
            cur.execute("SELECT type, script FROM schemagate_history ORDER BY installed_rank DESC LIMIT 1")
            assert cur.fetchone() == ("UNDO", "000028_shipments_weight_numeric.down.sql")
    finally:
        conn.close()
    # version 28 is pending again: apply runs its up file once more
    assert run("apply", "--bundle", str(tmp_path / "bundle"), "--database-url", fresh_db, "--yes") == 0
    assert "applied 1 migration" in capsys.readouterr().out


def test_undo_of_a_version_whose_down_file_is_empty_refuses_and_changes_nothing(
    history: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in history.glob("00002[89]_*"):
        path.unlink()
    assert run("apply", "--migrations", str(history), "--database-url", fresh_db, "--yes") == 0
    before = schema_snapshot(fresh_db, rows_of=("schemagate_history",))
    capsys.readouterr()
    # 000027's down file is empty: there is no undo, so nothing may be recorded as undone
    assert run("undo", "--migrations", str(history), "--database-url", fresh_db, "--yes") == 1
    assert "no undo file for version 27" in capsys.readouterr().err
    assert schema_snapshot(fresh_db, rows_of=("schemagate_history",)) == before


def test_an_unguarded_statement_on_golang_migrates_table_fails_on_a_fresh_database_leaving_it_as_it_was(
    history: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """schemagate never creates golang-migrate's table, so what needs it fails where golang-migrate never
    ran, with the file and line, after the migrations before it."""
    grant = history / "000017_grant_monitoring_read.up.sql"
    grant.write_text(
        "BEGIN;\nGRANT SELECT ON TABLE shipments TO pg_monitor;\nGRANT SELECT ON TABLE schema_migrations TO pg_monitor;\nCOMMIT;\n"
    )
    assert run("apply", "--migrations", str(history), "--database-url", fresh_db, "--yes") == 1
    err = capsys.readouterr().err
    assert (
        "000017_grant_monitoring_read.up.sql:3:" in err
        and 'relation "schema_migrations" does not exist' in err
    )
    conn = psycopg2.connect(fresh_db)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT max(version::int), count(*) FROM schemagate_history WHERE success")
            assert cur.fetchone() == (16, 16)
            cur.execute("SELECT has_table_privilege('pg_monitor', 'shipments', 'SELECT')")
            assert cur.fetchone() == (False,)  # the file's first statement was rolled back with it
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("up", "passes"),
    [
        ("BEGIN;\nALTER TABLE shipments ADD COLUMN notes TEXT;\nCOMMIT;\n", True),
        ("BEGIN;\nCREATE INDEX shipments_reference_idx ON shipments (reference);\nCOMMIT;\n", False),
    ],
)
def test_a_branch_adding_one_migration_made_by_new_is_judged_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, up: str, passes: bool
) -> None:
    from tests.git_project import commit_all, git, project_on_main
    from validator.validate import run_validation

    root = tmp_path / "service"
    history = golang_migrate_fleet.write(root / golang_migrate_fleet.ROOT)
    project_on_main(root, golang_migrate_fleet.ROOT)
    git(root, "checkout", "-qb", "feature/notes")
    monkeypatch.chdir(root)
    path = create_migration(history, ["add", "shipments", "notes"], now=NOW)
    path.write_text(path.read_text() + up)
    down = history / path.name.replace(".up.sql", ".down.sql")
    down.write_text(
        down.read_text()
        + "BEGIN;\nALTER TABLE shipments DROP COLUMN IF EXISTS notes;\nDROP INDEX IF EXISTS shipments_reference_idx;\nCOMMIT;\n"
    )
    commit_all(root, "shipment notes")

    result = run_validation(load_config(root), base_ref="main", bundle_dir=root / "bundle")

    errors = [f for f in result.findings if f.severity == "error"]
    if passes:
        assert result.exit_code == 0, [f"{f.location} {f.rule}" for f in errors]
        manifest = load_bundle(root / "bundle").manifest
        assert {e.file for e in manifest.migrations} >= {path.name, down.name}
        assert len(manifest.migrations) == 28 + 24 + 2  # ups, downs holding SQL, the new pair
    else:
        assert result.exit_code == 1
        assert {f.file for f in errors} == {path.name}
        assert "require-concurrent-index-creation" in {f.rule for f in errors}
        assert not (root / "bundle" / "manifest.json").exists()
