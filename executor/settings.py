"""Run-time settings of the executor (CLI flags, ``[tool.schemagate]``, Lambda environment)."""

from __future__ import annotations

import re
from dataclasses import dataclass, fields, replace
from typing import Any

from executor.errors import ConfigurationError

_IDENT_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
_DURATION_RE = re.compile(r"^\d+(\.\d+)?\s*(us|ms|s|min|h|d)?$")


@dataclass(frozen=True)
class ExecutorSettings:
    schema: str = "public"  # schema of the history table
    table: str = "schemagate_history"
    search_path: str | None = None  # e.g. "app, public"; None leaves the role's default
    lock_timeout: str = "5s"  # SET lock_timeout for every migration (PostgreSQL duration)
    statement_timeout: str = "30min"  # SET statement_timeout for every migration
    lock_retries: int = 3  # how often a migration that hit lock_timeout is retried
    lock_retry_backoff_s: float = 2.0  # first back-off, doubled each retry
    advisory_lock_wait_s: float = 60.0  # how long to wait for another executor to finish
    allow_out_of_order: bool = False
    allow_missing: bool = False  # applied versions absent from the bundle are tolerated
    run_id: str = "local"  # pipeline execution id, or "local"
    dry_run: bool = False

    def __post_init__(self) -> None:
        for name in ("schema", "table"):
            value = getattr(self, name)
            if not _IDENT_RE.match(value):
                raise ConfigurationError(
                    f"{name} {value!r} is not a plain PostgreSQL identifier",
                    remedy="use letters, digits and '_' (at most 63 characters), starting with a letter",
                )
        for name in ("lock_timeout", "statement_timeout"):
            value = getattr(self, name)
            if not _DURATION_RE.match(str(value).strip()):
                raise ConfigurationError(
                    f"{name} {value!r} is not a PostgreSQL duration",
                    remedy="write it like 5s, 500ms, 10min or 0",
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

    @property
    def qualified_table(self) -> str:
        return f'"{self.schema}"."{self.table}"'
