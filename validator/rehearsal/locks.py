"""What a rehearsed migration did to the relations around it: the locks its backend held and the
tables it rewrote.

Plain psycopg2 over the catalogs; the rehearsal's probe (``validator.rehearsal.probe``) decides
when to look.

- ``snapshot_relations`` records every user relation with its ``relfilenode``; comparing the
  snapshot taken before a migration with one taken after it tells which tables were rewritten
  (a new relfilenode) and which relations the migration created (absent before: exempt).
- ``held_relation_locks`` reads ``pg_locks`` for one backend: the strongest granted mode per
  relation.  A transactional migration is read from its own connection just before COMMIT, so
  nothing it took has been released yet.
- ``LockTimeline`` polls the backend of the transactional migrations from a second connection
  while each runs, so the report can say *when* each lock was first held (``LockSpan``; the
  read before COMMIT says it was held until COMMIT).
- ``LockObserver`` watches a non-transactional migration (``CREATE INDEX CONCURRENTLY`` ...) from
  a second connection.  A poll alone can miss a statement that takes milliseconds, so the
  observer also holds a *snapshot gate*: a REPEATABLE READ transaction opened before the
  migration starts.  ``CREATE/REINDEX ... CONCURRENTLY`` waits for every older snapshot to end, so
  it pauses on the gate with all its locks held; the observer reads them and then lets it go.
  Statements that never wait are sampled by the poll, best effort, and the report says so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

if TYPE_CHECKING:
    from validator.findings import JSONObject

# pg_locks.mode values, weakest first (PostgreSQL manual, "Table-Level Lock Modes")
LOCK_MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
_STRENGTH = {mode: rank for rank, mode in enumerate(LOCK_MODES)}

# SHARE and everything stronger conflicts with ROW EXCLUSIVE: while it is held, nobody can
# INSERT/UPDATE/DELETE the table (ACCESS EXCLUSIVE also stops reads).  The issue names ACCESS
# EXCLUSIVE, SHARE and SHARE ROW EXCLUSIVE; EXCLUSIVE sits between them and blocks writes too.
FLAG_FROM = "ShareLock"

RELKINDS = {
    "r": "table",
    "p": "partitioned table",
    "m": "materialized view",
    "i": "index",
    "I": "partitioned index",
    "S": "sequence",
    "v": "view",
    "c": "type",
    "f": "foreign table",
    "t": "toast table",
}
TABLE_KINDS = ("r", "p", "m", "f")  # locks on these are what blocks an application
_TABLE_KIND_NAMES = frozenset(RELKINDS[k] for k in TABLE_KINDS)
REWRITABLE_KINDS = ("r", "m")  # kinds with storage whose new relfilenode means a rewrite

# catalogs, TOAST and temporary schemas are never what a reviewer needs to hear about
_USER_SCHEMA_SQL = "(n.nspname <> 'information_schema' AND n.nspname !~ '^pg_(catalog$|toast|temp_)')"
_QUALIFIED_SQL = "quote_ident(n.nspname) || '.' || quote_ident(c.relname)"


def mode_label(mode: str) -> str:
    """``AccessExclusiveLock`` -> ``ACCESS EXCLUSIVE`` (the spelling of LOCK TABLE and the manual)."""
    name = mode.removesuffix("Lock")
    words: list[str] = []
    for ch in name:
        if ch.isupper() and words:
            words.append(" ")
        words.append(ch.upper())
    return "".join(words)


def stronger(a: str | None, b: str) -> str:
    """The stronger of two pg_locks modes (``a`` may be None)."""
    if a is None:
        return b
    return b if _STRENGTH.get(b, -1) > _STRENGTH.get(a, -1) else a


def blocks_writes(mode: str) -> bool:
    return _STRENGTH.get(mode, -1) >= _STRENGTH[FLAG_FROM]


def lock_effect(mode: str) -> str:
    """What a write-blocking ``mode`` (as ``mode_label`` spells it) does to the others."""
    return "blocks reads and writes" if mode == "ACCESS EXCLUSIVE" else "blocks writes"


# The manual's "Conflicting Lock Modes" table: the modes (``mode_label`` spelling) each mode
# conflicts with.  The table is symmetric; test_rehearsal_gantt checks that it is.
_AS, _RS, _RE, _SUE = "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE", "SHARE UPDATE EXCLUSIVE"
_S, _SRE, _E, _AE = "SHARE", "SHARE ROW EXCLUSIVE", "EXCLUSIVE", "ACCESS EXCLUSIVE"
CONFLICTS: dict[str, frozenset[str]] = {
    _AS: frozenset({_AE}),
    _RS: frozenset({_E, _AE}),
    _RE: frozenset({_S, _SRE, _E, _AE}),
    _SUE: frozenset({_SUE, _S, _SRE, _E, _AE}),
    _S: frozenset({_RE, _SUE, _SRE, _E, _AE}),
    _SRE: frozenset({_RE, _SUE, _S, _SRE, _E, _AE}),
    _E: frozenset({_RS, _RE, _SUE, _S, _SRE, _E, _AE}),
    _AE: frozenset({_AS, _RS, _RE, _SUE, _S, _SRE, _E, _AE}),
}


def what_it_blocks(mode: str) -> str:
    """What a lock in ``mode`` (``mode_label`` spelling) makes others wait for, derived from
    ``CONFLICTS`` by the weakest statement it stops: SELECT takes ACCESS SHARE, SELECT FOR UPDATE
    ROW SHARE, INSERT/UPDATE/DELETE ROW EXCLUSIVE, VACUUM and CREATE INDEX CONCURRENTLY SHARE
    UPDATE EXCLUSIVE, CREATE INDEX SHARE, most ALTER TABLE forms ACCESS EXCLUSIVE."""
    conflicts = CONFLICTS.get(mode, frozenset())
    if "ACCESS SHARE" in conflicts:
        return "blocks reads and writes"
    if "ROW SHARE" in conflicts:
        return "blocks writes and SELECT FOR UPDATE"
    if "ROW EXCLUSIVE" in conflicts:
        return "blocks writes, not reads"
    if "SHARE UPDATE EXCLUSIVE" in conflicts:
        return "blocks VACUUM and DDL, not reads or writes"
    if "SHARE" in conflicts:
        return "blocks CREATE INDEX and DDL, not reads or writes"
    if conflicts:  # ACCESS SHARE, ROW SHARE: only ACCESS EXCLUSIVE (and EXCLUSIVE) wait for them
        return "blocks ALTER TABLE and DROP, not reads or writes"
    return "blocks nothing"


@dataclass(frozen=True)
class RelationState:
    oid: int
    name: str  # schema-qualified, quoted only where PostgreSQL would need it
    kind: str  # pg_class.relkind
    relfilenode: int
    table: str | None = None  # for an index: the table it belongs to


@dataclass(frozen=True)
class LockInfo:
    """The strongest lock a migration held on one relation."""

    relation: str
    mode: str  # "ACCESS EXCLUSIVE", "SHARE", ...
    existed_before: bool
    flagged: bool  # a write-blocking mode on a table that existed before the migration
    kind: str = "table"  # "table", "index", "sequence", ... (RELKINDS)

    def to_dict(self) -> JSONObject:
        return asdict(self)


@dataclass(frozen=True)
class LockSpan:
    """A lock a migration held on one relation, and when: from the first to the last time it
    was seen as the strongest mode on that relation, in ms since the rehearsal's first new
    migration started (``validator.rehearsal.probe``)."""

    relation: str
    mode: str  # "ACCESS EXCLUSIVE", "SHARE", ...
    kind: str  # "table", "index", ... (RELKINDS)
    existed_before: bool
    start_ms: int
    end_ms: int

    @property
    def blocks(self) -> str:
        return what_it_blocks(self.mode)

    @property
    def on_existing_table(self) -> bool:
        return self.existed_before and self.kind in _TABLE_KIND_NAMES

    def to_dict(self) -> JSONObject:
        return {**asdict(self), "blocks": self.blocks}


def snapshot_relations(cur: Cursor) -> dict[int, RelationState]:
    """Every relation outside the system schemas, by oid."""
    cur.execute(
        f"""
        SELECT c.oid, {_QUALIFIED_SQL}, c.relkind, c.relfilenode,
               quote_ident(tn.nspname) || '.' || quote_ident(t.relname)
          FROM pg_class c
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_index i ON i.indexrelid = c.oid
          LEFT JOIN pg_class t ON t.oid = i.indrelid
          LEFT JOIN pg_namespace tn ON tn.oid = t.relnamespace
         WHERE {_USER_SCHEMA_SQL}
        """
    )
    return {
        oid: RelationState(oid, name, kind, relfilenode, table)
        for oid, name, kind, relfilenode, table in cur.fetchall()
    }


LockSample = dict[int, tuple[str, "str | None", "str | None"]]  # oid -> (mode, name, relkind)


def held_relation_locks(cur: Cursor, pid: int | None = None) -> LockSample:
    """Granted relation locks of backend ``pid`` (default: this connection) in this database:
    oid -> (strongest mode, qualified name where visible, relkind where visible).  Locks on
    catalogs and TOAST tables are left out."""
    cur.execute(
        f"""
        SELECT l.relation::oid, l.mode, c.oid IS NULL OR {_USER_SCHEMA_SQL},
               CASE WHEN c.oid IS NOT NULL THEN {_QUALIFIED_SQL} END, c.relkind
          FROM pg_locks l
          LEFT JOIN pg_class c ON c.oid = l.relation
          LEFT JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE l.locktype = 'relation' AND l.granted
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND l.pid = COALESCE(%s, pg_backend_pid())
        """,
        (pid,),
    )
    held: LockSample = {}
    for oid, mode, user_relation, name, kind in cur.fetchall():
        if not user_relation:
            continue
        previous = held.get(oid)
        held[oid] = (stronger(previous[0] if previous else None, mode), name, kind)
    return held


def merge_samples(into: LockSample, sample: LockSample) -> None:
    """Keep the strongest mode per relation over several samples (and any name seen)."""
    for oid, (mode, name, kind) in sample.items():
        prev = into.get(oid)
        if prev is None:
            into[oid] = (mode, name, kind)
        else:
            into[oid] = (stronger(prev[0], mode), name or prev[1], kind or prev[2])


def resolve_relation(
    oid: int,
    name: str | None,
    kind: str | None,
    before: dict[int, RelationState],
    after: dict[int, RelationState],
    exclude: Collection[str] = (),
) -> tuple[str, str, bool] | None:
    """(qualified name, pg_class.relkind, existed before) of a locked relation, or None for one
    to leave out: unnamed (a catalog or a temporary object), or in ``exclude`` (relation names;
    an index of an excluded table is left out too)."""
    state = before.get(oid) or after.get(oid)
    rel_name = state.name if state else name
    if rel_name is None:  # an unnamed relation neither snapshot knows
        return None
    owner = state.table if state else None
    if rel_name in exclude or (owner is not None and owner in exclude):
        return None
    return rel_name, state.kind if state else (kind or "r"), oid in before


def summarize_locks(
    held: LockSample,
    before: dict[int, RelationState],
    after: dict[int, RelationState],
    *,
    exclude: Collection[str] = (),
) -> list[LockInfo]:
    """One LockInfo per relation (``exclude``: relation names, and indexes of those, to leave
    out), flagged ones first, then by strength and name."""
    ranked: list[tuple[bool, int, str, LockInfo]] = []
    for oid, (mode, name, kind) in held.items():
        resolved = resolve_relation(oid, name, kind, before, after, exclude)
        if resolved is None:
            continue
        rel_name, rel_kind, existed = resolved
        flagged = existed and rel_kind in TABLE_KINDS and blocks_writes(mode)
        info = LockInfo(rel_name, mode_label(mode), existed, flagged, RELKINDS.get(rel_kind, rel_kind))
        ranked.append((not flagged, -_STRENGTH.get(mode, 0), rel_name, info))
    return [info for *_, info in sorted(ranked, key=lambda r: r[:3])]


@dataclass
class Seen:
    """When one (relation, mode) was seen as the strongest lock on the relation (perf_counter)."""

    first: float
    last: float
    name: str | None = None
    kind: str | None = None


SpanSample = dict[tuple[int, str], Seen]  # (oid, pg_locks mode) -> first and last seen


def record_spans(into: SpanSample, sample: LockSample, at: float) -> None:
    """Note that each relation of ``sample`` was held in its (strongest) mode at time ``at``."""
    for oid, (mode, name, kind) in sample.items():
        seen = into.get((oid, mode))
        if seen is None:
            into[(oid, mode)] = Seen(at, at, name, kind)
        else:
            seen.first, seen.last = min(seen.first, at), max(seen.last, at)
            seen.name, seen.kind = seen.name or name, seen.kind or kind


def _sample(cur: Cursor, pid: int, spans: SpanSample) -> LockSample:
    started = time.perf_counter()
    sample = held_relation_locks(cur, pid)
    record_spans(spans, sample, (started + time.perf_counter()) / 2)
    return sample


def rewritten_tables(before: dict[int, RelationState], after: dict[int, RelationState]) -> list[str]:
    """Tables and materialized views that existed before and now have another relfilenode."""
    return sorted(
        state.name
        for oid, state in before.items()
        if state.kind in REWRITABLE_KINDS
        and oid in after
        and state.relfilenode != 0
        and after[oid].relfilenode != state.relfilenode
    )


class LockObserver:
    """Watch another backend's relation locks from a second connection while it runs.

    ``start(pid)`` must be called before the watched statement begins (so the snapshot gate is
    older than it); ``stop()`` after it returned.  ``held`` then holds the strongest mode per
    relation over all samples; ``spans`` when each (relation, mode) was seen; ``paused_on_gate``
    says whether the statement was seen waiting on the gate (its locks were then read while all
    of them were held).
    """

    def __init__(
        self, connect: Callable[[], Connection], *, interval_s: float = 0.002, gate_timeout_s: float = 10.0
    ) -> None:
        self._connect = connect  # a new connection to the rehearsal database
        self.interval_s = interval_s
        self.gate_timeout_s = gate_timeout_s
        self.held: LockSample = {}
        self.spans: SpanSample = {}
        self.samples = 0
        self.paused_on_gate = False
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._gate: Connection | None = None
        self._gate_vxid: str | None = None
        self._poll: Connection | None = None

    def start(self, pid: int) -> None:
        self._gate = self._connect()
        self._gate.set_session(isolation_level="REPEATABLE READ", autocommit=False)
        with self._gate.cursor() as cur:  # the first query takes the snapshot that holds the gate
            cur.execute(
                "SELECT virtualtransaction FROM pg_locks"
                " WHERE pid = pg_backend_pid() AND locktype = 'virtualxid'"
            )
            row = cur.fetchone()
            self._gate_vxid = row[0] if row else None
        poll = self._poll = self._connect()
        poll.autocommit = True
        self._thread = threading.Thread(
            target=self._run, args=(poll, pid), name="rehearsal-observer", daemon=True
        )
        self._thread.start()

    def _release_gate(self) -> None:
        if self._gate is not None and not self._gate.closed:
            self._gate.rollback()

    def _run(self, poll: Connection, pid: int) -> None:
        deadline = time.monotonic() + self.gate_timeout_s
        try:
            with poll.cursor() as cur:
                while not self._stop.is_set():
                    merge_samples(self.held, _sample(cur, pid, self.spans))
                    self.samples += 1
                    if not self.paused_on_gate and self._gate_vxid is not None:
                        cur.execute(
                            "SELECT 1 FROM pg_locks WHERE pid = %s AND locktype = 'virtualxid' "
                            "AND NOT granted AND virtualxid = %s",
                            (pid, self._gate_vxid),
                        )
                        waiting = cur.fetchone() is not None
                        if waiting:  # paused with every lock it took so far: read them, then let it go
                            merge_samples(self.held, _sample(cur, pid, self.spans))
                            self.samples += 1
                            self.paused_on_gate = True
                        if waiting or time.monotonic() > deadline:
                            self._release_gate()
                            self._gate_vxid = None
                    self._stop.wait(self.interval_s)
        except Exception as exc:  # the report says what could not be observed; the rehearsal goes on
            self.error = f"{type(exc).__name__}: {exc}".strip()
            self._release_gate()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for conn in (self._gate, self._poll):
            if conn is not None and not conn.closed:
                conn.close()


class LockTimeline:
    """Poll one backend's relation locks from a second connection, while a migration is marked.

    One connection and one thread serve every transactional migration of a rehearsal:
    ``begin(pid)`` before the migration starts, ``end()`` once it committed (or failed) returns
    when each (relation, mode) was seen.  The poll interval grows with the migration's age
    (``min_interval_s`` up to ``max_interval_s``, about 1% of the time it has run), so a
    migration of milliseconds is sampled finely and a backfill of minutes does not load the
    server.  Samples in flight when ``end`` is called are dropped.  A failure of the second
    connection is kept in ``error``; the migration goes on.
    """

    def __init__(
        self,
        connect: Callable[[], Connection],
        *,
        min_interval_s: float = 0.002,
        max_interval_s: float = 0.1,
    ) -> None:
        self._connect = connect
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self.error: str | None = None
        self.samples = 0
        self._mutex = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pid: int | None = None
        self._generation = 0
        self._since = 0.0
        self._spans: SpanSample = {}
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None

    def begin(self, pid: int) -> None:
        with self._mutex:
            self._pid, self._since, self._spans = pid, time.perf_counter(), {}
            self._generation += 1
        if self._thread is None and self.error is None:
            self._thread = threading.Thread(target=self._run, name="rehearsal-timeline", daemon=True)
            self._thread.start()
        self._wake.set()

    def end(self) -> SpanSample:
        with self._mutex:
            spans, self._spans, self._pid = self._spans, {}, None
            self._generation += 1
        return spans

    def _run(self) -> None:
        try:
            conn = self._conn = self._connect()
            conn.autocommit = True
            with conn.cursor() as cur:
                while not self._stop.is_set():
                    with self._mutex:
                        pid, generation, since = self._pid, self._generation, self._since
                    if pid is None:
                        self._wake.wait(0.5)
                        self._wake.clear()
                        continue
                    started = time.perf_counter()
                    sample = held_relation_locks(cur, pid)
                    now = time.perf_counter()
                    with self._mutex:
                        if generation == self._generation:  # still the same migration
                            record_spans(self._spans, sample, (started + now) / 2)
                            self.samples += 1
                    interval = min(self.max_interval_s, max(self.min_interval_s, (now - since) / 100))
                    self._stop.wait(interval)
        except Exception as exc:  # the report then has fewer start times; the rehearsal goes on
            self.error = f"{type(exc).__name__}: {exc}".strip()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
