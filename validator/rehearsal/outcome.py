"""What a rehearsal saw of one new migration: applied (with its locks and rewrites), failed (at
the line PostgreSQL named), or not rehearsed (and why)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict

from validator.rehearsal.locks import LockInfo, LockSpan

if TYPE_CHECKING:
    from validator.findings import JSONObject

Status = Literal["applied", "failed", "not rehearsed"]
ProbeStatus = Literal["fails", "holds", "not probed"]


@dataclass
class DataProbeResult:
    """What the data probe (``data_probe``) saw of one data-dependent statement: with rows that break
    it, the statement ``fails`` (with the SQLSTATE and message) or ``holds`` (the migration fixes
    the rows first), or it was ``not probed`` (``note`` says why)."""

    line: int
    kind: str  # DataDependentStatement.kind
    table: str
    columns: list[str]
    status: ProbeStatus
    rows: str = ""  # "two rows with the same email differing only in case (...)"
    sqlstate: str | None = None
    message: str | None = None
    note: str | None = None
    fixed_earlier: bool = False  # the migration changes the table's rows before the statement

    def sentence(self) -> str:
        if self.status == "fails":
            return f"with {self.rows}, this statement fails: {self.sqlstate} {self.message}"
        if self.status == "holds":
            how = " (the migration fixes the rows before it)" if self.fixed_earlier else ""
            return f"with {self.rows}, this statement succeeds{how}"
        return f"not probed: {self.note}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "kind": self.kind,
            "table": self.table,
            "columns": list(self.columns),
            "status": self.status,
            "rows": self.rows,
            "sqlstate": self.sqlstate,
            "message": self.message,
            "note": self.note,
            "summary": self.sentence(),
        }


class FailureDetail(TypedDict):
    """Where and how a rehearsed migration failed (report.json's ``error``)."""

    sqlstate: str | None
    message: str
    line: int | None
    column: int | None
    category: str  # executor.errors.Category


@dataclass
class RehearsedMigration:
    file: str
    duration_ms: int | None
    transactional: bool
    locks: list[LockInfo] = field(default_factory=list)
    rewritten: list[str] = field(default_factory=list)  # relations whose relfilenode changed
    note: str | None = None
    status: Status = "applied"
    error: FailureDetail | None = None  # when failed
    # when it ran and when it held each lock, in ms since the first new migration started
    started_ms: int | None = None
    ended_ms: int | None = None
    lock_spans: list[LockSpan] = field(default_factory=list)
    # the data probe's results for its data-dependent statements (in a copy, before it ran)
    data_probes: list[DataProbeResult] = field(default_factory=list)

    @property
    def flagged(self) -> list[LockInfo]:
        return [li for li in self.locks if li.flagged]

    @property
    def notable(self) -> bool:
        """Worth a lock table of its own in report.md."""
        return self.status != "applied" or bool(self.flagged or self.rewritten) or not self.transactional

    def effect(self) -> str:
        """What it does, as the end of a sentence starting with the file name."""
        if self.status == "failed":
            err: Mapping[str, Any] = self.error or {}
            where = f" at line {err['line']}" if err.get("line") else ""
            state = f" (SQLSTATE {err['sqlstate']})" if err.get("sqlstate") else ""
            return f"fails{where}: {err.get('message') or ''}{state}".rstrip()
        if self.status != "applied":
            return f"was not rehearsed: {self.note}"
        locked = {li.relation for li in self.flagged}
        parts = []
        for li in self.flagged:
            rewrite = " and rewrites it" if li.relation in self.rewritten else ""
            parts.append(f"takes {li.mode} on {li.relation}{rewrite}")
        parts.extend(f"rewrites {rel}" for rel in self.rewritten if rel not in locked)
        return "; ".join(parts) if parts else "takes no lock that blocks writes on an existing table"

    def headline(self) -> str:
        """One sentence for the approver: "V044 takes ACCESS EXCLUSIVE on public.orders and rewrites it"."""
        return f"{self.file} {self.effect()}"

    def to_dict(self) -> JSONObject:
        return {
            "file": self.file,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "transactional": self.transactional,
            "locks": [li.to_dict() for li in self.locks],
            "rewritten": list(self.rewritten),
            "note": self.note,
            "error": self.error,
            "summary": self.headline(),
            "started_ms": self.started_ms,
            "ended_ms": self.ended_ms,
            "lock_spans": [sp.to_dict() for sp in self.lock_spans],
            "data_probes": [p.to_dict() for p in self.data_probes],
        }
