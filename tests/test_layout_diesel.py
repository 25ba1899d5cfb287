"""The Diesel layout on a realistic history (tests/histories/diesel_registry.py): resolved as Diesel
resolves it, validated without a structural error, applied to the same schema as Diesel builds it
(tests/diesel_state.py), extended by `schemagate new`, bundled and undone; and every malformed file a
naming finding that names Diesel and shows a correct path."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest

from executor import layouts
from executor.bundle import load_bundle, write_bundle
from executor.errors import ConfigurationError
from executor.layouts.diesel import DOWN_TEMPLATE, UP_TEMPLATE, Diesel
from executor.naming import UNDO, VERSIONED
from schemagate.cli import main
from schemagate.cmd_new import create_migration
from tests.conftest import REPO_ROOT, temporary_database
from tests.diesel_state import diesel_migrate, diesel_order, diesel_version
from tests.helpers import fetch_value, version_of, version_text
from tests.histories import diesel_registry, flyway_billing, prisma_scheduling
from tests.history_checks import feature_branch, run_in, structural_errors, validate_report
from tests.schema_snapshot import schema_snapshot
from validator.config import load_config
from validator.discovery import DirectoryTree, discover
from validator.structural import bundle_from_directory

NOW = datetime(2026, 11, 21, 23, 58, 7, tzinfo=UTC)
LATEST = "2024-05-21-080000_add_crates_trustpub_only"
CONCURRENT = "2022-06-07-090000_index_dependencies_crate_id"


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return diesel_registry.write(tmp_path / "migrations")


def history_scripts(url: str) -> list[tuple[str, str, str]]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version, type, script FROM schemagate_history ORDER BY installed_rank")
            return cur.fetchall()
    finally:
        conn.close()


def test_the_history_resolves_as_diesel_reads_it(registry: Path) -> None:
    found = discover(registry)
    assert found.layout == "diesel" and found.findings == []
    ups = [f for f in found.files if f.kind == VERSIONED]
    downs = [f for f in found.files if f.kind == UNDO]
    # every directory with an up.sql, in Diesel's order, its version the directory's digits
    assert [f.script_name for f in ups] == diesel_order(registry)
    assert [version_text(f.name) for f in ups] == [diesel_version(d) for d in diesel_order(registry)]
    assert version_text(ups[0].name) == "00000000000000" and ups[0].name.description == "diesel initial setup"
    assert (version_text(ups[1].name), version_text(ups[7].name)) == ("20170308140537", "20180111153012")
    # one migration was generated with --no-down
    assert len(downs) == len(ups) - 1
    assert "2019-01-07-162003_backfill_owner_kind/down.sql" not in {f.rel for f in downs}
    # metadata.toml: run_in_transaction = false for the up and the down script
    outside = {f.rel for f in found.files if f.layout_transactional is False}
    assert outside == {
        f"{d}/{s}"
        for d in (
            "2018-05-14-100402_index_version_downloads_unprocessed",
            CONCURRENT,
            "2024-03-04-141200_index_versions_created_at",
        )
        for s in ("up.sql", "down.sql")
    }
    assert sorted(found.support_files) == sorted(
        rel for rel in diesel_registry.FILES if rel.endswith("metadata.toml")
    )


def test_validate_reports_no_naming_order_syntax_or_integrity_error(registry: Path) -> None:
    _, report = validate_report(registry.parent, registry)
    assert structural_errors(report) == []
    assert report["summary"]["files"] == len([r for r in diesel_registry.FILES if r.endswith(".sql")])


@pytest.mark.slow
def test_apply_builds_the_schema_diesel_builds(
    fresh_db: str, pg_admin_url: str, registry: Path, capsys
) -> None:
    assert main(["apply", "--migrations", str(registry), "--database-url", fresh_db, "--yes"]) == 0
    assert "applied 30 migrations" in capsys.readouterr().out
    rows = history_scripts(fresh_db)
    assert [r[2] for r in rows] == diesel_order(registry)
    assert {r[1] for r in rows} == {"SQL"}
    with temporary_database(pg_admin_url) as by_diesel:
        diesel_migrate(by_diesel, registry)
        assert schema_snapshot(fresh_db, rows_of=("public.categories",)) == schema_snapshot(
            by_diesel, rows_of=("public.categories",)
        )
    # Diesel's helper really works: an UPDATE that leaves updated_at alone moves it
    conn = psycopg2.connect(fresh_db)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("INSERT INTO crates (name, updated_at) VALUES ('serde', '2000-01-01') RETURNING id")
        crate = fetch_value(cur)
        cur.execute("UPDATE crates SET description = 'x' WHERE id = %s RETURNING updated_at", (crate,))
        assert fetch_value(cur).year > 2000
    conn.close()


def test_new_creates_the_directory_diesel_generate_makes(registry: Path, capsys) -> None:
    path = create_migration(registry, ["add", "crate", "yank", "message"], now=NOW)
    assert path == registry / "2026-11-21-235807_add_crate_yank_message" / "up.sql"
    assert path.read_text() == UP_TEMPLATE
    assert (path.parent / "down.sql").read_text() == DOWN_TEMPLATE
    assert sorted(p.name for p in path.parent.iterdir()) == ["down.sql", "up.sql"]
    # the CLI detects the layout and prints the up.sql to write first
    assert run_in(registry.parent, "new", "--migrations", str(registry), "add", "readme", "path") == 0
    printed = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed.name == "up.sql" and printed.parent.name.endswith("_add_readme_path")
    assert (printed.parent / "down.sql").is_file()
    assert "-" in printed.parent.name.partition("_")[0]  # Diesel's YYYY-MM-DD-HHMMSS
    new = Diesel().resolve(DirectoryTree(registry))
    assert new.problems == [] and max(version_of(m) for m in new.migrations).text == diesel_version(
        printed.parent.name
    )


def test_new_follows_a_history_of_compact_timestamps(tmp_path: Path) -> None:
    compact = {rel: text for rel, text in diesel_registry.FILES.items() if rel[:1] in "0." or rel[4] != "-"}
    root = diesel_registry.write(tmp_path / "migrations", compact)
    path = create_migration(root, ["add", "crate", "badges"], now=NOW, layout="diesel")
    assert path.parent.name == "20261121235807_add_crate_badges"


def test_new_with_an_explicit_version(registry: Path) -> None:
    path = create_migration(registry, ["hotfix"], now=NOW, version="2025-01-01-000000")
    assert path.parent.name == "2025-01-01-000000_hotfix"
    with pytest.raises(ConfigurationError, match="already used"):
        create_migration(registry, ["again"], now=NOW, version="20250101000000")
    with pytest.raises(ConfigurationError, match="not a Diesel version"):
        create_migration(registry, ["bad"], now=NOW, version="v2")


def test_a_bundle_round_trips_and_undo_runs_the_latest_down_sql(
    fresh_db: str, registry: Path, tmp_path: Path, capsys
) -> None:
    bundle = bundle_from_directory(load_config(tmp_path, migrations=registry))
    loaded = load_bundle(write_bundle(bundle, tmp_path / "bundle").parent)
    assert loaded.manifest.layout == "diesel" and loaded.files == bundle.files
    entry = loaded.entry(f"{CONCURRENT}/up.sql")
    assert (entry.script, entry.version, entry.transactional) == (CONCURRENT, "20220607090000", False)
    assert loaded.entry(f"{CONCURRENT}/down.sql").kind == UNDO
    bundle_dir = str(tmp_path / "bundle")
    assert main(["apply", "--bundle", bundle_dir, "--database-url", fresh_db, "--yes"]) == 0
    assert main(["undo", "--bundle", bundle_dir, "--database-url", fresh_db, "--yes"]) == 0
    assert f"{LATEST}/down.sql" in capsys.readouterr().out
    assert history_scripts(fresh_db)[-1] == ("20240521080000", "UNDO", f"{LATEST}/down.sql")
    conn = psycopg2.connect(fresh_db)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'crates' "
            "AND column_name = 'trustpub_only'"
        )
        assert fetch_value(cur) == 0
    conn.close()
    # the undone migration is pending again, and only it
    assert main(["apply", "--bundle", bundle_dir, "--database-url", fresh_db, "--yes"]) == 0
    assert "applied 1 migration" in capsys.readouterr().out


def with_files(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize(
    ("files", "file", "words", "example"),
    [
        (  # a directory without up.sql
            {"2024-06-01-100000_add_teams_org/down.sql": "DROP TABLE x;\n"},
            "2024-06-01-100000_add_teams_org/down.sql",
            "has no up.sql",
            "2024-06-01-100000_add_teams_org/up.sql",
        ),
        (  # a typo for up.sql
            {"2024-06-01-100000_add_teams_org/upp.sql": "SELECT 1;\n"},
            "2024-06-01-100000_add_teams_org/upp.sql",
            "upp.sql is not a file Diesel runs",
            "2024-06-01-100000_add_teams_org/up.sql",
        ),
        (  # the right name in the wrong case
            {"2024-06-01-100000_add_teams_org/UP.SQL": "SELECT 1;\n"},
            "2024-06-01-100000_add_teams_org/UP.SQL",
            "has no up.sql",
            "2024-06-01-100000_add_teams_org/up.sql",
        ),
        (  # a directory name without a version
            {"add_teams_org/up.sql": "SELECT 1;\n"},
            "add_teams_org/up.sql",
            "does not start with a version",
            "2024-05-01-120000_add_teams_org/up.sql",
        ),
        (  # a hex sub-version with letters (the 11th `diesel migration generate` in one second)
            {"2024-06-01-100000-000a_add_teams_org/up.sql": "SELECT 1;\n"},
            "2024-06-01-100000-000a_add_teams_org/up.sql",
            "hexadecimal with letters",
            "2024-06-01-100000-0010_add_teams_org/up.sql",
        ),
        (  # up.sql at the top level, where Diesel never looks
            {"up.sql": "SELECT 1;\n"},
            "up.sql",
            "directly in the migrations directory is never run by Diesel",
            "2024-05-01-120000_describe_the_change/up.sql",
        ),
        (  # a script Diesel does not run, next to up.sql and down.sql
            {"2024-06-01-100000_x/up.sql": "SELECT 1;\n", "2024-06-01-100000_x/down.sql": "SELECT 1;\n",
             "2024-06-01-100000_x/seed.sql": "SELECT 1;\n"},
            "2024-06-01-100000_x/seed.sql",
            "Diesel runs only up.sql and down.sql",
            None,
        ),
        (  # a typo for down.sql
            {"2024-06-01-100000_x/up.sql": "SELECT 1;\n", "2024-06-01-100000_x/donw.sql": "SELECT 1;\n"},
            "2024-06-01-100000_x/donw.sql",
            "donw.sql is never run",
            "2024-06-01-100000_x/down.sql",
        ),
        (  # a file nested deeper than a migration directory
            {"2024-06-01-100000_x/up.sql": "SELECT 1;\n", "2024-06-01-100000_x/old/up.sql": "SELECT 1;\n"},
            "2024-06-01-100000_x/old/up.sql",
            "only the files directly inside a migration directory",
            None,
        ),
        (  # `diesel migration generate` now adds a hex sub-version; 18 digits sort before 14 as numbers
            {"2024-06-01-100000-0001_x/up.sql": "SELECT 1;\n", "2025-01-01-000000_y/up.sql": "SELECT 1;\n"},
            "2025-01-01-000000_y/up.sql",
            "orders migrations by version as text",
            "202501010000000000_y/up.sql",
        ),
    ],
)  # fmt: skip
def test_malformed_files_are_naming_errors_that_name_diesel(
    registry: Path, files: dict[str, str], file: str, words: str, example: str | None
) -> None:
    found = discover(with_files(registry, files))
    assert found.layout == "diesel"  # the rest of the history still makes it Diesel
    problems = [f for f in found.findings if f.file == file]
    assert len(problems) == 1, found.findings
    finding = problems[0]
    assert finding.family == "naming" and finding.severity == "error"
    assert f"{file} is not a valid Diesel migration" in finding.message and words in finding.message
    assert finding.docs.endswith("docs/layouts/diesel.md")
    if example:
        assert f"rename it to {example}" in finding.help
    else:
        assert "delete it" in finding.help


def test_a_malformed_file_fails_validate_and_is_named_in_the_report(registry: Path) -> None:
    with_files(
        registry, {"2024-06-01-100000_add_teams_org/upp.sql": "ALTER TABLE teams ADD COLUMN org text;\n"}
    )
    code, report = validate_report(registry.parent, registry, "--no-lint")  # a structural check
    assert code == 1
    [finding] = structural_errors(report)
    assert (finding["rule"], finding["file"]) == (
        "naming-malformed",
        "2024-06-01-100000_add_teams_org/upp.sql",
    )
    assert "2024-06-01-100000_add_teams_org/up.sql" in finding["help"]


@pytest.mark.parametrize(
    ("metadata", "severity", "transactional", "words"),
    [
        ("run_in_transaction = false\n", None, False, None),
        ("run_in_transaction = true\n", None, None, None),
        ("# only a comment\n", "warning", False, "no run_in_transaction key"),
        ('run_in_transaction = "false"\n', "error", None, "not true or false"),
        ("run_in_transaction = no\n", "error", None, "not valid TOML"),
    ],
)
def test_metadata_toml_is_read_as_diesel_reads_it(
    tmp_path: Path, metadata: str, severity: str | None, transactional: bool | None, words: str | None
) -> None:
    root = with_files(
        tmp_path / "migrations",
        {
            "2024-06-01-100000_index_x/up.sql": "CREATE INDEX CONCURRENTLY x_idx ON x (id);\n",
            "2024-06-01-100000_index_x/metadata.toml": metadata,
        },
    )
    found = discover(root)
    [up] = found.files
    assert up.layout_transactional is transactional
    if severity is None:
        assert found.findings == []
    else:
        [finding] = found.findings
        assert (finding.file, finding.severity) == ("2024-06-01-100000_index_x/metadata.toml", severity)
        assert words is not None and words in finding.message and "run_in_transaction = " in finding.help


def test_diesel_is_detected_for_its_history_and_never_for_the_others(tmp_path: Path) -> None:
    diesel = diesel_registry.write(tmp_path / "diesel")
    assert layouts.detect(DirectoryTree(diesel)).layout == "diesel"
    flyway = flyway_billing.write(tmp_path / "flyway")
    assert layouts.detect(DirectoryTree(flyway)).layout == "flyway"
    assert layouts.detect(DirectoryTree(REPO_ROOT / "migrations")).layout == "flyway"
    # Diesel itself finds no migration in the other tools' layouts
    others = {
        "flyway": flyway,
        "prisma": prisma_scheduling.write(tmp_path / "prisma"),
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
                "meta/0000_snapshot.json": "{}",
            },
        ),
    }
    for name, root in others.items():
        resolution = Diesel().resolve(DirectoryTree(root))
        assert resolution.migrations == [], name
    assert Diesel().resolve(DirectoryTree(REPO_ROOT / "migrations")).migrations == []


def test_a_branch_that_adds_one_migration_made_by_new_is_judged_alone(tmp_path: Path, capsys) -> None:
    """The old files have safety findings (down scripts that drop, integer keys...): with a base ref
    only the new file is judged."""
    project = tmp_path / "registry"
    migrations = feature_branch(project, diesel_registry.write, "migrations")
    assert run_in(project, "new", "--migrations", str(migrations), "add", "crates", "homepage", "index") == 0
    up = Path(capsys.readouterr().out.strip().splitlines()[-1])
    up.write_text(UP_TEMPLATE + "ALTER TABLE crates ADD COLUMN readme_path TEXT;\n")
    (up.parent / "down.sql").write_text(DOWN_TEMPLATE + "ALTER TABLE crates DROP COLUMN readme_path;\n")
    code, report = validate_report(project, migrations, "--base-ref", "main", "--bundle", str(tmp_path / "b"))
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert (code, errors) == (0, [])
    assert (tmp_path / "b" / "manifest.json").is_file()

    # an unsafe new migration fails, with every error in the new file
    up.write_text(UP_TEMPLATE + "CREATE INDEX crates_homepage_idx ON crates (homepage);\n")
    code, report = validate_report(project, migrations, "--base-ref", "main")
    errors = [f for f in report["findings"] if f["severity"] == "error"]
    assert code == 1 and errors
    assert {f["file"] for f in errors} == {up.relative_to(migrations).as_posix()}
