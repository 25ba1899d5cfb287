"""Inline suppressions: an ignore names the rule(s), gives a reason, and is audited.

```sql
-- schemagate:ignore ban-drop-column -- column unused since release 4.2
ALTER TABLE users DROP COLUMN legacy_flag;            -- the next statement only

ALTER TABLE users DROP COLUMN legacy_flag;  -- schemagate:ignore ban-drop-column -- unused since 4.2
                                                       -- (a trailing ignore: this statement)

-- schemagate:ignore-file prefer-robust-stmts -- one-off data repair, run once by hand before
                                                       -- (every statement of the file)
```

Several rules are separated by commas.  The reason follows a second ``--``.  An ignore without a
reason, naming a rule that does not exist, malformed, or suppressing nothing is itself a finding,
and every suppression is returned so the report can show the approver what was waived and why.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from executor.headers import LineCounter

if TYPE_CHECKING:
    from pglast.parser import Token

    from validator.parsed import ParsedFile

DIRECTIVE = re.compile(r"--[ \t]*schemagate:(?P<kind>[\w-]*)(?P<rest>[^\n]*)")
# ``-- schemagate:<kind>`` comments that belong to other parts (validator.parse reads ``set``)
OTHER_DIRECTIVES = ("set",)
_RULES_AND_REASON = re.compile(r"^(?P<rules>.*?)(?:--(?P<reason>.*))?$")


@dataclass
class Suppression:
    file: str
    line: int
    rules: tuple[str, ...]
    reason: str
    scope: Literal["statement", "file"]
    used: bool = False
    column: int = 1
    statement: int | None = None  # index of the statement it applies to (scope "statement")
    used_rules: set[str] = field(default_factory=set)

    def covers(self, rule: str, statement: int) -> bool:
        return rule in self.rules and (self.scope == "file" or self.statement == statement)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "rules": list(self.rules),
            "reason": self.reason,
            "scope": self.scope,
            "used": self.used,
        }


@dataclass(frozen=True)
class SuppressionProblem:
    rule: str  # suppression-missing-reason | suppression-unknown-rule | suppression-malformed
    line: int
    column: int
    message: str
    help: str


def _comments(text: str, tokens: Sequence[Token] | None) -> list[tuple[int, str]]:
    """``--`` comments as (offset, text), from the scanner so string literals and dollar-quoted bodies
    that merely contain ``--`` are never mistaken for comments."""
    if tokens:
        return [(t.start, text[t.start : t.end + 1]) for t in tokens if t.name == "SQL_COMMENT"]
    return [(m.start(), m.group(0)) for m in re.finditer(r"--[^\n]*", text)]


def _target_statement(file: ParsedFile, offset: int, trailing: bool) -> int | None:
    stmts = file.statements
    if trailing:  # code before the comment on its line: it is about that statement
        before = [s for s in stmts if s.start < offset]
        return before[-1].index if before else None
    for s in stmts:
        if s.end > offset:
            return s.index
    return None


def find_suppressions(
    file: ParsedFile, tokens: Sequence[Token] | None, known_rules: set[str]
) -> tuple[list[Suppression], list[SuppressionProblem]]:
    text = file.text
    found: list[Suppression] = []
    problems: list[SuppressionProblem] = []
    lines = LineCounter(text)
    for offset, comment in _comments(text, tokens):
        m = DIRECTIVE.match(comment)
        if m is None:
            continue
        line, column = lines.position(offset)
        kind = m.group("kind")
        if kind in OTHER_DIRECTIVES:
            continue
        parts = _RULES_AND_REASON.match(m.group("rest").strip())
        rules = tuple(r for r in re.split(r"[\s,]+", parts.group("rules").strip()) if r) if parts else ()
        reason = (parts.group("reason") or "").strip() if parts else ""
        example = "-- schemagate:ignore ban-drop-column -- column unused since release 4.2"
        if kind not in ("ignore", "ignore-file") or not rules:
            problems.append(
                SuppressionProblem(
                    "suppression-malformed",
                    line,
                    column,
                    f"`{m.group(0).strip()}` is not a suppression schemagate understands, "
                    "so it suppresses nothing.",
                    f"Write `{example}` (next statement) or `-- schemagate:ignore-file <rule> -- <reason>`.",
                )
            )
            continue
        unknown = [r for r in rules if r not in known_rules]
        for r in unknown:
            problems.append(
                SuppressionProblem(
                    "suppression-unknown-rule",
                    line,
                    column,
                    f"`{r}` is not a schemagate safety rule, so this ignore suppresses nothing for it.",
                    "Use a rule id from docs/rules.md (the id printed with each finding).",
                )
            )
        if not reason:
            problems.append(
                SuppressionProblem(
                    "suppression-missing-reason",
                    line,
                    column,
                    f"The ignore for {', '.join(rules)} gives no reason, "
                    "so the approver cannot judge the waiver.",
                    f"Add the reason after a second `--`: `{example}`.",
                )
            )
        scope: Literal["statement", "file"] = "file" if kind == "ignore-file" else "statement"
        trailing = bool(text[offset - (column - 1) : offset].strip())  # code before it on its line
        target = _target_statement(file, offset, trailing) if scope == "statement" else None
        found.append(
            Suppression(
                file=file.rel,
                line=line,
                rules=rules,
                reason=reason,
                scope=scope,
                column=column,
                statement=target,
            )
        )
    return found, problems
