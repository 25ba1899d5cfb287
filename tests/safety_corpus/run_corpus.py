"""Run the safety rules over the corpus and print what they flagged.

    .venv/bin/python tests/safety_corpus/run_corpus.py [--show N]

Two parts: the PostgreSQL extension scripts and catalog scripts on this machine (real DDL, every
finding printed for review), and the generated labelled history (findings compared with the
labels: missed dangers and unexpected findings are printed).
"""

from __future__ import annotations

import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.safety_corpus.extension_scripts import as_migration, extension_dirs, extension_histories
from tests.safety_corpus.history import build_history
from validator.safety import check_sql
from validator.safety.source import source_file


def real_corpus() -> dict[str, dict[str, str]]:
    corpus = extension_histories()
    for d in extension_dirs():
        for p in sorted(d.parent.glob("*.sql")):
            corpus[str(p)] = {p.name: as_migration(p.read_text(encoding="utf-8"))}
    return corpus


def main() -> int:
    show = int(sys.argv[sys.argv.index("--show") + 1]) if "--show" in sys.argv else 50
    t0 = time.perf_counter()
    corpus = real_corpus()
    files = statements = 0
    counts: collections.Counter[str] = collections.Counter()
    kinds: collections.Counter[str] = collections.Counter()
    listed = 0
    for group, history in corpus.items():
        result = check_sql(history)
        files += len(history)
        for f in result.findings:
            counts[f.rule] += 1
            if listed < show:
                print(f"  {group}/{f.location} {f.rule}: {f.message}")
                listed += 1
        for name, sql in history.items():
            parsed = source_file(sql, file=name)
            statements += len(parsed.statements)
            kinds.update(type(s.node).__name__ for s in parsed.statements)
    print(
        f"real corpus: {files} files, {statements} statements, {len(kinds)} statement kinds, "
        f"{sum(counts.values())} findings in {time.perf_counter() - t0:.1f}s"
    )
    for rule, n in counts.most_common():
        print(f"  {n:5}  {rule}")

    t0 = time.perf_counter()
    generated = build_history()
    result = check_sql({m.name: m.sql for m in generated})
    by_file: dict[str | None, set[str]] = collections.defaultdict(set)
    for f in result.findings:
        by_file[f.file].add(f.rule)
    missed = unexpected = 0
    for rule in sorted(by_file.pop(None, set())):  # about the whole history: labelled nowhere
        unexpected += 1
        print(f"  UNEXPECTED (whole history) {rule}")
    for m in generated:
        got = by_file.get(m.name, set())
        for rule in sorted(m.expected - got):
            missed += 1
            print(f"  MISSED {m.name} [{m.pattern}] {rule}")
        for rule in sorted(got - m.expected):
            unexpected += 1
            print(f"  UNEXPECTED {m.name} [{m.pattern}] {rule}")
    flagged = sum(1 for m in generated if m.expected)
    print(
        f"generated history: {len(generated)} files ({flagged} with a labelled danger or style issue), "
        f"{len(result.findings)} findings, {len(result.suppressions)} suppressions, "
        f"{missed} missed, {unexpected} unexpected, in {time.perf_counter() - t0:.1f}s"
    )
    pcounts = collections.Counter(f.rule for f in result.findings)
    for rule, n in pcounts.most_common():
        print(f"  {n:5}  {rule}")
    return 1 if missed or unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
