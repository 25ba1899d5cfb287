"""The plan an approver reads: what ``apply`` would do to *this* database, and what it will lock.

``build_plan_report`` joins the plan (``executor.planning.plan``: pending migrations and refusals) with
the manifest's lock impact (``executor.impact``) and the target's own table statistics.  It reads
catalogs and the history table only: it creates nothing, takes no lock it would wait for, and
leaves no transaction open.

A report renders three ways:

- ``to_text()``: the full plan report, written to S3 and linked from the approval;
- ``output_variables(url)``: the CodePipeline output variables each approval reads (``pending``,
  ``summary``, ``drift``, ``plan_report``, ``plan_report_link``), short enough for the approval's
  custom data;
- ``to_dict()``: the same data as JSON (a fleet target's result, the direct invocation's answer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from executor.bundle import Bundle
from executor.errors import SchemagateError
from executor.impact import LOCK_MODES, LockImpact, TableStats, impact_from_manifest, table_stats
from executor.planning import Plan

# the approval's custom data holds about 500 characters with its variables resolved: its own text,
# the bundle hash and commit take ~280 of them
SUMMARY_MAX = 160
DRIFT_MAX = 200
NO_DRIFT = "none"


@dataclass(frozen=True)
class ImpactLine:
    lock: LockImpact
    stats: TableStats | None

    def describe(self) -> str:
        where = f" ({self.stats.describe()})" if self.stats is not None else ""
        return f"{self.lock.describe()}{where}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {**self.lock.to_dict(), "text": self.describe()}
        if self.stats is not None:
            data.update(exists=self.stats.exists, bytes=self.stats.bytes, rows=self.stats.rows)
        return data


@dataclass(frozen=True)
class PendingMigration:
    file: str
    why: str  # pending | out of order | repeatable new | repeatable changed
    transactional: bool
    impact: tuple[ImpactLine, ...] | None  # None: the bundle does not record this file's impact

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "why": self.why,
            "transactional": self.transactional,
            "impact": None if self.impact is None else [line.to_dict() for line in self.impact],
        }


@dataclass
class PlanReport:
    database: str  # user@host:port/dbname, never a password
    bundle_sha256: str
    source: dict[str, Any]
    pending: list[PendingMigration]
    refusals: list[SchemagateError]
    applied: int
    environment: str | None = None
    impact_recorded: bool = True  # the bundle carries the validator's lock impact
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def drifted(self) -> bool:
        return bool(self.refusals)

    def drift(self) -> str:
        """``none``, or each refusal as ``file: rule`` (shortened)."""
        if not self.refusals:
            return NO_DRIFT
        parts = [f"{r.file or '-'}: {r.rule or r.category.value}" for r in self.refusals]
        return _shorten("; ".join(parts), DRIFT_MAX)

    def summary(self) -> str:
        """One line: the count, the files (shortened), the strongest lock with the table's size."""
        if self.refusals:
            return _shorten(f"refused: {self.drift()}", SUMMARY_MAX)
        if not self.pending:
            return f"up to date: nothing to apply ({self.applied} applied)"
        heaviest = self._heaviest()
        tail = _shorten(f"; heaviest: {heaviest.describe()}", SUMMARY_MAX // 2) if heaviest else ""
        head = f"{len(self.pending)} pending: " + ", ".join(p.file for p in self.pending)
        return _shorten(head, SUMMARY_MAX - len(tail)) + tail

    def _heaviest(self) -> ImpactLine | None:
        lines = [line for p in self.pending for line in p.impact or ()]
        if not lines:
            return None
        return max(
            lines,
            key=lambda line: (
                LOCK_MODES.index(line.lock.lock),
                line.lock.rewrite,
                (line.stats.bytes or 0) if line.stats else 0,
            ),
        )

    def output_variables(self, report_url: str | None, *, region: str | None = None) -> dict[str, str]:
        return {
            "pending": str(len(self.pending)),
            "summary": self.summary(),
            "drift": self.drift(),
            "plan_report": report_url or "",
            "plan_report_link": console_link(report_url, region) if report_url else "",
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.environment,
            "database": self.database,
            "bundle_sha256": self.bundle_sha256,
            "source": self.source,
            "created_at": self.created_at,
            "applied": self.applied,
            "pending": [p.to_dict() for p in self.pending],
            "drift": self.drift(),
            "refusals": [{k: v for k, v in r.to_dict().items() if k != "context"} for r in self.refusals],
            "impact_recorded": self.impact_recorded,
            "summary": self.summary(),
        }

    def to_text(self) -> str:
        commit = self.source.get("commit")
        lines = [
            f"schemagate plan{f' for {self.environment}' if self.environment else ''}",
            f"database: {self.database}",
            f"bundle:   {self.bundle_sha256}" + (f" (commit {commit})" if commit else ""),
            f"planned:  {self.created_at}",
            "",
        ]
        if self.refusals:
            lines.append(f"REFUSED: {len(self.refusals)} problem(s); nothing would be applied")
            for r in self.refusals:
                lines.append(f"  - {r}".replace("\n", "\n    "))
            lines.append("")
        if not self.pending:
            lines.append(f"nothing to apply: the database is up to date ({self.applied} applied)")
        else:
            count = len(self.pending)
            lines.append(f"{count} migration(s) to apply, in this order ({self.applied} applied):")
            width = max(len(p.file) for p in self.pending)
            for p in self.pending:
                note = "" if p.transactional else "; runs outside a transaction"
                lines.append(f"  {p.file.ljust(width)}  ({p.why}{note})")
                if p.impact is None:
                    lines.append("      impact: not recorded in the bundle (validated without it)")
                elif not p.impact:
                    lines.append("      takes no lock that blocks writes on an existing table")
                for line in p.impact or ():
                    lines.append(f"      {line.describe()}")
        if not self.impact_recorded:
            lines += [
                "",
                "The bundle records no lock impact (validated by a schemagate without it, or without "
                "rehearsal and safety rules): the plan cannot say what each migration locks.",
            ]
        return "\n".join(lines) + "\n"


def build_plan_report(
    conn: Any,
    bundle: Bundle,
    plan: Plan,
    *,
    database: str,
    environment: str | None = None,
) -> PlanReport:
    """The report for ``plan`` of ``bundle`` on ``conn``'s database (reads its statistics)."""
    impact = impact_from_manifest(bundle.manifest.extra)
    relations = [item.relation for entry, _ in plan.to_apply for item in (impact or {}).get(entry.file, [])]
    stats = table_stats(conn, relations) if relations else {}
    pending = []
    for entry, why in plan.to_apply:
        recorded = None if impact is None else impact.get(entry.file, [])
        lines = None
        if recorded is not None:
            lines = tuple(ImpactLine(lock=item, stats=stats.get(item.relation)) for item in recorded)
        pending.append(
            PendingMigration(file=entry.file, why=why, transactional=entry.transactional, impact=lines)
        )
    applied = sum(1 for i in plan.infos if i.state.value == "applied")
    return PlanReport(
        database=database,
        bundle_sha256=bundle.bundle_sha256,
        source=dict(bundle.manifest.source),
        pending=pending,
        refusals=list(plan.refusals),
        applied=applied,
        environment=environment,
        impact_recorded=impact is not None,
    )


def console_link(s3_url: str, region: str | None) -> str:
    """The S3 console page of an ``s3://bucket/key`` object (what the approval's link opens)."""
    bucket, _, key = s3_url.removeprefix("s3://").partition("/")
    query = f"region={region}&" if region else ""
    prefix = quote(key, safe="")
    return f"https://s3.console.aws.amazon.com/s3/object/{bucket}?{query}bucketType=general&prefix={prefix}"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
