"""Order checks over the discovered files (family ``order``).

- two versioned files with the same version (``V1`` and ``V001``: versions compare numerically),
  two undo files for one version, or two repeatables with the same description: error;
- an undo file ``U<v>`` without its ``V<v>``: error;
- a gap between consecutive integer versions (``V003`` then ``V006``): warning naming the missing
  numbers.  Only when every version is a single integer below 8 digits: dotted versions
  (``1.2``) and timestamps (``2024_05_01_1200``, ``20240501120000``) have no "next" number.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable

from executor.naming import REPEATABLE, UNDO, VERSIONED
from validator.config import ValidatorConfig
from validator.discovery import NAMING_DOCS, MigrationFile
from validator.findings import ERROR, WARNING, Finding

FAMILY = "order"
_TIMESTAMP_DIGITS = 8  # a single-number version this long is a date or timestamp, not a counter


def check_order(files: list[MigrationFile], config: ValidatorConfig | None = None) -> list[Finding]:
    findings: list[Finding] = []
    by_version: dict[tuple[str, tuple[int, ...]], list[MigrationFile]] = defaultdict(list)
    repeatables: dict[str, list[MigrationFile]] = defaultdict(list)
    for mf in files:
        if mf.name.kind == REPEATABLE:
            repeatables[mf.name.description].append(mf)
        else:
            assert mf.name.version is not None
            by_version[(mf.name.kind, mf.name.version.parts)].append(mf)

    for (kind, _), group in by_version.items():
        if len(group) > 1:
            label = "version" if kind == VERSIONED else "undo version"
            findings.extend(_duplicates(group, f"{label} {group[0].name.version}"))
    for description, group in repeatables.items():
        if len(group) > 1:
            findings.extend(_duplicates(group, f"repeatable description {description!r}"))

    versioned_parts = {parts for (kind, parts) in by_version if kind == VERSIONED}
    for (kind, parts), group in by_version.items():
        if kind == UNDO and parts not in versioned_parts:
            mf = group[0]
            findings.append(
                Finding(
                    rule="undo-without-version",
                    family=FAMILY,
                    severity=ERROR,
                    file=mf.rel,
                    line=None,
                    column=None,
                    message=f"{mf.name.file} undoes version {mf.name.version}, but there is no "
                    f"V{mf.name.version}__*.sql: the undo script could never be applied",
                    help="name the undo file after the versioned file it reverses (U<v> for V<v>), "
                    "or delete it",
                    docs=NAMING_DOCS,
                )
            )

    findings.extend(_gaps([mf for mf in files if mf.name.kind == VERSIONED]))
    return findings


def _duplicates(group: list[MigrationFile], what: str) -> Iterable[Finding]:
    names = ", ".join(mf.rel for mf in group)
    first = group[0]
    for mf in group[1:]:
        yield Finding(
            rule="duplicate-version" if mf.name.kind != REPEATABLE else "duplicate-repeatable",
            family=FAMILY,
            severity=ERROR,
            file=mf.rel,
            line=None,
            column=None,
            message=f"{what} is used by more than one file ({names}); only one of them could ever be applied "
            "and which one would depend on the machine",
            help=f"give {mf.name.file} a version of its own (`schemagate new` picks the next one), "
            f"or merge it into {first.rel}",
            docs=NAMING_DOCS,
        )


def _gaps(versioned: list[MigrationFile]) -> list[Finding]:
    numbers: dict[int, MigrationFile] = {}
    for mf in versioned:
        version = mf.name.version
        assert version is not None
        counter = version.text.isdigit() and len(str(version.parts[0])) < _TIMESTAMP_DIGITS
        if not counter:
            return []
        numbers.setdefault(version.parts[0], mf)
    ordered = sorted(numbers)
    findings = []
    for previous, current in itertools.pairwise(ordered):
        if current - previous <= 1:
            continue
        mf = numbers[current]
        missing = _ranges(previous + 1, current - 1, width=len(mf.name.version.text))  # type: ignore[union-attr]
        verb = "is" if current - previous == 2 else "are"
        findings.append(
            Finding(
                rule="version-gap",
                family=FAMILY,
                severity=WARNING,
                file=mf.rel,
                line=None,
                column=None,
                message=f"version{'s' if verb == 'are' else ''} {missing} {verb} missing between "
                f"{numbers[previous].name.file} and {mf.name.file}; "
                "a deleted or not yet merged migration leaves such a gap",
                help="check that no migration was lost in a merge; if the gap is intended, "
                "ignore this warning",
                docs=NAMING_DOCS,
            )
        )
    return findings


def _ranges(low: int, high: int, *, width: int) -> str:
    def fmt(n: int) -> str:
        return "V" + str(n).zfill(width)

    if low == high:
        return fmt(low)
    if high - low == 1:
        return f"{fmt(low)}, {fmt(high)}"
    return f"{fmt(low)}..{fmt(high)}"
