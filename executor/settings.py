"""Run-time settings of the executor (CLI flags, ``[tool.schemagate]``, Lambda environment)."""

from __future__ import annotations

import functools
import re
import time
from dataclasses import dataclass, fields, replace
from typing import Any

from executor.errors import ConfigurationError

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_DURATION_RE = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")


@dataclass(frozen=True)
class ExecutorSettings:
    """How the executor applies: where its history table is, the session settings of every migration,
    its waits and what it tolerates (``[tool.schemagate.executor]``, the Lambda's environment)."""

    schema: str = "public"  # schema of the history table
    table: str = "schemagate_history"
    search_path: str | None = None  # e.g. "app, public"; None leaves the role's default
    lock_timeout: str = "5s"  # SET lock_timeout for every migration (PostgreSQL duration)
    statement_timeout: str = "30min"  # SET statement_timeout for every migration
    lock_retries: int = 3  # how often a migration that hit lock_timeout is retried
    lock_retry_backoff_s: float = 2.0  # first back-off, doubled each retry
    advisory_lock_wait_s: float = 60.0  # how long to wait for another executor to finish
    # a stalled network: the server ends the executor's session after this long without a word
    # from it (idle in a transaction, or holding the lock), releasing its locks; the client gives up
    # on an answer this much later than statement_timeout.  "0" turns both off.
    network_timeout: str = "10s"
    allow_out_of_order: bool = False
    allow_missing: bool = False  # applied versions absent from the bundle are tolerated
    run_id: str = "local"  # pipeline execution id, or "local"
    dry_run: bool = False
    # time.monotonic() by which every statement must have ended: the Lambda executor sets it to its
    # remaining invocation time minus a margin, so no statement outlives the function; None: no cap
    statement_deadline: float | None = None

    def __post_init__(self) -> None:
        for name in ("schema", "table"):
            value = getattr(self, name)
            if not _IDENT_RE.match(value):
                raise ConfigurationError(
                    f"{name} {value!r} is not a plain PostgreSQL identifier",
                    remedy="use letters, digits and '_' (at most 63 characters), starting with a letter",
                )
        for name in ("lock_timeout", "statement_timeout", "network_timeout"):
            value = getattr(self, name)
            if not _DURATION_RE.match(str(value).strip()):
                raise ConfigurationError(
                    f"{name} {value!r} is not a PostgreSQL duration",
                    remedy="write it like 5s, 500ms, 10min or 0",
                )
        network = duration_seconds(self.network_timeout)
        if network is not None and network < 1:
            raise ConfigurationError(
                f"network_timeout {self.network_timeout!r} is shorter than a second",
                remedy="set it to 1s or more (10s by default), or to 0 to turn it off",
            )
        if self.lock_retries < 0:
            raise ConfigurationError("lock_retries must be 0 or more", remedy="set lock_retries = 3")

    def with_overrides(self, **overrides: Any) -> ExecutorSettings:
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise ConfigurationError(
                f"unknown executor setting(s): {', '.join(sorted(unknown))}",
                remedy=f"known settings: {', '.join(sorted(known))}",
            )
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def capped_statement_timeout(self, value: str) -> tuple[str, bool]:
        """``value`` (a statement_timeout), or less when ``statement_deadline`` comes first; and
        whether the deadline capped it.  Asked as each migration starts, so the cap shrinks with
        the time left."""
        if self.statement_deadline is None:
            return value, False
        left_ms = max(1000, int((self.statement_deadline - time.monotonic()) * 1000))
        configured = duration_seconds(value)
        if configured is not None and configured * 1000 <= left_ms:
            return value, False
        return f"{left_ms}ms", True

    @property
    def network_timeout_s(self) -> float | None:
        return duration_seconds(self.network_timeout)

    def for_manifest(self, manifest: Any) -> ExecutorSettings:
        """These settings for a bundle: the ``search_path`` its migrations were validated with (the
        manifest records it) unless one is set here."""
        recorded = (manifest.extra or {}).get("search_path") if manifest is not None else None
        if self.search_path is None and isinstance(recorded, str) and recorded:
            return replace(self, search_path=recorded)
        return self

    @property
    def qualified_table(self) -> str:
        return f'"{self.schema}"."{self.table}"'


_UNIT_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|min|h|d)?\s*$")


@functools.lru_cache(maxsize=64)  # asked twice per migration, of the same few values
def duration_seconds(value: str) -> float | None:
    """A PostgreSQL duration in seconds (no unit: milliseconds, as for the timeouts); None for 0 (off)."""
    m = _DURATION.match(str(value))
    if not m:
        raise ConfigurationError(
            f"{value!r} is not a PostgreSQL duration", remedy="write it like 5s or 10min"
        )
    seconds = float(m.group(1)) * _UNIT_SECONDS[m.group(2) or "ms"]
    return seconds or None
