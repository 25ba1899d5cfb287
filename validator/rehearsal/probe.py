"""The probe: the executor's ``ApplyHooks`` around each new migration of a rehearsal.

``before_migration`` snapshots every relation's relfilenode; for a transactional migration
``before_commit`` reads the locks its own backend holds (nothing is released before COMMIT); a
non-transactional one is watched from a second connection (``locks.LockObserver``).  Relfilenodes
before and after tell which tables were rewritten; relations absent before were created by the
migration and are exempt.

When each lock was held (``RehearsedMigration.lock_spans``, the report's gantt chart) is in ms
since the first new migration started.  A transactional migration's backend is polled from a
second connection while it runs (``locks.LockTimeline``: when each lock was first seen); what the
read before COMMIT shows was held until COMMIT.  A non-transactional one's spans are its
observer's samples, first to last.
"""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass, field

from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from executor.apply import AppliedMigration, ApplyHooks
from executor.manifest import ManifestEntry
from executor.settings import ExecutorSettings
from validator.rehearsal.locks import (
    LOCK_MODES,
    RELKINDS,
    LockObserver,
    LockSample,
    LockSpan,
    LockTimeline,
    RelationState,
    Seen,
    SpanSample,
    held_relation_locks,
    mode_label,
    resolve_relation,
    rewritten_tables,
    snapshot_relations,
    summarize_locks,
)
from validator.rehearsal.outcome import RehearsedMigration
from validator.rehearsal.server import connect

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
    seen: SpanSample = field(default_factory=dict)  # when each (relation, mode) was seen
    started: float = 0.0
    read_at: float = 0.0  # when before_commit read the locks (transactional)
    ended: float = 0.0  # after COMMIT (or when the failure was seen)
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
        self.origin: float | None = None  # perf_counter when the first watched migration started
        self.timeline = LockTimeline(lambda: connect(self.url))
        # time taken between migrations by something else (the data probe), left out of the times
        self.pauses: list[tuple[float, float]] = []

    def pause(self, seconds: float) -> None:
        """``seconds`` just spent outside the migrations: later times do not count them."""
        if self.origin is not None and seconds > 0:
            self.pauses.append((time.perf_counter(), seconds))

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
        pid = conn.get_backend_pid()
        with conn.cursor() as cur:
            watch.before = snapshot_relations(cur)
        if entry.transactional:
            self.timeline.begin(pid)
        else:
            # the gate must open well within lock_timeout: the statement waits on it
            watch.observer = LockObserver(lambda: connect(self.url), gate_timeout_s=GATE_TIMEOUT_S)
            watch.observer.start(pid)
        watch.started = time.perf_counter()
        if self.origin is None:
            self.origin = watch.started

    def before_commit(self, cur: Cursor, entry: ManifestEntry) -> None:
        watch = self.watches.get(entry.file)
        if watch is None:
            return
        started = watch.read_at = time.perf_counter()
        watch.held = held_relation_locks(cur)
        watch.after = snapshot_relations(cur)
        watch.probe_s += time.perf_counter() - started

    def after_migration(self, conn: Connection, entry: ManifestEntry, applied: AppliedMigration) -> None:
        watch = self.watches.get(entry.file)
        if watch is None:
            return
        watch.ended = time.perf_counter()
        watch.duration_ms = max(0, applied.duration_ms - round(watch.probe_s * 1000))
        if watch.observer is not None:
            watch.observer.stop()
            watch.held, watch.seen = watch.observer.held, watch.observer.spans
        else:
            watch.seen = self.timeline.end()
        if not entry.transactional:
            with conn.cursor() as cur:
                watch.after = snapshot_relations(cur)
        watch.done = True

    def stop(self) -> None:
        """After the executor returned or raised: the migration it was in (if it failed) keeps
        what was seen of it, ending now."""
        now = time.perf_counter()
        for watch in self.watches.values():
            if watch.done:
                continue
            watch.ended = watch.ended or now
            if watch.observer is not None:
                watch.observer.stop()
                watch.seen = watch.observer.spans
            elif watch.started:
                watch.seen = self.timeline.end()
        self.timeline.stop()

    def ms(self, at: float) -> int:
        """``at`` (perf_counter) in ms since the first watched migration started."""
        paused = sum(seconds for when, seconds in self.pauses if when <= at)
        return max(0, round((at - (self.origin or at) - paused) * 1000))

    def window(self, file: str) -> tuple[int | None, int | None]:
        """When the migration started and ended, in ms since the first one started."""
        watch = self.watches.get(file)
        if watch is None or not watch.started:
            return None, None
        return self.ms(watch.started), self.ms(watch.ended) if watch.ended else None

    def spans(self, entry: ManifestEntry) -> list[LockSpan]:
        """When the migration held each lock, within its own start and end."""
        watch = self.watches.get(entry.file)
        if watch is None or not watch.started:
            return []
        end = watch.ended or time.perf_counter()
        seen = {key: Seen(s.first, s.last, s.name, s.kind) for key, s in watch.seen.items()}
        if entry.transactional:
            if watch.read_at:  # what the backend held just before COMMIT, it held until COMMIT
                for oid, (mode, name, kind) in watch.held.items():
                    seen.setdefault((oid, mode), Seen(watch.read_at, watch.read_at, name, kind)).last = end
            # locks only accumulate in a transaction: on one relation, a weaker mode stands until
            # the next stronger one was first seen
            by_oid: dict[int, list[Seen]] = {}
            for (oid, _), s in seen.items():
                by_oid.setdefault(oid, []).append(s)
            for spans in by_oid.values():
                spans.sort(key=lambda s: s.first)
                for weaker, next_one in itertools.pairwise(spans):
                    weaker.last = max(weaker.last, next_one.first)
        out: list[LockSpan] = []
        for (oid, mode), s in seen.items():
            resolved = resolve_relation(oid, s.name, s.kind, watch.before, watch.after, self.exclude)
            if resolved is None:
                continue
            name, kind, existed = resolved
            first = min(max(s.first, watch.started), end)
            last = min(max(s.last, first), end)
            label, kind_name = mode_label(mode), RELKINDS.get(kind, kind)
            out.append(LockSpan(name, label, kind_name, existed, self.ms(first), self.ms(last)))
        strength = {mode_label(m): rank for rank, m in enumerate(LOCK_MODES)}
        return sorted(out, key=lambda sp: (sp.start_ms, -strength.get(sp.mode, 0), sp.relation))

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
        started_ms, ended_ms = self.window(entry.file)
        return RehearsedMigration(
            file=entry.file,
            duration_ms=watch.duration_ms,
            transactional=entry.transactional,
            locks=summarize_locks(watch.held, watch.before, watch.after, exclude=self.exclude),
            rewritten=rewritten_tables(watch.before, watch.after),
            note=note,
            started_ms=started_ms,
            ended_ms=ended_ms,
            lock_spans=self.spans(entry),
        )
