"""schemagate's rules against the real squawk (squawk-cli from PyPI, in the dev extra).

squawk is run on the last file of every example of every rule that names squawk equivalents; where
the two disagree, the disagreement must be one of the reviewed ones in
tests/safety_corpus/squawk_disagreements.yaml, each with the reason schemagate differs on purpose.
Everything else, squawk and schemagate report alike.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.safety_corpus.squawk_agreement import squawk_binary, verdicts
from validator.safety import REGISTRY
from validator.safety.squawk import SQUAWK_RULES, SQUAWK_VERSION

REVIEWED = Path(__file__).resolve().parent / "safety_corpus" / "squawk_disagreements.yaml"


def test_the_installed_squawk_is_the_version_the_rules_were_compared_with() -> None:
    version = subprocess.run([squawk_binary(), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.split() == ["squawk", SQUAWK_VERSION]


def test_squawk_knows_exactly_the_rules_listed() -> None:
    """Every listed id is accepted by squawk (``--include`` refuses an unknown one)."""
    rules = [r for r in SQUAWK_RULES if r != "unused-ignore"]  # a finding, not a rule to include
    done = subprocess.run(
        [squawk_binary(), f"--include={','.join(rules)}", "/dev/null"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    bad = subprocess.run(
        [squawk_binary(), "--include=ban-everything", "/dev/null"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "invalid rule name" in bad.stderr


def test_disagreements_with_squawk_are_the_reviewed_ones() -> None:
    reviewed = yaml.safe_load(REVIEWED.read_text(encoding="utf-8"))
    assert reviewed["squawk"] == SQUAWK_VERSION
    expected = {(d["rule"], d["reported_by"], d["sql"]) for d in reviewed["disagreements"]}
    assert all(d["why"] for d in reviewed["disagreements"])
    results = verdicts()
    assert len(results) > 400
    found = set()
    for v in results:
        if v.ours != v.squawk:
            sql = list(REGISTRY[v.rule].all_examples()[v.index].files.values())[-1]
            found.add((v.rule, "schemagate" if v.ours else "squawk", sql))
    assert found - expected == set(), "new disagreements with squawk: review them and add them with a reason"
    assert expected - found == set(), "reviewed disagreements that no longer happen: remove them"
    agreeing = sum(v.ours == v.squawk for v in results)
    assert agreeing / len(results) > 0.8
