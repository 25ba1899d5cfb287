"""``check_safety``: the engine's raw findings, minus what suppressions waive, plus the audit of
the suppressions themselves, as ``Finding`` values (family ``safety``)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pglast.parser import Token, scan

from executor.headers import LineCounter
from validator.findings import Finding, docs_link
from validator.safety.context import RawFinding
from validator.safety.engine import run_rules
from validator.safety.registry import REGISTRY, Registry
from validator.safety.settings import SafetySettings, safety_settings
from validator.safety.suppressions import Suppression, SuppressionProblem, find_suppressions

if TYPE_CHECKING:
    from validator.config import ValidatorConfig
    from validator.parsed import ParsedFile
    from validator.safety.catalog_cache import CatalogCache

FAMILY = "safety"
SUPPRESSION_RULES = (
    "suppression-missing-reason",
    "suppression-unknown-rule",
    "suppression-malformed",
    "suppression-unused",
)


@dataclass
class SafetyResult:
    findings: list[Finding] = field(default_factory=list)
    suppressions: list[Suppression] = field(default_factory=list)


def _finding(
    rule: str,
    settings: SafetySettings,
    file: str,
    line: int | None,
    column: int | None,
    message: str,
    help: str,
) -> Finding:
    return Finding(
        rule=rule,
        family=FAMILY,
        severity=settings.levels[rule],
        file=file,
        line=line,
        column=column,
        message=message,
        help=help,
        docs=docs_link("rules.md", rule),
    )


def _tokens(text: str) -> Sequence[Token]:
    try:
        return scan(text)
    except Exception:  # a file that does not scan has no statements either: nothing to exempt
        return ()


def check_files(
    files: Sequence[ParsedFile],
    config: ValidatorConfig | None,
    registry: Registry = REGISTRY,
    *,
    judged: Collection[str] | None = None,
    catalog_cache: CatalogCache | None = None,
) -> SafetyResult:
    """Findings and suppressions of the ``judged`` files (by ``rel``; None: all of them); the
    other files are read for what they create (``run_rules``, with ``catalog_cache``)."""
    settings = safety_settings(config, registry)
    rules = [r for r in registry if settings.enabled(r.id) and r.id not in SUPPRESSION_RULES]
    parsed = [f for f in files if getattr(f, "statements", None) is not None]
    raw = run_rules(
        parsed, rules, target_postgres=settings.target_postgres, judged=judged, catalog_cache=catalog_cache
    )
    result = SafetyResult()
    for file in parsed:
        if judged is not None and file.rel not in judged:
            continue
        lines = LineCounter(file.text)
        sups, problems = find_suppressions(file, _tokens(file.text), set(registry.ids))
        result.suppressions.extend(sups)
        for rf in raw.get(file.rel, []):
            if _suppressed(rf, sups):
                continue
            line, column = lines.position(rf.offset)
            result.findings.append(_finding(rf.rule, settings, file.rel, line, column, rf.message, rf.help))
        result.findings.extend(_audit(file.rel, sups, problems, settings))
    result.findings.sort(key=Finding.sort_key)
    return result


def _suppressed(rf: RawFinding, sups: list[Suppression]) -> bool:
    hit = False
    for s in sups:
        if s.covers(rf.rule, rf.statement):
            s.used = True
            s.used_rules.add(rf.rule)
            hit = True
    return hit


def _audit(
    file: str, sups: list[Suppression], problems: list[SuppressionProblem], settings: SafetySettings
) -> list[Finding]:
    out = [
        _finding(p.rule, settings, file, p.line, p.column, p.message, p.help)
        for p in problems
        if settings.enabled(p.rule)
    ]
    if not settings.enabled("suppression-unused"):
        return out
    for s in sups:
        for rule in s.rules:
            # unknown rules are reported as such; a rule switched off in pyproject.toml cannot fire
            if rule in s.used_rules or rule in SUPPRESSION_RULES or not settings.enabled(rule):
                continue
            where = (
                "in this file"
                if s.scope == "file"
                else ("on the statement after it" if s.statement is not None else "(no statement follows it)")
            )
            out.append(
                _finding(
                    "suppression-unused",
                    settings,
                    file,
                    s.line,
                    s.column,
                    f"The ignore for `{rule}` suppresses nothing {where}; "
                    "a stale waiver hides the next real finding.",
                    "Remove the rule from the ignore (or the whole comment), "
                    "or move it directly above the statement.",
                )
            )
    return out
