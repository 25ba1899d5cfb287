"""The rule catalogue (validator/rule_catalog.py) knows every rule a finding can carry, docs/checks.md
is generated from it, and `schemagate rules` / `schemagate explain RULE` read it."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from schemagate.cli import main
from validator import rule_catalog
from validator.findings import FAMILIES
from validator.rule_catalog import LINT_RULE, all_rules, find_rule
from validator.safety.registry import REGISTRY

REPO = Path(__file__).resolve().parent.parent


def rule_ids_in_source() -> dict[str, str]:
    """Every rule id the validator and the executor's state code can put on a finding: ``rule="..."``
    keywords, ``RULE_* = "..."`` constants, and the rule argument of the local finding helpers."""
    found: dict[str, str] = {}
    sources = [p for p in (REPO / "validator").glob("*.py")] + [
        REPO / "executor" / "state.py",
        REPO / "executor" / "sqltext.py",
        REPO / "executor" / "layouts" / "base.py",
    ]
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                for kw in node.keywords:
                    if (
                        kw.arg == "rule"
                        and isinstance(kw.value, ast.Constant)
                        and isinstance(kw.value.value, str)
                    ):
                        found[kw.value.value] = path.name
                name = getattr(node.func, "id", None)
                if name in ("finding", "_transaction_finding"):
                    for arg in node.args:
                        if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and "-" in arg.value:
                            found[arg.value] = path.name
                            break
            if isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                value = node.value
                for target in targets:
                    target_name = getattr(target, "id", getattr(target, "attr", ""))
                    constant = value.value if isinstance(value, ast.Constant) else None
                    if (
                        (target_name.startswith("RULE") or target_name == "rule")
                        and isinstance(constant, str)
                        and "-" in constant
                    ):
                        found[constant] = path.name
    # discovery.py's control-character rule is executor.sqltext.RULE; lint-<code> is a pattern
    found.pop("lint-{code}", None)
    return found


def test_every_rule_the_code_can_report_is_in_the_catalogue():
    ids = {r.id for r in all_rules()}
    in_source = rule_ids_in_source()
    assert len(in_source) > 25  # the scan found the rules (a broken scan would pass vacuously)
    # the executor refuses with rules of its own (not-utf8, undo-target, ...) that never become findings
    executor_only = {
        "not-utf8",
        "header-setting",
        "transaction-control",
        "undo-target",
        "baseline-unknown-version",
        "baseline-not-empty",
        "baseline-empty-database",
    }
    missing = {
        rule: where for rule, where in in_source.items() if rule not in ids and rule not in executor_only
    }
    assert not missing, f"rules without an entry in validator/rule_catalog.py: {missing}"


def test_the_catalogue_has_every_family_and_no_duplicate():
    rules = all_rules()
    assert len({r.id for r in rules}) == len(rules)
    assert {r.family for r in rules} == set(FAMILIES)
    assert {r.id for r in rules if r.family == "safety"} == set(REGISTRY.ids)
    for r in rules:
        assert r.summary and r.description and r.remedy, r.id
        assert r.docs.startswith("https://") and "#" in r.docs, r.id


def test_docs_checks_md_is_generated_from_the_catalogue():
    assert rule_catalog.main(["--check"]) == 0, "run `python -m validator.rule_catalog`"
    text = (REPO / "docs" / "checks.md").read_text(encoding="utf-8")
    for r in rule_catalog.STRUCTURAL_RULES:
        assert f"\n## {r.id}\n" in text


def test_lint_rules_are_described_by_sqlfluff():
    rule = find_rule("lint-LT01")
    assert rule is not None and rule.family == "lint"
    assert "layout.spacing" in rule.summary
    assert rule.docs.endswith("#sqlfluff.rules.sphinx.Rule_LT01")
    assert LINT_RULE.match("lint-AM04") and not LINT_RULE.match("lint-am04")


def run(monkeypatch, capsys, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(tmp_path)
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_rules_lists_every_rule_with_the_level_this_project_sets(tmp_path, monkeypatch, capsys):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.schemagate]\n\n[tool.schemagate.rules]\nban-drop-column = "warning"\nprefer-bigint = "off"\n'
    )
    code, out, _ = run(monkeypatch, capsys, tmp_path, "rules")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["Rule", "Family", "Level", "Summary"]
    drop = next(line for line in lines if line.startswith("ban-drop-column "))
    assert "safety" in drop and "warning (default error)" in drop and "breaks running clients" in drop
    assert any(line.startswith("prefer-bigint ") and "off (default warning)" in line for line in lines)
    assert any(
        line.startswith("version-gap ") and " order " in line and " warning " in line for line in lines
    )
    assert any(line.startswith("rehearsal-blocking-lock ") for line in lines)
    assert f"{len(all_rules())} rules" in out

    code, out, _ = run(monkeypatch, capsys, tmp_path, "rules", "--family", "rehearsal", "--json")
    data = json.loads(out)
    assert [r["id"] for r in data] == [
        "rehearsal-failed",
        "rehearsal-base-failed",
        "rehearsal-blocking-lock",
        "rehearsal-table-rewrite",
        "rehearsal-data-dependent",
    ]


def test_explain_prints_a_safety_rule_s_documentation(tmp_path, monkeypatch, capsys):
    code, out, _ = run(monkeypatch, capsys, tmp_path, "explain", "require-concurrent-index-creation")
    assert code == 0
    assert out.startswith("## require-concurrent-index-creation\n")
    assert "**Anti-pattern**" in out and "CREATE INDEX CONCURRENTLY" in out
    assert "PostgreSQL manual: <https://www.postgresql.org/docs/" in out
    assert out.rstrip().endswith("docs/rules.md#require-concurrent-index-creation")


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("migration-modified", "**What to do.** Restore it"),
        ("rehearsal-table-rewrite", "relfilenode"),
        ("LT01", "## lint-LT01"),
        ("lint-CP01", "capitalisation"),
    ],
)
def test_explain_covers_the_other_families_and_sqlfluff(tmp_path, monkeypatch, capsys, rule, expected):
    code, out, _ = run(monkeypatch, capsys, tmp_path, "explain", rule)
    assert code == 0
    assert expected in out


def test_explain_an_unknown_rule_is_exit_2_naming_the_closest(tmp_path, monkeypatch, capsys):
    code, _, err = run(monkeypatch, capsys, tmp_path, "explain", "ban-drop-colum")
    assert code == 2
    assert "no rule has the id 'ban-drop-colum'" in err and "did you mean ban-drop-column" in err
