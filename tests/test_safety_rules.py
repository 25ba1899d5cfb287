"""Every rule's examples and cases are its tests: the reported ones are reported, the others not.

The findings come from the rule's snapshot (tests/safety_snapshots/<rule-id>.yaml), which
tests/test_safety_snapshots.py keeps equal to what the rule really reports, so each example is run
once per test session, not twice."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
import yaml

from tests.test_safety_snapshots import snapshot_path
from validator.safety import REGISTRY, check_sql
from validator.safety.rule import Example, Rule

CASES = [
    pytest.param(rule, i, example, id=f"{rule.id}-{i}-{'err' if example.triggers else 'ok'}")
    for rule in REGISTRY
    for i, example in enumerate(rule.all_examples())
]


@cache
def snapshot(rule_id: str) -> list[dict[str, Any]]:
    return yaml.safe_load(snapshot_path(REGISTRY[rule_id]).read_text(encoding="utf-8"))["examples"]


@pytest.mark.parametrize(("rule", "index", "example"), CASES)
def test_rule_example(rule: type[Rule], index: int, example: Example) -> None:
    entry = snapshot(rule.id)[index]
    assert entry["sql"] == (example.sql if isinstance(example.sql, str) else dict(example.sql)), (
        f"{rule.id}: snapshot is stale, run `python -m tests.test_safety_snapshots --update {rule.id}`"
    )
    last_file = list(example.files)[-1]
    hits = [f for f in entry["findings"] if f.get("file", last_file) == last_file]
    if example.triggers:
        assert hits, f"{rule.id} should report:\n{example.sql}"
        for f in hits:
            assert f["rule"] == rule.id and f["line"] and f["column"] and f["message"] and f["help"]
    else:
        assert not hits, f"{rule.id} should not report, got {[f['message'] for f in hits]}"


@pytest.mark.parametrize("rule", list(REGISTRY), ids=lambda r: r.id)
def test_rule_is_documented(rule: type[Rule]) -> None:
    docs = rule.docs
    assert rule.summary.endswith(".") and len(rule.summary) < 120
    assert docs.why and docs.lock and docs.anti_pattern and docs.best_practice
    assert docs.manual.startswith("https://www.postgresql.org/docs/")


def test_every_finding_carries_help_and_a_link_to_its_section_in_docs_rules_md() -> None:
    sql = "ALTER TABLE users DROP COLUMN email;\nCREATE INDEX users_name_idx ON users (name);"
    findings = check_sql(sql).findings
    assert {f.rule for f in findings} == {"ban-drop-column", "require-concurrent-index-creation"}
    for f in findings:
        assert f.help and f.docs.endswith(f"/docs/rules.md#{f.rule}")
