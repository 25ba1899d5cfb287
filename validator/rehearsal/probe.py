"""The probe: the executor's ``ApplyHooks`` around each new migration of a rehearsal.

``before_migration`` snapshots every relation's relfilenode; for a transactional migration
``before_commit`` reads the locks its own backend holds (nothing is released before COMMIT); a
non-transactional one is watched from a second connection (``locks.LockObserver``).  Relfilenodes
before and after tell which tables were rewritten; relations absent before were created by the
migration and are exempt.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from executor.apply import AppliedMigration, ApplyHooks
from executor.manifest import ManifestEntry
from executor.settings import ExecutorSettings
from validator.rehearsal.locks import (
    LockObserver,
    LockSample,
    RelationState,
    held_relation_locks,
    rewritten_tables,
    snapshot_relations,
    summarize_locks,
)
from validator.rehearsal.outcome import RehearsedMigration
from validator.rehearsal.server import connect, scalar

GATE_TIMEOUT_S = 1.0  # longest a non-transactional migration is held at the snapshot gate


def quote_ident(name: str) -> str:
    """As PostgreSQL's quote_ident shows a (non-keyword) identifier."""
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


@dataclass
class Watch:
    """What was seen of one new migration."""

    before: dict[int, RelationState] = field(default_factory=dict)
    held: LockSample = field(default_factory=dict)
    after: dict[int, RelationState] = field(default_factory=dict)
    observer: LockObserver | None = None
    started: float = 0.0
    probe_s: float = 0.0  # time spent in our own catalog queries inside the migration's transaction
    duration_ms: int | None = None
    done: bool = False


class Probe:
    """The executor's ApplyHooks for a rehearsal: snapshots and locks around each new migration."""

    def __init__(self, url: str, settings: ExecutorSettings, watched: set[str]) -> None:
        self.url = url
        self.watched = watched
        # the executor's own history table (its row goes in with each migration)
        self.exclude = {f"{quote_ident(settings.schema)}.{quote_ident(settings.table)}"}
        self.watches: dict[str, Watch] = {}
        self.current: str | None = None

    def hooks(self) -> ApplyHooks:
        return ApplyHooks(
            before_migration=self.before_migration,
            before_commit=self.before_commit,
            after_migration=self.after_migration,
        )

    def before_migration(self, conn: Connection, entry: ManifestEntry) -> None:
        self.current = entry.file
        if entry.file not in self.watched:
            return
        watch = self.watches[entry.file] = Watch()
        with conn.cursor() as cur:
            watch.before = snapshot_relations(cur)
            if not entry.transactional:
                pid = int(scalar(cur, "SELECT pg_backend_pid()"))
                # the gate must open well within lock_timeout: the statement waits on it
                watch.observer = LockObserver(lambda: connect(self.url), gate_timeout_s=GATE_TIMEOUT_S)
                watch.observer.start(pid)
        watch.started = time.perf_counter()

    def before_commit(self, cur: Cursor, entry: ManifestEntry) -> None:
        watch = self.watches.get(entry.file)
        if watch is None:
            return
        started = time.perf_counter()
        watch.held = held_relation_locks(cur)
        watch.after = snapshot_relations(cur)
        watch.probe_s += time.perf_counter() - started

    def after_migration(self, conn: Connection, entry: ManifestEntry, applied: AppliedMigration) -> None:
        watch = self.watches.get(entry.file)
        if watch is None:
            return
        watch.duration_ms = max(0, applied.duration_ms - round(watch.probe_s * 1000))
        if watch.observer is not None:
            watch.observer.stop()
            watch.held = watch.observer.held
        if not entry.transactional:
            with conn.cursor() as cur:
                watch.after = snapshot_relations(cur)
        watch.done = True

    def stop(self) -> None:
        for watch in self.watches.values():
            if watch.observer is not None:
                watch.observer.stop()

    def elapsed_ms(self, file: str) -> int | None:
        watch = self.watches.get(file)
        return round((time.perf_counter() - watch.started) * 1000) if watch and watch.started else None

    def result(self, entry: ManifestEntry) -> RehearsedMigration:
        watch = self.watches[entry.file]
        note = None
        obs = watch.observer
        if not entry.transactional:
            if obs is not None and obs.error:
                note = f"non-transactional: locks could not be observed ({obs.error})"
            elif obs is not None and obs.paused_on_gate:
                note = (
                    "non-transactional: locks observed from a second connection while it ran "
                    "(read while it waited for older snapshots to end, with all its locks held)"
                )
            else:
                note = (
                    "non-transactional: locks sampled from a second connection while it ran "
                    f"({obs.samples if obs else 0} samples); a lock held only briefly may be missing"
                )
        return RehearsedMigration(
            file=entry.file,
            duration_ms=watch.duration_ms,
            transactional=entry.transactional,
            locks=summarize_locks(watch.held, watch.before, watch.after, exclude=self.exclude),
            rewritten=rewritten_tables(watch.before, watch.after),
            note=note,
        )
