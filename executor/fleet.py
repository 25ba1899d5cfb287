"""A fleet: many databases (one per tenant, region, ...) that get the same approved bundle.

Each target is migrated exactly as a single database is: its own connection, its own advisory
lock and its own history table, so targets never wait for each other and a target that fails
fails alone.  The others complete; the fleet's result names every target that failed, and since
each history table remembers what was applied, running the fleet again finishes what failed and
leaves the rest untouched (they are up to date).

Two runners share this module's outcome and summary types:

- locally, ``schemagate apply --targets FILE --concurrency N`` reads one libpq URL per line
  (``read_targets_file``) and runs ``apply_to_target`` on a thread pool (``run_fleet``);
- in AWS, a Step Functions Map state invokes the executor Lambda once per target and writes the
  results to S3, which ``executor.fleet_pipeline`` reads back into the same ``TargetOutcome`` values.

Passwords never leave this module: a target is shown by its masked URL, and every error text is
scrubbed of the target's password before it is kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from executor.errors import Category, ConfigurationError, SchemagateError

if TYPE_CHECKING:
    from executor.bundle import Bundle
    from executor.settings import ExecutorSettings


class TargetStatus(StrEnum):
    """How one target of a fleet ended (in the order a summary counts them)."""

    APPLIED = "applied"
    PLANNED = "planned"
    UP_TO_DATE = "up to date"
    FAILED = "failed"


# the statuses by their old names
APPLIED = TargetStatus.APPLIED
UP_TO_DATE = TargetStatus.UP_TO_DATE
PLANNED = TargetStatus.PLANNED
FAILED = TargetStatus.FAILED
DEFAULT_CONCURRENCY = 4
MAX_CONCURRENCY = 64  # one connection per worker; beyond this a local run only queues in libpq


@dataclass(frozen=True)
class FleetTarget:
    name: str  # what is printed: the masked URL, or a tenant's name
    url: str = field(repr=False)  # a libpq URL (locally) or a secret ARN (in AWS); may hold a password
    line: int | None = None  # where the targets file lists it


@dataclass
class TargetOutcome:
    target: str  # FleetTarget.name
    status: TargetStatus
    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # a plan's migrations to apply
    duration_ms: float = 0.0
    category: str | None = None
    message: str | None = None  # the failure, without secrets
    remedy: str | None = None
    drift: str | None = None  # a plan's refusals ("none" when there are none)
    detail: dict[str, Any] = field(default_factory=dict)  # e.g. the plan report, the snapshot

    @property
    def failed(self) -> bool:
        return self.status == TargetStatus.FAILED

    def line(self, width: int = 0) -> str:
        name = self.target.ljust(width)
        took = f"{self.duration_ms / 1000:.1f} s"
        if self.failed:
            return f"  FAILED  {name}  [{self.category}] {self.message}"
        if self.status == TargetStatus.APPLIED:
            files = (
                ", ".join(self.applied)
                if len(self.applied) <= 3
                else f"{self.applied[0]} … {self.applied[-1]}"
            )
            return f"  ok      {name}  applied {len(self.applied)} ({files}) in {took}"
        if self.status == TargetStatus.PLANNED:
            return f"  ok      {name}  {len(self.pending)} pending" + (
                f" ({', '.join(self.pending)})" if self.pending else ""
            )
        return f"  ok      {name}  up to date"

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "status": self.status,
            "applied": self.applied,
            "pending": self.pending,
            "duration_ms": round(self.duration_ms, 1),
            "category": self.category,
            "message": self.message,
            "remedy": self.remedy,
            "drift": self.drift,
        }


@dataclass
class FleetResult:
    outcomes: list[TargetOutcome]  # in the order the targets were given
    duration_ms: float = 0.0

    @property
    def failed(self) -> list[TargetOutcome]:
        return [o for o in self.outcomes if o.failed]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.status] = counts.get(o.status, 0) + 1
        return counts

    def summary(self) -> str:
        """``12 targets: 10 applied, 1 up to date, 1 failed (tenant_07)``."""
        counts = self.counts()
        parts = [f"{counts[s]} {s}" for s in TargetStatus if counts.get(s)]
        text = f"{len(self.outcomes)} target{'s' if len(self.outcomes) != 1 else ''}: " + ", ".join(parts)
        if self.failed:
            text += " (" + ", ".join(o.target for o in self.failed) + ")"
        return text


def run_fleet(
    targets: Sequence[FleetTarget],
    work: Callable[[FleetTarget], TargetOutcome],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_done: Callable[[TargetOutcome], None] | None = None,
) -> FleetResult:
    """Run ``work`` on every target, ``concurrency`` at a time.  An exception in one target becomes
    that target's FAILED outcome; the others go on.  ``on_done`` sees each outcome as it completes
    (one at a time, so printing from it does not interleave)."""
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ConfigurationError(
            f"--concurrency {concurrency} is out of range",
            remedy=f"give a number of databases to migrate at once, 1 to {MAX_CONCURRENCY}",
        )
    started = time.monotonic()
    report_lock = threading.Lock()

    def one(target: FleetTarget) -> TargetOutcome:
        begun = time.monotonic()
        try:
            outcome = work(target)
        except SchemagateError as error:
            outcome = failed_outcome(target, error)
        except Exception as exc:  # a bug must not take the other targets down
            outcome = failed_outcome(
                target,
                ConfigurationError(
                    f"unexpected {type(exc).__name__}",
                    remedy="run this target alone (`schemagate apply --database-url ...`) to see the trace",
                ),
            )
        outcome.duration_ms = outcome.duration_ms or (time.monotonic() - begun) * 1000
        if on_done is not None:
            with report_lock:
                on_done(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=min(concurrency, max(1, len(targets)))) as pool:
        outcomes = list(pool.map(one, targets))
    return FleetResult(outcomes=outcomes, duration_ms=(time.monotonic() - started) * 1000)


def failed_outcome(target: FleetTarget, error: SchemagateError) -> TargetOutcome:
    from executor.connection import scrub

    where = f"{error.location()}: " if error.location() else ""
    message = scrub(f"{where}{error.message}", target.url)
    return TargetOutcome(
        target=target.name,
        status=TargetStatus.FAILED,
        applied=list(error.context.get("applied_before_failure") or []),
        category=error.category.value,
        message=message,
        remedy=scrub(error.remedy, target.url) if error.remedy else None,
    )


# --------------------------------------------------------------------------------------------
# the local runner: libpq URLs from a file


def read_targets_file(path: str | Path) -> list[FleetTarget]:
    """One libpq URL (or key=value DSN) per line; blank lines and ``#`` comments are ignored.

    Raises ConfigurationError naming the file and line for a line that is not a libpq URL, a
    target listed twice, or a file without targets.  Passwords are masked in every message."""
    import psycopg2
    import psycopg2.extensions

    from executor.connection import mask_url

    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"cannot read the targets file {source}: {type(exc).__name__}",
            file=str(source),
            remedy="pass a UTF-8 text file with one database URL per line",
        ) from None
    targets: list[FleetTarget] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        shown = mask_url(line)
        try:
            params = psycopg2.extensions.parse_dsn(line)
        except psycopg2.ProgrammingError:
            raise ConfigurationError(
                f"line {number} is not a libpq URL or DSN: {shown}",
                file=str(source),
                line=number,
                rule="fleet-targets",
                remedy="write one target per line, like postgresql://user:password@host:5432/dbname",
            ) from None
        key = repr(sorted((k, v) for k, v in params.items() if k != "password"))
        if key in seen:
            raise ConfigurationError(
                f"line {number} lists the same database as line {seen[key]}: {shown}",
                file=str(source),
                line=number,
                rule="fleet-targets",
                remedy="list each database once (a target migrated twice at once would only wait for its "
                "own lock)",
            )
        seen[key] = number
        targets.append(FleetTarget(name=shown, url=line, line=number))
    if not targets:
        raise ConfigurationError(
            f"the targets file {source} lists no database",
            file=str(source),
            remedy="write one database URL per line (lines starting with # are comments)",
        )
    return targets


def apply_to_target(target: FleetTarget, bundle: Bundle, settings: ExecutorSettings) -> TargetOutcome:
    """Apply ``bundle`` to one target on a connection of its own (its own lock and history)."""
    from executor.apply import apply
    from executor.connection import connect

    conn = connect(target.url)
    try:
        result = apply(conn, bundle, settings)
    finally:
        conn.close()
    applied = [a.entry.file for a in result.applied]
    return TargetOutcome(
        target=target.name,
        status=TargetStatus.APPLIED if applied else TargetStatus.UP_TO_DATE,
        applied=applied,
        pending=[e.file for e in result.remaining],
    )


def error_from_outcome(outcome: TargetOutcome) -> SchemagateError:
    """A failed outcome as the error the single-database path would have raised (for exit codes)."""
    category = (
        Category(outcome.category) if outcome.category and outcome.category in Category.__members__ else None
    )
    return SchemagateError(outcome.message or "failed", remedy=outcome.remedy, category=category)
