"""The rehearsal: the new migrations applied to a throwaway PostgreSQL database, with the locks
they really took (``run.rehearse``; the modules beside it say what each part owns)."""

from validator.rehearsal.base import BaseStore, base_key
from validator.rehearsal.findings import (
    FAMILY,
    RULE_BASE_FAILED,
    RULE_BLOCKING_LOCK,
    RULE_DATA_DEPENDENT,
    RULE_FAILED,
    RULE_REWRITE,
)
from validator.rehearsal.outcome import DataProbeResult, RehearsedMigration
from validator.rehearsal.report import RehearsalResult
from validator.rehearsal.run import rehearse

__all__ = [
    "FAMILY",
    "RULE_BASE_FAILED",
    "RULE_BLOCKING_LOCK",
    "RULE_DATA_DEPENDENT",
    "RULE_FAILED",
    "RULE_REWRITE",
    "BaseStore",
    "DataProbeResult",
    "RehearsalResult",
    "RehearsedMigration",
    "base_key",
    "rehearse",
]
