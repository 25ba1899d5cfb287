"""Every rule's documented examples are its tests: the triggering ones trigger it, the others do not."""

from __future__ import annotations

from pathlib import Path

import pytest

from validator.config import ValidatorConfig
from validator.safety import REGISTRY, check_sql
from validator.safety.rule import Example

CASES = [
    pytest.param(rule.id, example, id=f"{rule.id}-{i}-{'err' if example.triggers else 'ok'}")
    for rule in REGISTRY
    for i, example in enumerate(rule.examples)
]


def config(**kw: object) -> ValidatorConfig:
    return ValidatorConfig(project_root=Path("."), migrations=Path("migrations"), **kw)


@pytest.mark.parametrize(("rule_id", "example"), CASES)
def test_rule_example(rule_id: str, example: Example) -> None:
    cfg = config(target_postgres=example.target_postgres) if example.target_postgres else config()
    result = check_sql(example.files, config=cfg, transactional=example.transactional)
    last_file = list(example.files)[-1]
    hits = [f for f in result.findings if f.rule == rule_id and f.file == last_file]
    if example.triggers:
        assert hits, f"{rule_id} should trigger on:\n{example.sql}"
        for f in hits:
            assert f.family == "safety" and f.line and f.column and f.message and f.help
            assert f.docs.endswith(f"rules.md#{rule_id}")
    else:
        assert not hits, f"{rule_id} should not trigger, got {[f.message for f in hits]}"


@pytest.mark.parametrize("rule", list(REGISTRY), ids=lambda r: r.id)
def test_rule_is_documented(rule: type) -> None:
    docs = rule.docs
    assert rule.summary.endswith(".") and len(rule.summary) < 120
    assert docs.why and docs.lock and docs.anti_pattern and docs.best_practice
    assert docs.manual.startswith("https://www.postgresql.org/docs/")
