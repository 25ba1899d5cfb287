"""The dbmate layout (executor/layouts/dbmate.py) on a realistic history (tests/histories/dbmate_bookings.py):
sections, `transaction:false`, the naming findings, structural checks, and, with the real dbmate from
npm, that schemagate and dbmate build the same schema from the same directory, that a bundle round
trips with two entries for one file, and that `undo` runs the down section alone, as `dbmate rollback`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest

from executor.bundle import load_bundle, write_bundle
from executor.layouts import DOWN, UP, MappingTree, detect, get
from executor.naming import UNDO, VERSIONED
from schemagate.cli import main
from schemagate.cmd_new import create_migration
from tests.conftest import temporary_database
from tests.dbmate_tool import dbmate_binary, run_dbmate
from tests.helpers import version_text
from tests.histories import dbmate_bookings, flyway_billing, golang_migrate_fleet
from tests.schema_snapshot import psql_run_sql, schema_snapshot
from validator.config import load_config
from validator.discovery import discover
from validator.structural import bundle_from_directory, check_structure

STRUCTURAL = ("naming", "order", "syntax", "integrity")
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
LAST = "20240305100000_services_price_numeric.sql"


def run(*args: str) -> int:
    return main(list(args))


@pytest.fixture(scope="session")
def dbmate() -> Path:
    return dbmate_binary()


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return dbmate_bookings.write(tmp_path / dbmate_bookings.ROOT)


def tree_of(files: dict[str, str]) -> MappingTree:
    return MappingTree({rel: text.encode() for rel, text in files.items()})


def one_finding(history: Path, name: str, text: str):
    (history / name).write_text(text)
    found = discover(history)
    assert found.layout == "dbmate"
    [finding] = found.findings
    assert finding.file == name
    assert f"{name} is not a valid dbmate migration" in finding.message
    assert "dbmate.md" in finding.docs
    return finding


def test_one_file_is_two_migrations_sharing_file_and_checksum(history: Path) -> None:
    found = discover(history)
    assert found.layout == "dbmate"
    assert found.findings == []
    ups = [f for f in found.files if f.kind == VERSIONED]
    assert [f.rel for f in ups] == sorted(dbmate_bookings.FILES)
    assert version_text(ups[0].name) == "20230114093012"  # the leading digits, as dbmate stores them
    assert ups[0].name.description == "create organizations"
    by_key = {f.key: f for f in found.files}
    up, down = by_key[LAST], by_key[f"{LAST}#down"]
    assert (up.section, down.section) == (UP, DOWN)
    assert (up.kind, down.kind) == (VERSIONED, UNDO) and up.name.version == down.name.version
    assert up.rel == down.rel and up.checksum == down.checksum
    # each section is the file with the other section's lines left empty: line numbers stay the file's
    text = (history / LAST).read_text()
    assert (
        up.text is not None
        and down.text is not None
        and len(up.text.split("\n")) == len(down.text.split("\n")) == len(text.split("\n"))
    )
    assert up.text is not None and "add column price" in up.text and "drop column" not in up.text
    assert down.text is not None and "drop column price" in down.text and "add column" not in down.text
    assert (
        down.text is not None
        and down.text.split("\n")[6] == text.split("\n")[6] == "alter table services drop column price;"
    )
    # irreversible files (an empty down section) have no undo
    assert "20230404101010_backfill_members_joined_at.sql#down" not in by_key
    assert len(found.files) == len(ups) + 22


def test_transaction_false_on_a_section_runs_it_outside_a_transaction(history: Path) -> None:
    by_key = {f.key: f for f in discover(history).files}
    index = "20230301120000_index_bookings_customer.sql"
    assert by_key[index].layout_transactional is False
    assert by_key[f"{index}#down"].layout_transactional is False
    assert by_key[LAST].layout_transactional is None  # dbmate's default: a transaction
    assert by_key[index].manifest_entry().transactional is False


def test_detection_picks_dbmate_for_its_history_and_not_for_the_others() -> None:
    assert detect(tree_of(dbmate_bookings.FILES)).layout == "dbmate"
    dbmate = get("dbmate")
    assert dbmate.resolve(tree_of(golang_migrate_fleet.FILES)).migrations == []
    assert dbmate.resolve(tree_of(flyway_billing.FILES)).migrations == []
    assert detect(tree_of(flyway_billing.FILES)).layout == "flyway"


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        (
            "20240401000000_no_marker.sql",
            "alter table bookings add column x int;\n",
            "no '-- migrate:up' line",
        ),
        (
            "20240401000000_down_first.sql",
            "-- migrate:down\nselect 1;\n-- migrate:up\nselect 2;\n",
            "'-- migrate:down' (line 1) comes before '-- migrate:up' (line 3)",
        ),
        (
            "20240401000000_sql_first.sql",
            "-- adds x\nalter table bookings add column x int;\n-- migrate:up\nselect 2;\n-- migrate:down\n",
            "line 2 holds SQL before '-- migrate:up' (line 3)",
        ),
        (
            "20230114093012_same_version.sql",
            "-- migrate:up\nselect 1;\n-- migrate:down\n",
            "version 20230114093012 is also the version of 20230114093012_create_organizations.sql",
        ),
        ("20240401000000_upper.SQL", "-- migrate:up\nselect 1;\n-- migrate:down\n", "lower-case '.sql'"),
        (
            "add_index.sql",
            "-- migrate:up\nselect 1;\n-- migrate:down\n",
            "must start with the version digits",
        ),
    ],
)
def test_malformed_files_are_naming_errors_that_name_dbmate(
    history: Path, name: str, text: str, problem: str
) -> None:
    finding = one_finding(history, name, text)
    assert (finding.rule, finding.severity) == ("naming-malformed", "error")
    assert problem in finding.message


def test_file_name_order_that_differs_from_version_order_is_an_error(tmp_path: Path) -> None:
    for name in ("1_init.sql", "2_users.sql", "10_orders.sql"):
        (tmp_path / name).write_text("-- migrate:up\nselect 1;\n-- migrate:down\n")
    findings = discover(tmp_path).findings
    assert [(f.file, f.severity) for f in findings] == [("1_init.sql", "error"), ("2_users.sql", "error")]
    assert "dbmate applies files in name order, so it runs 10_orders.sql (version 10) before this one" in (
        findings[1].message
    )
    assert "rename it to 02_users.sql" in findings[1].help


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("-- migrate:up\nselect 1;\n", "no '-- migrate:down' line: dbmate 2 refuses such a file"),
        (
            "-- migrate:up transaction:False\nselect 1;\n-- migrate:down\n",
            "ignores the option 'transaction:False'",
        ),
        (
            "-- migrate:up transactions:false\nselect 1;\n-- migrate:down\n",
            "ignores the option 'transactions:false'",
        ),
    ],
)
def test_what_dbmate_would_run_differently_is_a_warning(history: Path, text: str, problem: str) -> None:
    finding = one_finding(history, "20240401000000_odd.sql", text)
    assert finding.severity == "warning" and problem in finding.message
    up = next(f for f in discover(history).files if f.key == "20240401000000_odd.sql")
    assert up.layout_transactional is None  # a transaction, as dbmate runs it


def test_the_history_has_no_naming_order_syntax_or_integrity_error(history: Path) -> None:
    result = check_structure(load_config(history.parent.parent, migrations=history))
    errors = [f for f in result.findings if f.family in STRUCTURAL and f.severity == "error"]
    assert errors == [], "\n".join(f"{f.location} {f.rule} {f.message}" for f in errors)
    down = next(p for p in result.parsed if p.key == f"{LAST}#down")
    assert [s.line for s in down.statements] == [7]  # the down section's statement, at its line in the file


def test_schemagate_and_dbmate_build_the_same_schema_from_the_same_directory(
    history: Path, dbmate: Path, fresh_db: str, pg_admin_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("apply", "--migrations", str(history), "--database-url", fresh_db, "--yes") == 0
    assert f"applied {len(dbmate_bookings.FILES)} migrations" in capsys.readouterr().out
    with temporary_database(pg_admin_url) as by_dbmate, temporary_database(pg_admin_url) as by_psql:
        run_dbmate(dbmate, by_dbmate, history, "up")
        assert schema_snapshot(fresh_db) == schema_snapshot(by_dbmate)
        # and psql running each up section, in dbmate's order, agrees
        for path, section in dbmate_bookings.up_sections(history):
            psql_run_sql(by_psql, section, name=path.name)
        assert schema_snapshot(by_psql) == schema_snapshot(by_dbmate)


def test_schemagate_new_writes_a_timestamped_file_with_both_markers(
    history: Path, dbmate: Path, fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = create_migration(history, ["add", "bookings", "room"], now=NOW)
    assert path.name == "20260304050607_add_bookings_room.sql"
    text = path.read_text()
    assert text.startswith("-- migrate:up\n") and "\n-- migrate:down\n" in text
    # dbmate reads the file schemagate made
    up = text.replace("-- migrate:down\n", "alter table bookings add column room text;\n-- migrate:down\n")
    path.write_text(
        up.replace("`dbmate rollback`).\n", "`dbmate rollback`).\nalter table bookings drop column room;\n")
    )
    run_dbmate(dbmate, fresh_db, history, "up")
    status = run_dbmate(dbmate, fresh_db, history, "status").stdout
    assert "[X] 20260304050607_add_bookings_room.sql" in status
    found = discover(history)
    assert found.findings == []
    assert {f.key for f in found.files} >= {path.name, f"{path.name}#down"}


def test_new_in_a_sequential_dbmate_directory_keeps_its_width(tmp_path: Path) -> None:
    for name in ("001_init.sql", "002_users.sql"):
        (tmp_path / name).write_text("-- migrate:up\nselect 1;\n-- migrate:down\n")
    assert create_migration(tmp_path, ["orders"], now=NOW).name == "003_orders.sql"
    assert (
        create_migration(tmp_path / "empty", ["init"], now=NOW, layout="dbmate").name
        == "20260304050607_init.sql"
    )


def test_a_bundle_holds_two_entries_for_one_file_and_round_trips(history: Path, tmp_path: Path) -> None:
    bundle = bundle_from_directory(load_config(tmp_path, migrations=history))
    write_bundle(bundle, tmp_path / "bundle")
    loaded = load_bundle(tmp_path / "bundle")
    assert loaded.manifest.layout == "dbmate" and loaded.bundle_sha256 == bundle.bundle_sha256
    entries = [e for e in loaded.manifest.migrations if e.file == LAST]
    assert [(e.kind, e.section, e.version) for e in entries] == [
        (VERSIONED, UP, "20240305100000"),
        (UNDO, DOWN, "20240305100000"),
    ]
    assert entries[0].sha256 == entries[1].sha256
    assert sorted(p.name for p in (tmp_path / "bundle" / "migrations").iterdir()) == sorted(
        dbmate_bookings.FILES
    )
    up, down = (loaded.sql(e) for e in entries)
    assert "add column price" in up and "drop column price" not in up
    assert "drop column price" in down and "add column price" not in down
    index = next(e for e in loaded.manifest.migrations if e.file.startswith("20230301120000"))
    assert index.transactional is False


def test_apply_runs_the_up_sections_only_and_undo_the_down_section_only_as_dbmate_rollback(
    history: Path, tmp_path: Path, dbmate: Path, fresh_db: str, pg_admin_url: str, capsys
) -> None:
    write_bundle(bundle_from_directory(load_config(tmp_path, migrations=history)), tmp_path / "bundle")
    assert run("apply", "--bundle", str(tmp_path / "bundle"), "--database-url", fresh_db, "--yes") == 0
    assert run("undo", "--bundle", str(tmp_path / "bundle"), "--database-url", fresh_db, "--yes") == 0
    capsys.readouterr()
    conn = psycopg2.connect(fresh_db)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT type, version, script FROM schemagate_history ORDER BY installed_rank DESC LIMIT 2"
            )
            assert cur.fetchall() == [("UNDO", "20240305100000", LAST), ("SQL", "20240305100000", LAST)]
    finally:
        conn.close()
    with temporary_database(pg_admin_url) as by_dbmate:
        run_dbmate(dbmate, by_dbmate, history, "up")
        run_dbmate(dbmate, by_dbmate, history, "rollback")
        assert schema_snapshot(fresh_db) == schema_snapshot(by_dbmate)
    # the version is pending again; apply runs the up section of that file alone
    assert run("apply", "--bundle", str(tmp_path / "bundle"), "--database-url", fresh_db, "--yes") == 0
    assert "applied 1 migration" in capsys.readouterr().out


def test_a_failing_up_section_leaves_the_database_as_it_was(history: Path, fresh_db: str, capsys) -> None:
    assert run("apply", "--migrations", str(history), "--database-url", fresh_db, "--yes") == 0
    before = schema_snapshot(fresh_db, rows_of=("schemagate_history",))
    (history / "20240401000000_broken.sql").write_text(
        "-- migrate:up\nalter table bookings add column room text;\nalter table no_such_table add column x int;\n"
        "\n-- migrate:down\nalter table bookings drop column room;\n"
    )
    capsys.readouterr()
    assert run("apply", "--migrations", str(history), "--database-url", fresh_db, "--yes") == 1
    err = capsys.readouterr().err
    assert "20240401000000_broken.sql" in err and ":3:" in err  # the line in the file, not in the section
    assert schema_snapshot(fresh_db, rows_of=("schemagate_history",)) == before


@pytest.mark.parametrize(
    ("up", "passes"),
    [
        ("alter table bookings add column room text;\n", True),
        ("create index bookings_room_idx on bookings (lower(cancel_reason));\n", False),
    ],
)
def test_a_branch_adding_one_migration_made_by_new_is_judged_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, up: str, passes: bool
) -> None:
    """Only what changed since the base ref is judged, and never a down section."""
    from tests.git_project import commit_all, git, project_on_main
    from validator.validate import run_validation

    root = tmp_path / "service"
    history = dbmate_bookings.write(root / dbmate_bookings.ROOT)
    project_on_main(root, dbmate_bookings.ROOT)
    git(root, "checkout", "-qb", "feature/rooms")
    monkeypatch.chdir(root)
    path = create_migration(history, ["add", "bookings", "room"], now=NOW)
    text = path.read_text().replace("-- migrate:down\n", up + "\n-- migrate:down\n")
    path.write_text(
        text + "drop index if exists bookings_room_idx;\nalter table bookings drop column if exists room;\n"
    )
    commit_all(root, "booking rooms")

    result = run_validation(load_config(root), base_ref="main", bundle_dir=root / "bundle")

    errors = [f for f in result.findings if f.severity == "error"]
    if passes:
        assert result.exit_code == 0, [f"{f.location} {f.rule}" for f in errors]
        entries = [e for e in load_bundle(root / "bundle").manifest.migrations if e.file == path.name]
        assert [(e.kind, e.section) for e in entries] == [(VERSIONED, UP), (UNDO, DOWN)]
    else:
        assert result.exit_code == 1
        assert {f.file for f in errors} == {path.name}
        assert {f.line for f in errors} == {text.split("\n").index(up.strip()) + 1}  # the up section's line
        assert not (root / "bundle" / "manifest.json").exists()
