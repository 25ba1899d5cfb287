"""The Drizzle layout on a realistic drizzle-kit history (tests/histories/drizzle_helpdesk.py):
detection, versions and order from the journal, the orphan, statement breakpoints, `schemagate new`,
apply (the same schema as psql and as drizzle-orm's own migrator), bundles, undo, and malformed
journals."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest

from executor import layouts
from executor.bundle import load_bundle, write_bundle
from executor.headers import split_statements
from executor.history import history_exists, read_history
from executor.layouts import MappingTree
from executor.layouts.drizzle import BREAKPOINT, JOURNAL, Drizzle, drizzle_hash
from executor.settings import ExecutorSettings
from schemagate.cli import main
from schemagate.cmd_new import create_migration
from tests.conftest import REPO_ROOT, temporary_database
from tests.drizzle.migrator import drizzle_migrate, drizzle_rows, install
from tests.helpers import fetch_value, version_text
from tests.histories import drizzle_helpdesk, flyway_billing
from tests.schema_snapshot import psql_run, schema_snapshot
from validator.config import load_config
from validator.discovery import DirectoryTree
from validator.structural import bundle_from_directory, check_structure

NOW = datetime(2026, 11, 21, 23, 58, 7, tzinfo=UTC)
SETTINGS = ExecutorSettings()
# the rows the seed and backfill migrations write, without the columns that hold now()
DATA_TABLES = (
    '(SELECT "id", "name", "slug" FROM "organizations") o',
    '(SELECT "id", "email", "name" FROM "users") u',
    '"memberships"',
    '"sla_policies"',
    '(SELECT "id", "ticket_id", "kind", "actor_id" FROM "ticket_events") e',
)
STRUCTURAL_FAMILIES = ("naming", "order", "syntax", "integrity", "parse")


@pytest.fixture(scope="session")
def drizzle_orm() -> Path:
    """drizzle-orm and pg from npm (installed once into a cache outside the repository)."""
    return install()


@pytest.fixture
def helpdesk(tmp_path: Path) -> Path:
    return drizzle_helpdesk.write(tmp_path / "drizzle")


def schema_of(url: str, rows_of: tuple[str, ...] = DATA_TABLES) -> dict[str, list[tuple]]:
    """The schema without drizzle-orm's own schema ``drizzle`` (its history, not the app's)."""
    snapshot = schema_snapshot(url, rows_of=rows_of)
    snapshot["schemas"] = [s for s in snapshot["schemas"] if s != ("drizzle",)]
    return snapshot


def structure(root: Path):
    return check_structure(load_config(root.parent, migrations=root))


def run(*args: str) -> int:
    return main(list(args))


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.test", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


# -- resolution ------------------------------------------------------------------------------------


def test_the_journal_gives_order_names_and_versions(helpdesk: Path) -> None:
    resolution = layouts.detect(DirectoryTree(helpdesk))
    assert resolution.layout == "drizzle"
    journal = json.loads((helpdesk / JOURNAL).read_text())
    assert [m.rel for m in resolution.migrations] == [f"{e['tag']}.sql" for e in journal["entries"]]
    assert [version_text(m) for m in resolution.migrations] == [f"{i:04d}" for i in range(32)]
    assert resolution.migrations[0].name.description == "sharp the hood"
    assert resolution.migrations[21].name.description == "default sla policies"
    assert JOURNAL in resolution.support_files and "meta/0031_snapshot.json" in resolution.support_files
    assert all(not m.rel.startswith("meta/") for m in resolution.migrations)


def test_validate_finds_no_structural_error_and_warns_about_the_orphan(helpdesk: Path) -> None:
    result = structure(helpdesk)
    assert result.layout == "drizzle" and len(result.files) == 32
    assert [
        f.rule for f in result.findings if f.family in STRUCTURAL_FAMILIES and f.severity == "error"
    ] == []
    (orphan,) = [f for f in result.findings if f.file == drizzle_helpdesk.ORPHAN[0]]
    assert (orphan.severity, orphan.rule) == ("warning", "drizzle-not-in-journal")
    assert "not listed in meta/_journal.json" in orphan.message and "never runs it" in orphan.message
    assert drizzle_helpdesk.ORPHAN[0] not in [f.rel for f in result.files]


def test_validate_cli_reports_no_structural_error_and_the_orphan_warning(
    helpdesk: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(helpdesk.parent)
    for var in [v for v in os.environ if v.startswith("CODEBUILD_")]:
        monkeypatch.delenv(var)
    reports = helpdesk.parent / "reports"
    code = run("validate", "--migrations", str(helpdesk), "--no-lint", "--reports", str(reports))
    capsys.readouterr()
    findings = json.loads((reports / "report.json").read_text())["findings"]
    assert [f for f in findings if f["family"] in STRUCTURAL_FAMILIES and f["severity"] == "error"] == []
    (orphan,) = [f for f in findings if f["rule"] == "drizzle-not-in-journal"]
    assert orphan["file"] == "0017_lucky_thor.sql" and orphan["docs"].endswith("docs/layouts/drizzle.md")
    # the exit code is not asserted here: without a base ref the safety rules still judge every old
    # file until accepted history lands (branch `gate`); the branch test below covers the gate
    assert code in (0, 1)


def test_detection_does_not_take_other_layouts(tmp_path: Path) -> None:
    flyway = flyway_billing.write(tmp_path / "flyway")
    assert layouts.detect(DirectoryTree(flyway)).layout == "flyway"
    assert layouts.detect(DirectoryTree(REPO_ROOT / "migrations")).layout != "drizzle"
    # numbered files without drizzle-kit's meta/ are not Drizzle's
    plain = MappingTree({"0001_init.sql": b"select 1;", "0002_next.sql": b"select 2;"})
    assert Drizzle().resolve(plain).migration_like <= 2
    assert layouts.detect(plain).layout != "drizzle"


def test_snapshots_without_a_journal_are_a_drizzle_folder_that_lost_its_journal(helpdesk: Path) -> None:
    (helpdesk / JOURNAL).unlink()
    result = structure(helpdesk)
    assert result.layout == "drizzle"
    (problem,) = [f for f in result.findings if f.severity == "error"]
    assert problem.file == JOURNAL and "journal is missing" in problem.message
    assert "restore it from version control" in problem.help


@pytest.mark.parametrize(
    ("journal", "expected"),
    [
        ('{"version": "7", "dialect": "postgresql", "entries": [\n  {"idx": 0,}\n]}', "not valid JSON"),
        ('{"version": "5", "dialect": "mysql", "entries": []}', "dialect is 'mysql'"),
        ('["0000_init"]', 'a JSON object with an "entries" list'),
        (
            '{"dialect": "postgresql", "entries": [{"idx": 0, "when": 1, "tag": "0000_init"}, '
            '{"idx": 0, "when": 2, "tag": "0001_next"}]}',
            "has idx 0, not greater than the idx 0",
        ),
        (
            '{"dialect": "postgresql", "entries": [{"idx": 0, "when": "soon", "tag": "0000_init"}]}',
            "when 'soon'",
        ),
        ('{"dialect": "postgresql", "entries": [{"idx": 0, "when": 1}]}', "has no tag"),
        ('{"dialect": "postgresql", "entries": [{"idx": 0, "when": 1, "tag": "../0000_init"}]}', "leads out"),
    ],
)
def test_a_malformed_journal_is_an_error_naming_the_journal(journal: str, expected: str) -> None:
    tree = MappingTree(
        {JOURNAL: journal.encode(), "0000_init.sql": b"select 1;", "0001_next.sql": b"select 2;"}
    )
    resolution = Drizzle().resolve(tree)
    assert resolution.migrations == []
    (problem,) = resolution.problems
    assert (problem.rel, problem.severity, problem.rule) == (JOURNAL, "error", "drizzle-journal")
    assert problem.message is not None
    assert expected in problem.message and problem.message.startswith("meta/_journal.json: ")
    if expected == "not valid JSON":
        assert "line 2, column 13" in problem.message


def test_a_malformed_journal_stops_apply_and_leaves_the_database_as_it_was(
    helpdesk: Path, fresh_db: str, capsys
) -> None:
    (helpdesk / JOURNAL).write_text((helpdesk / JOURNAL).read_text().replace('"idx": 3,', '"idx": 1,'))
    assert run("apply", "--migrations", str(helpdesk), "--database-url", fresh_db, "--yes") == 1
    err = capsys.readouterr().err
    assert "meta/_journal.json" in err and "drizzle-journal" in err and "idx 1" in err
    conn = psycopg2.connect(fresh_db)
    try:
        assert not history_exists(conn, SETTINGS)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_class WHERE relname = 'organizations'")
            assert fetch_value(cur) == 0
    finally:
        conn.close()


def test_a_journal_entry_without_its_file_is_an_error(helpdesk: Path) -> None:
    (helpdesk / "0012_tickets_updated_at.sql").unlink()
    result = structure(helpdesk)
    (missing,) = [f for f in result.findings if f.severity == "error"]
    assert (missing.file, missing.rule) == ("0012_tickets_updated_at.sql", "drizzle-missing-file")
    assert "lists 0012_tickets_updated_at (idx 12)" in missing.message
    assert "drizzle-kit drop" in missing.help
    assert "0012_tickets_updated_at.sql" not in [f.rel for f in result.files]


def test_a_when_that_does_not_increase_is_a_warning(helpdesk: Path) -> None:
    data = json.loads((helpdesk / JOURNAL).read_text())
    data["entries"][20]["when"] = data["entries"][19]["when"] - 1000  # a merge kept an older `when`
    (helpdesk / JOURNAL).write_text(json.dumps(data, indent=2))
    result = structure(helpdesk)
    (late,) = [f for f in result.findings if f.rule == "drizzle-journal-when"]
    assert late.severity == "warning" and late.file == JOURNAL
    assert "would skip 0020_famous_quasar on every database that already applied 0019_billing_schema" in (
        late.message
    )
    assert [f for f in result.findings if f.severity == "error"] == []


def test_any_prefix_mode_orders_by_the_journal() -> None:
    # prefix "timestamp", then "unix", then "none": drizzle-kit's tags, in the journal's order
    tags = ["20240311093000_init", "1710149400_add_users", "_add_posts"]
    journal = {
        "version": "7",
        "dialect": "postgresql",
        "entries": [
            {"idx": i, "version": "7", "when": 1710149400000 + i, "tag": t, "breakpoints": True}
            for i, t in enumerate(tags)
        ],
    }
    files = {JOURNAL: json.dumps(journal, indent=2).encode()}
    files.update({f"{t}.sql": b"select 1;" for t in tags})
    resolution = Drizzle().resolve(MappingTree(files))
    assert [(m.rel, version_text(m), m.name.description) for m in resolution.migrations] == [
        ("20240311093000_init.sql", "0000", "init"),
        ("1710149400_add_users.sql", "0001", "add users"),
        ("_add_posts.sql", "0002", "add posts"),
    ]


# -- statements ------------------------------------------------------------------------------------


def drizzle_pieces(text: str) -> list[str]:
    """What drizzle-orm sends: the file split at the marker, empty pieces dropped (PostgreSQL runs them
    as empty queries)."""
    return [p.strip() for p in text.split(BREAKPOINT) if p.strip()]


def test_breakpoints_change_nothing_and_validation_sees_the_statements_drizzle_sends(helpdesk: Path) -> None:
    bundle = bundle_from_directory(load_config(helpdesk.parent, migrations=helpdesk))
    result = structure(helpdesk)
    texts = {mf.rel: mf.text for mf in result.files}
    for entry in bundle.manifest.versioned:
        raw = (helpdesk / entry.file).read_text()
        executed = [s.text.strip() for s in split_statements(bundle.sql(entry))]
        validated = [s.text.strip() for s in split_statements(texts[entry.file])]
        assert executed == validated, entry.file
        # every piece of drizzle-kit's SQL ends with ';': the marker is a comment and changes nothing
        assert bundle.sql(entry) == raw.replace("\r\n", "\n"), entry.file
        assert [re.sub(r"^(-- .*\n)+", "", s) for s in executed] == [
            re.sub(r"^(-- .*\n)+", "", p) for p in drizzle_pieces(raw)
        ], entry.file


UNTERMINATED = """\
-- Custom SQL migration file, put your code below! --
CREATE TABLE "kb_articles" ("id" serial PRIMARY KEY, "title" text NOT NULL)
--> statement-breakpoint
CREATE TABLE "kb_links" ("article_id" integer NOT NULL REFERENCES "kb_articles" ("id"))
--> statement-breakpoint
INSERT INTO "kb_articles" ("title") VALUES ('Welcome');--> statement-breakpoint SELECT 1
"""


def test_a_piece_without_semicolon_runs_as_drizzle_runs_it(
    tmp_path: Path, fresh_db: str, pg_admin_url: str, drizzle_orm: Path
) -> None:
    root = tmp_path / "drizzle"
    journal = {
        "version": "7",
        "dialect": "postgresql",
        "entries": [{"idx": 0, "version": "7", "when": 1710149400000, "tag": "0000_kb", "breakpoints": True}],
    }
    (root / "meta").mkdir(parents=True)
    (root / JOURNAL).write_text(json.dumps(journal, indent=2))
    (root / "0000_kb.sql").write_text(UNTERMINATED)
    layout = Drizzle()
    text = layout.section_text(UNTERMINATED, None)
    assert text.count("\n") == UNTERMINATED.count("\n") and len(text) == len(UNTERMINATED)
    assert [s.words[:2] for s in split_statements(text)] == [
        ("create", "table"),
        ("create", "table"),
        ("insert", "into"),
        ("select",),
    ]
    assert structure(root).findings == []
    assert run("apply", "--migrations", str(root), "--database-url", fresh_db, "--yes") == 0
    with temporary_database(pg_admin_url) as by_drizzle:
        drizzle_migrate(drizzle_orm, by_drizzle, root)
        assert schema_of(fresh_db, ('"kb_articles"',)) == schema_of(by_drizzle, ('"kb_articles"',))


# -- apply -----------------------------------------------------------------------------------------


def test_apply_builds_the_schema_psql_and_drizzle_orm_build(
    helpdesk: Path, fresh_db: str, pg_admin_url: str, drizzle_orm: Path, capsys
) -> None:
    assert run("apply", "--migrations", str(helpdesk), "--database-url", fresh_db, "--yes") == 0
    assert "applied 32 migrations" in capsys.readouterr().out
    conn = psycopg2.connect(fresh_db)
    try:
        rows = read_history(conn, SETTINGS)
    finally:
        conn.close()
    assert [(r.version, r.script) for r in rows] == [
        (f"{i:04d}", rel) for i, rel in enumerate(drizzle_helpdesk.files_in_order())
    ]
    applied = schema_of(fresh_db)
    assert ("billing", "invoices", "r", "p") in applied["relations"]
    assert any("on_hold" in labels for _, _, labels in applied["enums"])
    with temporary_database(pg_admin_url) as by_psql:
        psql_run(by_psql, [helpdesk / rel for rel in drizzle_helpdesk.files_in_order()])
        assert schema_of(by_psql) == applied
    with temporary_database(pg_admin_url) as by_drizzle:
        drizzle_migrate(drizzle_orm, by_drizzle, helpdesk)
        assert len(drizzle_rows(by_drizzle)) == 32
        assert schema_of(by_drizzle) == applied


def test_a_bundle_round_trips_and_undo_refuses_without_down_scripts(
    helpdesk: Path, fresh_db: str, tmp_path: Path, capsys
) -> None:
    bundle = bundle_from_directory(load_config(helpdesk.parent, migrations=helpdesk))
    write_bundle(bundle, tmp_path / "bundle")
    loaded = load_bundle(tmp_path / "bundle")
    assert loaded.manifest.layout == "drizzle"
    assert [e.file for e in loaded.manifest.migrations] == drizzle_helpdesk.files_in_order()
    assert all(loaded.sql(e) == bundle.sql(e) for e in loaded.manifest.migrations)
    assert run("apply", "--bundle", str(tmp_path / "bundle"), "--database-url", fresh_db, "--yes") == 0
    before = schema_of(fresh_db)
    capsys.readouterr()
    # drizzle-kit writes no down migrations: undo has nothing to run, and says so
    assert run("undo", "--bundle", str(tmp_path / "bundle"), "--database-url", fresh_db, "--yes") == 1
    err = capsys.readouterr().err
    assert "no undo file for version 0031" in err and "undo-target" in err
    assert schema_of(fresh_db) == before


# -- schemagate new --------------------------------------------------------------------------------


def test_new_writes_the_next_file_its_journal_entry_and_snapshot_and_drizzle_orm_runs_it(
    helpdesk: Path, fresh_db: str, drizzle_orm: Path, monkeypatch, capsys
) -> None:
    before = (helpdesk / JOURNAL).read_text()
    monkeypatch.chdir(helpdesk.parent)
    assert run("new", "--migrations", str(helpdesk), "add", "ticket", "locale") == 0
    path = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert path == helpdesk / "0032_add_ticket_locale.sql"
    # drizzle-orm splits at the marker wherever it is, comments included: the header must not hold it
    assert BREAKPOINT not in path.read_text()
    after = (helpdesk / JOURNAL).read_text()
    journal = json.loads(after)
    old = json.loads(before)
    assert journal["entries"][:-1] == old["entries"]
    entry = journal["entries"][-1]
    assert list(entry) == ["idx", "version", "when", "tag", "breakpoints"]
    assert (entry["idx"], entry["tag"], entry["version"], entry["breakpoints"]) == (
        32,
        "0032_add_ticket_locale",
        "7",
        True,
    )
    assert entry["when"] > old["entries"][-1]["when"]
    assert after == json.dumps(journal, indent=2)  # JSON.stringify(journal, null, 2), as drizzle-kit
    assert after.startswith(before[: before.rindex("}\n  ]")])  # the old entries are kept byte for byte
    snapshot = json.loads((helpdesk / "meta" / "0032_snapshot.json").read_text())
    previous = json.loads((helpdesk / "meta" / "0031_snapshot.json").read_text())
    assert snapshot["prevId"] == previous["id"] and snapshot["id"] != previous["id"]
    assert {k: v for k, v in snapshot.items() if k not in ("id", "prevId")} == {
        k: v for k, v in previous.items() if k not in ("id", "prevId")
    }

    path.write_text(path.read_text() + 'ALTER TABLE "tickets" ADD COLUMN "locale" varchar(16);\n')
    result = structure(helpdesk)
    assert (
        result.files[-1].rel == "0032_add_ticket_locale.sql" and version_text(result.files[-1].name) == "0032"
    )
    # drizzle-orm reads the journal `schemagate new` wrote and runs the new file with the others
    drizzle_migrate(drizzle_orm, fresh_db, helpdesk)
    rows = drizzle_rows(fresh_db)
    assert len(rows) == 33 and rows[-1][1:] == (drizzle_hash(path.read_bytes()), entry["when"])


@pytest.mark.parametrize(
    ("last_tag", "expected"),
    [
        ("0007_brave_wolverine", "0008_add_x.sql"),
        ("20240311093000_init", "20261121235807_add_x.sql"),
        ("1710149400_init", f"{int(NOW.timestamp())}_add_x.sql"),
        ("_init", "_add_x.sql"),
    ],
)
def test_new_follows_the_prefix_mode_of_the_last_tag(tmp_path: Path, last_tag: str, expected: str) -> None:
    root = tmp_path / "drizzle"
    (root / "meta").mkdir(parents=True)
    journal = {
        "version": "7",
        "dialect": "postgresql",
        "entries": [{"idx": 7, "version": "7", "when": 1710149400000, "tag": last_tag, "breakpoints": True}],
    }
    (root / JOURNAL).write_text(json.dumps(journal, indent=2) + "\n")
    (root / f"{last_tag}.sql").write_text("select 1;")
    path = create_migration(root, ["add", "x"], now=NOW, layout="drizzle")
    assert path.name == expected
    written = (root / JOURNAL).read_text()
    assert written.endswith("}\n")  # a journal that ends with a newline keeps it
    assert json.loads(written)["entries"][-1] == {
        "idx": 8,
        "version": "7",
        "when": int(NOW.timestamp() * 1000),
        "tag": expected[: -len(".sql")],
        "breakpoints": True,
    }


def test_new_refuses_a_broken_journal_and_writes_nothing(helpdesk: Path) -> None:
    (helpdesk / JOURNAL).write_text("{")
    before = sorted(p.name for p in helpdesk.rglob("*"))
    with pytest.raises(Exception, match="cannot take a new entry: it is not valid JSON"):
        create_migration(helpdesk, ["add", "x"], now=NOW, layout="drizzle")
    assert sorted(p.name for p in helpdesk.rglob("*")) == before


@pytest.mark.parametrize(
    ("sql", "expected_code"),
    [
        ('ALTER TABLE "tickets" ADD COLUMN "locale" varchar(16);\n', 0),
        ('CREATE INDEX "tickets_subject_index" ON "tickets" USING btree ("subject");\n', 1),
    ],
    ids=["safe", "unsafe"],
)
def test_a_branch_that_adds_one_migration_made_by_new_is_judged_alone(
    helpdesk: Path, monkeypatch, capsys, sql: str, expected_code: int
) -> None:
    project = helpdesk.parent
    (project / "pyproject.toml").write_text('[tool.schemagate]\nmigrations = "drizzle"\n')
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "drizzle history")
    git(project, "checkout", "-qb", "feature")
    monkeypatch.chdir(project)
    for var in [v for v in os.environ if v.startswith("CODEBUILD_")]:
        monkeypatch.delenv(var)
    path = create_migration(helpdesk, ["ticket", "change"], now=NOW, layout="drizzle")
    path.write_text(path.read_text() + sql)
    git(project, "add", "-A")
    git(project, "commit", "-qm", "one migration")
    capsys.readouterr()
    code = main(["validate", "--base-ref", "main", "--no-lint", "--reports", "reports", "--bundle", "bundle"])
    out, err = capsys.readouterr()
    findings = json.loads((project / "reports" / "report.json").read_text())["findings"]
    errors = {f["file"] for f in findings if f["severity"] == "error"}
    assert code == expected_code, out + err
    if expected_code == 0:
        assert errors == set() and (project / "bundle" / "manifest.json").is_file()
    else:
        assert errors == {path.name} and not (project / "bundle" / "manifest.json").exists()
