"""The one finding type every check produces and every reporter renders (docs/architecture.md)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, TypeAlias

# a JSON object of report.json (a section's, the bundle's, the whole document): what json.dumps writes
JSONObject: TypeAlias = dict[str, Any]

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

    def to_dict(self) -> JSONObject:
        return asdict(self)

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file or "", self.line or 0, self.column or 0, self.family, self.rule)


def count_by_severity(findings: Iterable[Finding]) -> dict[str, int]:
    counts = Counter(f.severity for f in findings)
    return {ERROR: counts.get(ERROR, 0), WARNING: counts.get(WARNING, 0)}


def is_blocking(finding: Finding, blocking_severity: str = ERROR) -> bool:
    """Whether ``finding`` stops the bundle and fails the build: an error always, a warning too when
    ``blocking_severity`` (``[tool.schemagate] blocking_severity``) is "warning"."""
    return finding.severity == ERROR or blocking_severity == WARNING


def blocking_findings(findings: Iterable[Finding], blocking_severity: str = ERROR) -> list[Finding]:
    """The findings that stop the bundle (``is_blocking``), in their order."""
    return [f for f in findings if is_blocking(f, blocking_severity)]


def has_errors(findings: Iterable[Finding], blocking: str = ERROR) -> bool:
    """True when any finding blocks (``is_blocking``) at the blocking severity ``blocking``."""
    return any(is_blocking(f, blocking) for f in findings)


def docs_link(page: str, anchor: str | None = None) -> str:
    return f"{DOCS_BASE}/{page}" + (f"#{anchor}" if anchor else "")
