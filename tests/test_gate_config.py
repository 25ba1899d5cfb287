"""A change cannot switch off its own gate: with a base ref the gate's configuration is the base
ref's, and a change to it is listed (blocking when the change edits migrations too).

Real git repositories holding the history of tests/gate_history.py; each test commits on a branch
the way a pull request does and validates against `main` (or, for a main-branch build, HEAD~1).
"""

from __future__ import annotations

import json
import os

import pytest

from schemagate.cli import main
from tests.gate_history import PYPROJECT, commit_all, git, make_project, write_files
from validator.config import load_config
from validator.gate_config import RULE_GATE_CONFIG_CHANGED, gate_changes, sqlfluff_changes
from validator.validate import run_validation

BLOCKING_INDEX = {"V041__index_tasks_due_on.sql": "CREATE INDEX tasks_due_on_idx ON tasks (due_on);\n"}
VIEW_SELECT_STAR = {
    "V041__create_open_tasks_view.sql": "CREATE VIEW open_tasks AS\nSELECT *\n  FROM tasks\n WHERE status <> 'done';\n"
}
INT_COLUMN = {"V042__tasks_estimate.sql": "ALTER TABLE tasks ADD COLUMN estimate_points integer;\n"}


@pytest.fixture(autouse=True)
def no_codebuild(monkeypatch):
    for var in [v for v in os.environ if v.startswith("CODEBUILD_")]:
        monkeypatch.delenv(var)


def validate(root, base_ref="main", **kwargs):
    return run_validation(load_config(root), base_ref=base_ref, **kwargs)


def gate_findings(result) -> dict[str, str]:
    """key -> message of every gate-config-changed finding."""
    out = {}
    for f in result.findings:
        if f.rule == RULE_GATE_CONFIG_CHANGED:
            assert (f.family, f.severity, f.file) == ("integrity", "error", None)
            key = f.message.split(": ", 1)[1].split(" is ", 1)[0]
            out[key] = f.message
    return out


def test_a_pull_request_cannot_switch_off_the_rule_its_migration_breaks(tmp_path):
    root = make_project(tmp_path / "p")
    git(root, "checkout", "-qb", "feature/due-index")
    (root / "pyproject.toml").write_text(
        PYPROJECT + '\n[tool.schemagate.rules]\nrequire-concurrent-index-creation = "off"\n'
    )
    write_files(root, BLOCKING_INDEX)
    commit_all(root, "index due dates (and silence the rule)")

    result = validate(root, bundle_dir=root / "bundle", reports_dir=root / "reports")

    assert result.exit_code == 1
    # judged with main's configuration: the rule is on
    assert ("V041__index_tasks_due_on.sql", "require-concurrent-index-creation") in {
        (f.file, f.rule) for f in result.findings if f.severity == "error"
    }
    (finding,) = [f for f in result.findings if f.rule == RULE_GATE_CONFIG_CHANGED]
    assert (
        'rules.require-concurrent-index-creation is "off" here, "error" (default) on main' in finding.message
    )
    assert "merge the configuration change alone first" in finding.help
    assert result.config.gate_source == "main" and result.config.rules == {}
    assert not (root / "bundle" / "manifest.json").exists()
    md = (root / "reports" / "report.md").read_text()
    assert '| `rules.require-concurrent-index-creation` | "error" (default) | "off" |' in md
    section = next(
        s
        for s in json.loads((root / "reports" / "report.json").read_text())["sections"]
        if s["title"] == "Gate configuration"
    )
    assert section["data"]["blocking"] is True
    assert section["data"]["changes"] == [
        {"key": "rules.require-concurrent-index-creation", "old": '"error" (default)', "new": '"off"'}
    ]


def test_every_changed_gate_key_is_listed_with_its_old_and_new_value(tmp_path):
    root = make_project(
        tmp_path / "p",
        pyproject=PYPROJECT + 'target_postgres = 13\n\n[tool.schemagate.lint]\nseverity = "error"\n',
    )
    (root / "db/migrations/.sqlfluff").write_text("[sqlfluff]\nexclude_rules = ST03\n")
    commit_all(root, "lint settings")
    git(root, "checkout", "-qb", "feature/loosen-everything")
    (root / "pyproject.toml").write_text(
        PYPROJECT
        + 'out_of_order = true\ntarget_postgres = 17\nblocking_severity = "warning"\naccepted_history = "041"\n'
        + '\n[tool.schemagate.rules]\nban-drop-table = "warning"\nprefer-bigint = "warning"\n'
        + "\n[tool.schemagate.lint]\nenabled = false\n"
        + '\n[tool.sqlfluff.core]\nexclude_rules = "AM04"\n'
    )
    (root / "db/migrations/.sqlfluff").write_text("[sqlfluff]\nexclude_rules = ST03,AM04\n")
    write_files(root, VIEW_SELECT_STAR)
    commit_all(root, "a view, and a gentler gate")

    result = validate(root)

    listed = gate_findings(result)
    assert set(listed) == {
        "out_of_order",
        "target_postgres",
        "blocking_severity",
        "accepted_history",
        "rules.ban-drop-table",
        "lint.enabled",
        "lint.severity",
        "db/migrations/.sqlfluff [sqlfluff] exclude_rules",
        "pyproject.toml [tool.sqlfluff.core] exclude_rules",
    }  # prefer-bigint is "warning" by default already: no change
    assert "target_postgres is 17 here, 13 on main" in listed["target_postgres"]
    assert 'lint.severity is "warning" (default) here, "error" on main' in listed["lint.severity"]
    assert 'is "ST03,AM04" here, "ST03" on main' in listed["db/migrations/.sqlfluff [sqlfluff] exclude_rules"]
    assert 'is "AM04" here, (not set) on main' in listed["pyproject.toml [tool.sqlfluff.core] exclude_rules"]
    # and what main says is what judged the view: lint on, at severity error, AM04 not excluded
    assert result.config.target_postgres == 13 and result.config.lint["severity"] == "error"
    assert ("V041__create_open_tasks_view.sql", "lint-AM04", "error") in {
        (f.file, f.rule, f.severity) for f in result.findings
    }
    assert result.exit_code == 1


def test_a_configuration_change_alone_passes_and_takes_effect_once_merged(tmp_path, monkeypatch, capsys):
    root = make_project(tmp_path / "p")
    git(root, "checkout", "-qb", "config/allow-int-columns")
    (root / "pyproject.toml").write_text(PYPROJECT + '\n[tool.schemagate.rules]\nprefer-bigint = "off"\n')
    commit_all(root, "prefer-bigint is noise for us")

    monkeypatch.chdir(root)
    code = main(["validate", "--base-ref", "main", "--reports", "reports"])
    out, _ = capsys.readouterr()
    assert code == 0, out
    assert (
        "gate configuration: judged with main's; this change edits it "
        '(rules.prefer-bigint: "warning" (default) -> "off"), which takes effect once merged'
    ) in out
    report = json.loads((root / "reports" / "report.json").read_text())
    assert not [f for f in report["findings"] if f["rule"] == RULE_GATE_CONFIG_CHANGED]
    section = next(s for s in report["sections"] if s["title"] == "Gate configuration")
    assert section["data"]["blocking"] is False and len(section["data"]["changes"]) == 1
    assert "It changes no migration" in (root / "reports" / "report.md").read_text()

    # the merge: the main-branch build compares with the previous commit and passes too
    git(root, "checkout", "-q", "main")
    git(root, "merge", "-q", "--no-ff", "-m", "merge config/allow-int-columns", "config/allow-int-columns")
    merged = validate(root, base_ref="HEAD~1")
    assert merged.exit_code == 0 and not gate_findings(merged)

    # the next pull request is judged with the merged configuration
    git(root, "checkout", "-qb", "feature/estimates")
    write_files(root, INT_COLUMN)
    commit_all(root, "estimates")
    after = validate(root)
    assert after.exit_code == 0
    assert "prefer-bigint" not in {f.rule for f in after.findings}
    assert after.config.rules == {"prefer-bigint": "off"}


def test_a_main_branch_build_refuses_a_merge_that_changes_configuration_and_migrations(tmp_path):
    root = make_project(tmp_path / "p")
    (root / "pyproject.toml").write_text(
        PYPROJECT + '\n[tool.schemagate.rules]\nrequire-concurrent-index-creation = "warning"\n'
    )
    write_files(root, BLOCKING_INDEX)
    commit_all(root, "squash-merge: index due dates")

    result = validate(root, base_ref="HEAD~1", bundle_dir=root / "bundle")

    assert result.exit_code == 1
    assert set(gate_findings(result)) == {"rules.require-concurrent-index-creation"}
    assert ("V041__index_tasks_due_on.sql", "error") in {
        (f.file, f.severity) for f in result.findings if f.rule == "require-concurrent-index-creation"
    }
    assert not (root / "bundle" / "manifest.json").exists()


@pytest.mark.parametrize("base_pyproject", ['[project]\nname = "taskboard-db"\n', None])
def test_where_the_base_ref_has_no_configuration_the_defaults_apply(tmp_path, base_pyproject):
    root = tmp_path / "p"
    if base_pyproject is None:
        make_project(root, files={})
        (root / "pyproject.toml").unlink()
    else:
        make_project(root, pyproject=base_pyproject, files={})
    from tests.gate_history import HISTORY

    write_files(root, HISTORY, directory="migrations")
    commit_all(root, "history in ./migrations, no [tool.schemagate]")
    git(root, "checkout", "-qb", "feature/due-index")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "taskboard-db"\n\n[tool.schemagate]\nblocking_severity = "error"\n'
        '\n[tool.schemagate.rules]\nrequire-concurrent-index-creation = "off"\n'
    )
    write_files(root, BLOCKING_INDEX, directory="migrations")
    commit_all(root, "index due dates")

    result = validate(root)

    assert result.exit_code == 1
    assert set(gate_findings(result)) == {"rules.require-concurrent-index-creation"}
    assert "require-concurrent-index-creation" in {
        f.rule for f in result.findings if f.file in BLOCKING_INDEX
    }


def test_an_invalid_configuration_on_the_base_ref_judges_with_the_defaults(tmp_path):
    """A typo that reached main (it fails main's own build) must not lock the gate open, nor shut
    it for the pull request that fixes it."""
    root = make_project(
        tmp_path / "p",
        pyproject=PYPROJECT + '\n[tool.schemagate.rules]\nrequire-concurrent-index-creation = "of"\n',
    )
    git(root, "checkout", "-qb", "fix/config")
    (root / "pyproject.toml").write_text(PYPROJECT)
    commit_all(root, "fix the typo")

    fix = validate(root)
    assert fix.exit_code == 0  # a configuration change alone
    gate = fix.sections[0]
    assert "the configuration on main is invalid" in gate.note and "the defaults are used" in gate.note

    write_files(root, BLOCKING_INDEX)
    commit_all(root, "and an index")
    both = validate(root)
    assert both.exit_code == 1
    assert "require-concurrent-index-creation" in {f.rule for f in both.findings if f.file in BLOCKING_INDEX}


def test_gate_changes_compare_effective_values() -> None:
    base = {"target_postgres": 14, "rules": {"ban-drop-column": "warning"}}
    assert gate_changes(base, {"rules": {"ban-drop-column": "warning", "prefer-bigint": "warning"}}) == []
    changed = {c.key: (c.old, c.new) for c in gate_changes(base, {"lint": {"cache": False}})}
    assert changed == {
        "rules.ban-drop-column": ('"warning"', '"error" (default)'),
        "lint.cache": ("true (default)", "false"),
    }


def test_sqlfluff_changes_name_the_file_section_and_key() -> None:
    old = {
        ".sqlfluff": "[sqlfluff]\nrules = AL04,AM04\n[sqlfluff:rules:capitalisation.keywords]\ncapitalisation_policy = upper\n"
    }
    new = {
        ".sqlfluff": "[sqlfluff]\nrules = AL04\n[sqlfluff:rules:capitalisation.keywords]\ncapitalisation_policy = upper\n",
        "pyproject.toml": '[tool.black]\nline-length = 100\n[tool.sqlfluff.core]\nexclude_rules = "AM04"\n',
        "setup.cfg": "[flake8]\nmax-line-length = 100\n",  # not sqlfluff's: no change
    }
    changed = {c.key: (c.old, c.new) for c in sqlfluff_changes(old, new)}
    assert changed == {
        ".sqlfluff [sqlfluff] rules": ('"AL04,AM04"', '"AL04"'),
        "pyproject.toml [tool.sqlfluff.core] exclude_rules": ("(not set)", '"AM04"'),
    }
    (broken,) = sqlfluff_changes({}, {".sqlfluff": "rules = AL04\n"})
    assert broken.key == ".sqlfluff (unreadable)" and "not valid INI" in broken.new
