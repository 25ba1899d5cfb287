"""The one finding type every check produces and every reporter renders (docs/architecture.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

FAMILIES = ("naming", "order", "syntax", "lint", "safety", "rehearsal", "integrity")
ERROR = "error"
WARNING = "warning"
SEVERITIES = (ERROR, WARNING)
DOCS_BASE = "https://github.com/schemagate/schemagate/blob/main/docs"


@dataclass(frozen=True)
class Finding:
    rule: str  # kebab-case id, e.g. "naming-malformed", "require-concurrent-index-creation"
    family: str  # one of FAMILIES
    severity: str  # "error" | "warning"
    file: str | None  # path relative to the migrations directory (None: about the whole run)
    line: int | None  # 1-based, None when about the whole file
    column: int | None  # 1-based
    message: str  # what is wrong and its consequence
    help: str = ""  # what to do about it
    docs: str = ""  # link to the rule's documentation

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown finding family {self.family!r}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"unknown severity {self.severity!r}")

    @property
    def location(self) -> str:
        loc = self.file or "-"
        if self.line is not None:
            loc += f":{self.line}"
            loc += f":{self.column if self.column is not None else 1}"
        return loc

    def with_severity(self, severity: str) -> Finding:
        return replace(self, severity=severity)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def sort_key(self) -> tuple:
        return (self.file or "", self.line or 0, self.column or 0, self.family, self.rule)


def count_by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    counts = Counter(f.severity for f in findings)
    return {ERROR: counts.get(ERROR, 0), WARNING: counts.get(WARNING, 0)}


def has_errors(findings: Iterable[Finding], blocking: str = ERROR) -> bool:
    """True when any finding is at or above the blocking severity."""
    blocking_set = {ERROR} if blocking == ERROR else {ERROR, WARNING}
    return any(f.severity in blocking_set for f in findings)


def docs_link(page: str, anchor: str | None = None) -> str:
    return f"{DOCS_BASE}/{page}" + (f"#{anchor}" if anchor else "")
