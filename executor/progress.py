"""What a run reports as it goes and hands back for each migration: ``Event``, ``AppliedMigration``,
and the ``ApplyHooks`` a caller may put around each migration (the rehearsal does)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from executor.manifest import ManifestEntry

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection
    from psycopg2.extensions import cursor as Cursor


@dataclass
class Event:
    """Progress of a run: waiting_for_lock, lock_acquired, start, notice, retry, invalid_index_dropped,
    applied, failed, stopped."""

    kind: str
    file: str | None = None
    message: str = ""
    duration_ms: int | None = None


@dataclass
class AppliedMigration:
    """A migration this run committed: how long it took, the server's notices, how many attempts."""

    entry: ManifestEntry
    duration_ms: int
    notices: list[str] = field(default_factory=list)
    attempts: int = 1


@dataclass
class ApplyHooks:
    """Optional calls around each migration (the rehearsal uses them).

    before_migration(conn, entry): before the migration starts, no transaction open.
    before_commit(cursor, entry): transactional migrations only — after its SQL and its history row,
        inside its transaction, before COMMIT; raising rolls the migration back and stops the run.
    after_migration(conn, entry, applied): after it was committed.
    """

    before_migration: Callable[[Connection, ManifestEntry], None] | None = None
    before_commit: Callable[[Cursor, ManifestEntry], None] | None = None
    after_migration: Callable[[Connection, ManifestEntry, AppliedMigration], None] | None = None
