"""What the gate judges: only what changed since the base ref, or what lies above accepted_history.

A history of forty real-looking migrations with old findings (tests/gate_history.py) in a real git
repository; the next migration is added the way a pull request adds it.  Every file is still
checked for naming, order, syntax and integrity; the safety rules, lint and the rehearsal judge
only the new one.  Down scripts are bundled but never judged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from executor.bundle import load_bundle
from schemagate.cli import main
from tests.gate_history import (
    HISTORY,
    NEW_CLEAN,
    NEW_UNSAFE,
    NEW_UNSAFE_ERRORS,
    PYPROJECT,
    commit_all,
    git,
    make_project,
    write_files,
)
from tests.helpers import fetch_value
from validator.config import load_config
from validator.validate import run_validation

REPO = Path(__file__).resolve().parent.parent
NO_CACHE = "\n[tool.schemagate.lint]\ncache = false\n"
UNDO_FILES = {name for name in HISTORY if name.startswith("U")}
FORWARD_FILES = set(HISTORY) - UNDO_FILES


def validate(root: Path, **kwargs):
    config = load_config(root)
    return run_validation(config, **kwargs)


def errors(result) -> list:
    return [f for f in result.findings if f.severity == "error"]


@pytest.fixture(autouse=True)
def no_codebuild(monkeypatch):
    for var in [v for v in os.environ if v.startswith("CODEBUILD_")]:
        monkeypatch.delenv(var)


def test_the_history_alone_fails_with_findings_in_many_old_files(tmp_path):
    """Without a base ref and without accepted_history every forward migration is judged."""
    root = make_project(tmp_path / "p", pyproject=PYPROJECT + NO_CACHE)
    result = validate(root)
    assert result.exit_code == 1
    assert len({f.file for f in errors(result)}) >= 10  # a dozen old files break today's rules
    assert result.lint_stats.files == len(FORWARD_FILES)  # down scripts are not linted
    judged = result.judgement
    assert judged.judged == FORWARD_FILES and judged.down_scripts == UNDO_FILES and not judged.accepted
    # a down script drops what its up script created, by design: no forward rule judges it
    assert not [f for f in result.findings if f.file in UNDO_FILES]
    report = result.report.summary()
    assert (report["judged"], report["accepted_history"], report["down_scripts"]) == (41, 0, 3)


def test_a_branch_adding_a_clean_migration_is_judged_alone(tmp_path):
    root = make_project(tmp_path / "p", pyproject=PYPROJECT + NO_CACHE)
    git(root, "checkout", "-qb", "feature/archive-tasks")
    write_files(root, NEW_CLEAN)
    commit_all(root, "archive tasks instead of deleting them")

    result = validate(root, base_ref="main", bundle_dir=root / "bundle", reports_dir=root / "reports")

    assert result.exit_code == 0, [f"{f.location} {f.rule}" for f in errors(result)]
    assert result.judgement.judged == set(NEW_CLEAN)
    assert result.judgement.accepted == set(HISTORY)
    assert not [f for f in result.findings if f.file in HISTORY]  # old findings are not reported again
    # lint ran on the new file only (the cache is off, so every linted file went to sqlfluff)
    assert (result.lint_stats.files, result.lint_stats.linted) == (1, 1)
    bundle = load_bundle(root / "bundle")  # every file is bundled, judged or not
    assert {m.file for m in bundle.manifest.migrations} == set(HISTORY) | set(NEW_CLEAN)
    summary = json.loads((root / "reports" / "report.json").read_text())["summary"]
    assert summary == {
        "files": 45,
        "errors": 0,
        "warnings": 0,
        "judged": 1,
        "accepted_history": 44,
        "down_scripts": 0,
    }
    md = (root / "reports" / "report.md").read_text()
    assert (
        "**1** judged by lint, safety rules and rehearsal; **44** accepted history (unchanged since main)"
        in md
    )


def test_a_branch_adding_an_unsafe_migration_fails_on_that_file_alone(tmp_path):
    root = make_project(tmp_path / "p")
    git(root, "checkout", "-qb", "feature/reviewers")
    write_files(root, NEW_UNSAFE)
    commit_all(root, "task reviewers")
    (new,) = NEW_UNSAFE

    result = validate(root, base_ref="main", bundle_dir=root / "bundle")

    assert result.exit_code == 1
    assert {f.file for f in errors(result)} == {new}
    assert {f.rule for f in errors(result)} == NEW_UNSAFE_ERRORS
    assert not (root / "bundle" / "manifest.json").exists()


def test_an_edited_old_migration_is_judged_and_refused(tmp_path):
    """Editing an applied file is an immutability error, and the edit itself is judged too."""
    root = make_project(tmp_path / "p")
    git(root, "checkout", "-qb", "feature/edit")
    path = root / "db/migrations/V033__users_add_last_seen.sql"
    path.write_text(path.read_text() + "CREATE INDEX users_last_seen_idx ON users (last_seen_at);\n")
    commit_all(root, "edit an applied migration")

    result = validate(root, base_ref="main")

    assert result.judgement.judged == {"V033__users_add_last_seen.sql"}
    rules = {(f.file, f.rule) for f in errors(result)}
    assert ("V033__users_add_last_seen.sql", "migration-modified") in rules
    assert ("V033__users_add_last_seen.sql", "require-concurrent-index-creation") in rules
    assert {f.file for f in errors(result)} == {"V033__users_add_last_seen.sql"}


def test_nothing_judged_starts_no_sqlfluff_at_all(tmp_path):
    """Compared with its own commit nothing is new: lint does not even import sqlfluff."""
    root = make_project(tmp_path / "p", pyproject=PYPROJECT + NO_CACHE)
    script = (
        "import json, sys\nfrom pathlib import Path\n"
        "from validator.config import load_config\n"
        "from validator.validate import run_validation\n"
        f"r = run_validation(load_config(Path({str(root)!r})), base_ref='HEAD')\n"
        "print(json.dumps({'exit': r.exit_code, 'judged': sorted(r.judgement.judged),\n"
        "  'lint': r.lint_stats is not None, 'sqlfluff': 'sqlfluff' in sys.modules,\n"
        "  'checks': r.report.checks, 'notes': r.report.notes}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["exit"] == 0 and out["judged"] == []
    assert out["lint"] is False and out["sqlfluff"] is False
    assert "lint" in out["checks"] and "lint: no file to lint (none is judged)" in out["notes"]


def test_down_scripts_are_bundled_but_neither_judged_nor_rehearsed(tmp_path, pg_admin_url):
    root = make_project(tmp_path / "p")
    git(root, "checkout", "-qb", "feature/with-undo")
    write_files(root, NEW_CLEAN)
    # what a down script does by design: drop what the up script added (ban-drop-column, forward)
    write_files(root, {"U041__add_tasks_archived_at.sql": "ALTER TABLE tasks DROP COLUMN archived_at;\n"})
    commit_all(root, "archive tasks, with its undo")

    result = validate(
        root, base_ref="main", rehearse=True, rehearsal_database_url=pg_admin_url, bundle_dir=root / "b"
    )

    assert result.exit_code == 0, [f"{f.location} {f.rule}" for f in errors(result)]
    assert result.judgement.down_scripts == {"U041__add_tasks_archived_at.sql"}
    assert not [f for f in result.findings if f.file == "U041__add_tasks_archived_at.sql"]
    (rehearsal,) = result.sections[1:]
    assert [m.file for m in rehearsal.migrations] == list(NEW_CLEAN)  # the down script never ran
    entries = {m.file: m.kind for m in load_bundle(root / "b").manifest.migrations}
    assert entries["U041__add_tasks_archived_at.sql"] == "undo"
    assert result.report.summary()["down_scripts"] == 1


# -- accepted_history: runs without a base ref -----------------------------------------------------


def cli(root: Path, monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(root)
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_accepted_history_lets_validate_judge_only_what_follows_it(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p", pyproject=PYPROJECT + 'accepted_history = "040"\n')
    write_files(root, NEW_CLEAN)

    code, out, _ = cli(root, monkeypatch, capsys, "validate", "--reports", "reports")

    assert code == 0, out
    # versions up to 040 and their down scripts are accepted; the repeatable view is judged (and
    # its SELECT * is a lint warning), like everything above 040
    assert "45 files checked" in out and "2 judged, 43 accepted history (accepted_history = 040)" in out
    report = json.loads((root / "reports" / "report.json").read_text())
    assert report["summary"]["judged"] == 2 and report["summary"]["accepted_history"] == 43
    assert {f["file"] for f in report["findings"]} == {"R__project_overview.sql"}

    # the same setting with an unsafe new migration: every error is in the new file
    (root / "db/migrations" / next(iter(NEW_CLEAN))).unlink()
    write_files(root, NEW_UNSAFE)
    code, out, _ = cli(root, monkeypatch, capsys, "validate", "--reports", "reports")
    assert code == 1
    report = json.loads((root / "reports" / "report.json").read_text())
    assert {f["file"] for f in report["findings"] if f["severity"] == "error"} == set(NEW_UNSAFE)


@pytest.mark.parametrize(
    ("setting", "closest"), [('"045"', "040"), ('"39.5"', "039, 040"), ('"0400"', "040")]
)
def test_accepted_history_must_be_a_version_on_disk(tmp_path, monkeypatch, capsys, setting, closest):
    root = make_project(tmp_path / "p", pyproject=PYPROJECT + f"accepted_history = {setting}\n")
    code, _, err = cli(root, monkeypatch, capsys, "validate", "--no-lint")
    assert code == 2
    assert "accepted_history" in err and "no versioned migration" in err
    assert f"the closest versions are {closest}" in err


def test_schemagate_run_with_accepted_history_applies_everything(tmp_path, monkeypatch, capsys, fresh_db):
    root = make_project(tmp_path / "p", pyproject=PYPROJECT + NO_CACHE)
    write_files(root, NEW_CLEAN)

    # without the setting the old findings block, and nothing touches the database
    code, out, _ = cli(root, monkeypatch, capsys, "run", "--yes", "--database-url", fresh_db)
    assert code == 1 and "not applied" in out
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('public.schemagate_history'), to_regclass('public.tasks')")
        assert cur.fetchone() == (None, None)

    (root / "pyproject.toml").write_text(PYPROJECT + 'accepted_history = "040"\n' + NO_CACHE)
    code, out, _ = cli(root, monkeypatch, capsys, "run", "--yes", "--database-url", fresh_db)
    assert code == 0, out
    assert "2 judged, 43 accepted history" in out
    with psycopg2.connect(fresh_db) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM schemagate_history WHERE type = 'SQL' AND success")
        assert fetch_value(cur) == 41
        cur.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = 'tasks' AND column_name IN ('archived_at', 'description', 'descr')"
        )
        assert sorted(r[0] for r in cur.fetchall()) == ["archived_at", "description"]
        # the down scripts were bundled, not run: what they would remove is still there
        cur.execute(
            "SELECT to_regclass('public.webhooks') IS NOT NULL, to_regclass('public.project_overview')"
        )
        assert cur.fetchone() == (True, "project_overview")


def test_junit_counts_what_lint_and_safety_did_not_judge_even_when_folded():
    from validator.findings import Finding
    from validator.reports import ReportData, junit_suites

    files = [f"V{i:04d}__step_{i}.sql" for i in range(1, 601)] + ["U0600__step_600.sql"]
    new = files[599]
    finding = Finding("require-concurrent-index-creation", "safety", "error", new, 1, 1, "blocks writes")
    data = ReportData(
        files=files,
        findings=[finding],
        checks=["naming", "order", "syntax", "integrity", "lint", "safety"],
        judged=[new],
        accepted_history=files[:599],
        down_scripts=["U0600__step_600.sql"],
        accepted_basis="unchanged since main",
    )
    suites = {name: cases for name, cases, _ in junit_suites(data)}
    for family in ("safety", "lint"):
        names = {c.name for c in suites[family]}
        assert names == {
            new,
            "599 files of accepted history (unchanged since main), not judged",
            "1 down script, not judged",
        }
    assert suites["safety"][0].failure_message.startswith(f"{new}:1:1 require-concurrent-index-creation")
    # the structural suites still have every file (folded past CodeBuild's 500 cases)
    assert any(c.name == "601 files without findings" for c in suites["naming"])
    assert data.summary()["judged"] == 1 and data.summary()["accepted_history"] == 599
