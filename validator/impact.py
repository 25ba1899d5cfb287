"""Per migration, the existing tables it locks and how, for the manifest's ``impact`` key.

Two sources, both already computed by ``validate``:

- the **rehearsal** (``--rehearse``) observed each judged migration's locks and the tables whose
  storage it replaced: every lock of ROW EXCLUSIVE or stronger on a table that existed before the
  migration is recorded (a backfill's ROW EXCLUSIVE matters on a 300 M row table too), with
  ``rewrite`` where the table got a new relfilenode;
- the **safety rules** of the ``locking`` category name the statement that takes a strong lock;
  its table is the statement's first relation and the mode the one the rule documents.  This
  covers a validation without rehearsal; a waived finding (an inline ignore) is not seen here,
  which is one more reason the buildspec rehearses.

The executor's plan (``executor.plan_report``) reads the key back and adds each table's size and
row count on the database it plans for.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from executor.impact import LOCK_MODES, LockImpact, impact_to_manifest
from validator.findings import Finding

if TYPE_CHECKING:
    from pglast import ast
    from pglast.visitors import Ancestor

    from validator.findings import JSONObject
    from validator.parsed import ParsedFile
    from validator.reports import ReportSection
    from validator.structural import StructuralResult

RECORDED_FROM = "ROW EXCLUSIVE"  # weaker modes only read (ACCESS SHARE, ROW SHARE)
_TABLE_KINDS = ("table", "partitioned table", "materialized view", "foreign table")


def lock_impact(
    structural: StructuralResult, findings: Sequence[Finding], sections: Iterable[ReportSection]
) -> dict[str, list[JSONObject]]:
    """The manifest's ``impact`` value: ``{file: [LockImpact as dict, ...]}`` for every migration a
    source said something about (strongest lock per table first)."""
    impact: dict[str, list[LockImpact]] = dict(from_rehearsal(sections))
    rehearsed = rehearsed_files(sections)
    for file, items in from_safety(structural, findings).items():
        if file not in rehearsed:  # an observation beats a reading of the statement
            impact.setdefault(file, []).extend(items)
    return impact_to_manifest(impact)


def _rehearsal_ran() -> bool:
    """A rehearsal section exists only once ``validator.rehearsal`` was imported; without one,
    importing it (and the executor's apply loop under it) just to find none is a quarter second."""
    return "validator.rehearsal" in sys.modules


def rehearsed_files(sections: Iterable[ReportSection]) -> set[str]:
    if not _rehearsal_ran():
        return set()
    from validator.rehearsal import RehearsalResult

    return {
        m.file
        for section in sections
        if isinstance(section, RehearsalResult)
        for m in section.migrations
        if m.status == "applied"
    }


def from_rehearsal(sections: Iterable[ReportSection]) -> dict[str, list[LockImpact]]:
    if not _rehearsal_ran():
        return {}
    from validator.rehearsal import RehearsalResult

    floor = LOCK_MODES.index(RECORDED_FROM)
    out: dict[str, list[LockImpact]] = {}
    for section in sections:
        if not isinstance(section, RehearsalResult):
            continue
        for m in section.migrations:
            if m.status != "applied":
                continue
            items = [
                LockImpact(
                    relation=li.relation, lock=li.mode, rewrite=li.relation in m.rewritten, source="rehearsal"
                )
                for li in m.locks
                if li.existed_before
                and li.kind in _TABLE_KINDS
                and li.mode in LOCK_MODES
                and LOCK_MODES.index(li.mode) >= floor
            ]
            locked = {i.relation for i in items}
            # a rewrite replaces the table's storage, which PostgreSQL does under ACCESS EXCLUSIVE
            items += [
                LockImpact(relation=rel, lock="ACCESS EXCLUSIVE", rewrite=True, source="rehearsal")
                for rel in m.rewritten
                if rel not in locked
            ]
            if items:
                out.setdefault(m.file, []).extend(items)
    return out


def from_safety(structural: StructuralResult, findings: Sequence[Finding]) -> dict[str, list[LockImpact]]:
    try:
        from validator.safety import REGISTRY
    except ImportError:  # the lint extra is not installed: no safety rules ran
        return {}
    parsed = {p.rel: p for p in structural.parsed}
    out: dict[str, list[LockImpact]] = {}
    for f in findings:
        if (
            f.family != "safety"
            or f.rule not in REGISTRY
            or f.file is None
            or f.file not in parsed
            or f.line is None
        ):
            continue
        rule = REGISTRY[f.rule]
        if rule.category != "locking":
            continue
        mode = documented_mode(rule.docs.lock)
        relation = relation_at(parsed[f.file], f.line, f.column or 1)
        if mode is None or relation is None:
            continue
        out.setdefault(f.file, []).append(
            LockImpact(relation=relation, lock=mode, rewrite="rewrite" in f.message.lower(), source=f.rule)
        )
    return out


def documented_mode(text: str) -> str | None:
    """The first lock mode a rule's ``docs.lock`` names ("ACCESS EXCLUSIVE on the table ...")."""
    upper = f" {text.upper()} "
    found = [(upper.find(f" {mode} "), -len(mode), mode) for mode in LOCK_MODES if f" {mode} " in upper]
    return min(found)[2] if found else None


def relation_at(parsed: ParsedFile, line: int, column: int) -> str | None:
    """The first relation (RangeVar) of the statement at ``line:column`` of a parsed file."""
    from pglast.visitors import Visitor

    from validator.parsed import ensure_trees

    ensure_trees(parsed)

    class FirstRelation(Visitor):
        found: ast.RangeVar | None = None

        def visit_RangeVar(self, ancestors: Ancestor, node: ast.RangeVar) -> None:
            if self.found is None:
                self.found = node

    # the statement the position falls in: the last one starting at or before it
    starting = [s for s in parsed.statements if (s.line, s.column) <= (line, column) and s.node is not None]
    if not starting:
        return None
    visitor = FirstRelation()
    visitor(starting[-1].node)
    node = visitor.found
    if node is None:
        return None
    return f"{node.schemaname}.{node.relname}" if node.schemaname else node.relname
