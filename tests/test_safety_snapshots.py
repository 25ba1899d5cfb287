"""Snapshot tests of the safety rules: what each example of each rule reports, pinned.

Every rule's ``examples`` (shown in docs/rules.md) and ``cases`` (tests only) are run under their
own configuration (target PostgreSQL version, transactional or not), and the rule's findings (rule
id, file, line, column, message, help) are compared with ``tests/safety_snapshots/<rule-id>.yaml``,
so a change of wording or position shows up in review, the way squawk's insta snapshots do.

After an intended change, rewrite the snapshots and review the diff::

    .venv/bin/python -m tests.test_safety_snapshots --update        # all rules
    .venv/bin/python -m tests.test_safety_snapshots --update RULE    # one rule
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from validator.config import ValidatorConfig
from validator.safety import REGISTRY, check_sql
from validator.safety.rule import Example, Rule

SNAPSHOTS = Path(__file__).resolve().parent / "safety_snapshots"
MIN_EXAMPLES = 5  # of each kind (reported / not reported) per rule


def example_config(rule: type[Rule], example: Example) -> ValidatorConfig:
    kw: dict[str, Any] = {}
    if example.target_postgres:
        kw["target_postgres"] = example.target_postgres
    if rule.opt_in:
        kw["rules"] = {rule.id: rule.severity}
    return ValidatorConfig(project_root=Path("."), migrations=Path("migrations"), **kw)


def run_example(rule: type[Rule], example: Example) -> list[dict[str, Any]]:
    """The rule's findings on the example, as plain data (the other rules' are left out)."""
    result = check_sql(
        example.files, config=example_config(rule, example), transactional=example.transactional
    )
    multi = len(example.files) > 1
    out = []
    for f in result.findings:
        if f.rule != rule.id:
            continue
        entry: dict[str, Any] = {"rule": f.rule}
        if multi:
            entry["file"] = f.file
        entry.update(line=f.line, column=f.column, message=f.message, help=f.help)
        out.append(entry)
    return out


def render(rule: type[Rule]) -> str:
    entries = []
    for i, example in enumerate(rule.all_examples()):
        entry: dict[str, Any] = {"example": i, "reported": example.triggers}
        if example.title:
            entry["title"] = example.title
        if example.target_postgres:
            entry["target_postgres"] = example.target_postgres
        if example.transactional is not None:
            entry["transactional"] = example.transactional
        entry["sql"] = example.sql if isinstance(example.sql, str) else dict(example.sql)
        entry["findings"] = run_example(rule, example)
        entries.append(entry)
    head = (
        f"# {rule.id}: what each example reports.  Generated: review the diff, then\n"
        "# .venv/bin/python -m tests.test_safety_snapshots --update " + rule.id + "\n"
    )
    return head + yaml.dump(
        {"rule": rule.id, "examples": entries},
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=4096,
    )


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def snapshot_path(rule: type[Rule]) -> Path:
    return SNAPSHOTS / f"{rule.id}.yaml"


@pytest.mark.parametrize("rule", list(REGISTRY), ids=lambda r: r.id)
def test_rule_output_matches_its_snapshot(rule: type[Rule]) -> None:
    path = snapshot_path(rule)
    assert path.is_file(), f"no snapshot for {rule.id}: run `python -m tests.test_safety_snapshots --update`"
    expected = path.read_text(encoding="utf-8")
    actual = render(rule)
    assert actual == expected, (
        f"{rule.id}: findings differ from {path.name}; if the change is intended, run "
        f"`python -m tests.test_safety_snapshots --update {rule.id}` and review the diff"
    )


@pytest.mark.parametrize("rule", list(REGISTRY), ids=lambda r: r.id)
def test_rule_has_enough_examples_of_both_kinds(rule: type[Rule]) -> None:
    examples = rule.all_examples()
    reported = sum(1 for e in examples if e.triggers)
    assert reported >= MIN_EXAMPLES and len(examples) - reported >= MIN_EXAMPLES, (
        f"{rule.id}: {reported} reported and {len(examples) - reported} quiet examples; "
        f"each rule needs at least {MIN_EXAMPLES} of each"
    )


def test_every_snapshot_belongs_to_a_rule() -> None:
    stale = {p.stem for p in SNAPSHOTS.glob("*.yaml")} - set(REGISTRY.ids)
    assert not stale, f"snapshots of rules that no longer exist: {sorted(stale)}"


def main(argv: list[str]) -> int:
    if "--update" not in argv:
        print(__doc__)
        return 2
    names = [a for a in argv if not a.startswith("--")]
    SNAPSHOTS.mkdir(exist_ok=True)
    for rule in REGISTRY:
        if names and rule.id not in names:
            continue
        path = snapshot_path(rule)
        text = render(rule)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
