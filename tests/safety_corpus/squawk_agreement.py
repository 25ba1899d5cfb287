"""Run the real squawk on every rule example and compare its verdict with schemagate's.

    .venv/bin/python -m tests.safety_corpus.squawk_agreement [--list]

For each example of a rule that names squawk equivalents (``Rule.squawk``), squawk is run on the
example's last file (squawk sees one file, schemagate the earlier ones too) with the example's
target version and transaction mode, and asked whether any equivalent rule fires.  Prints how much
of what squawk reports schemagate reports too, and how much of what squawk passes schemagate passes;
``--list`` prints every disagreement.  ``tests/test_safety_squawk.py`` keeps the disagreements to the
reviewed list in ``squawk_disagreements.yaml``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from validator.safety import REGISTRY
from validator.safety.rule import Example, Rule
from validator.safety.source import source_file
from validator.safety.squawk import SQUAWK_RULES

SQUAWK_ALIASES = {"prefer-timestamp-tz": "prefer-timestamptz"}  # the name squawk reports it under
TIMEOUT_RULES = {"require-lock-timeout", "require-statement-timeout", "require-timeout-settings"}


def squawk_binary() -> str:
    found = shutil.which("squawk") or str(Path(sys.executable).parent / "squawk")
    if not Path(found).exists():
        raise FileNotFoundError("squawk is not installed: pip install -e '.[dev]' installs squawk-cli")
    return found


@dataclass(frozen=True)
class Verdict:
    rule: str
    index: int
    ours: bool
    squawk: bool
    squawk_rules: tuple[str, ...]  # the equivalent squawk rules that fired


def _config(example: Example, sql: str) -> tuple[bool, int]:
    transactional = example.transactional
    if transactional is None:  # as schemagate decides it: from the statements of the file
        transactional = source_file(sql).transactional
    return bool(transactional), example.target_postgres or 14


def run_squawk(binary: str, files: dict[Path, tuple[bool, int]]) -> dict[Path, list[str]]:
    """squawk's rule ids per file; one squawk process per (transactional, version) group."""
    include = [r for r in SQUAWK_RULES if r not in TIMEOUT_RULES and r != "unused-ignore"]
    found: dict[Path, list[str]] = {p: [] for p in files}
    for transactional, version in sorted(set(files.values())):
        paths = [str(p) for p, c in files.items() if c == (transactional, version)]
        argv = [binary, "--reporter", "json", f"--include={','.join(include)}", f"--pg-version={version}"]
        if transactional:
            argv.append("--assume-in-transaction")
        done = subprocess.run([*argv, *paths], capture_output=True, text=True, timeout=300, check=False)
        for d in json.loads(done.stdout or "[]"):
            found[Path(d["file"])].append(SQUAWK_ALIASES.get(d["rule_name"], d["rule_name"]))
    return found


def verdicts(rules: list[type[Rule]] | None = None) -> list[Verdict]:
    binary = squawk_binary()
    cases: list[tuple[type[Rule], int, Example, Path, set[str]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[Path, tuple[bool, int]] = {}
        for rule in rules or list(REGISTRY):
            equivalents = {s.strip() for s in (rule.squawk or "").split(",") if s.strip()} - {"unused-ignore"}
            if not equivalents:
                continue
            for i, example in enumerate(rule.all_examples()):
                last = list(example.files.values())[-1]
                path = Path(tmp) / f"{rule.id}-{i}.sql"
                path.write_text(last, encoding="utf-8")
                files[path] = _config(example, last)
                cases.append((rule, i, example, path, equivalents))
        found = run_squawk(binary, files)
    out = []
    for rule, i, example, path, equivalents in cases:
        fired = tuple(sorted(set(found[path]) & equivalents))
        out.append(Verdict(rule.id, i, example.triggers, bool(fired), fired))
    return out


def main(argv: list[str]) -> int:
    results = verdicts()
    flagged = [v for v in results if v.squawk]
    passed = [v for v in results if not v.squawk]
    caught = sum(v.ours for v in flagged)
    quiet = sum(not v.ours for v in passed)
    print(
        f"{len(results)} examples of {len({v.rule for v in results})} rules: schemagate reports "
        f"{caught}/{len(flagged)} of what squawk reports ({100 * caught / max(len(flagged), 1):.0f} %) and "
        f"passes {quiet}/{len(passed)} of what squawk passes ({100 * quiet / max(len(passed), 1):.0f} %)"
    )
    if "--list" in argv:
        for v in results:
            if v.ours != v.squawk:
                side = "only schemagate" if v.ours else f"only squawk ({', '.join(v.squawk_rules)})"
                example = REGISTRY[v.rule].all_examples()[v.index]
                first = " | ".join(list(example.files.values())[-1].splitlines())[:150]
                print(f"  {v.rule} #{v.index}: {side}: {example.title or ''}\n      {first}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
