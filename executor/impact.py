"""What each migration locks, as the validator recorded it in the manifest, and how big those tables
are on the database a plan runs against.

The validator knows, per migration, which existing tables it locks and how: the rehearsal observed
the locks the migration's backend held and the tables whose storage it replaced, and the safety
rules recognise the statements that take strong locks.  ``validate`` writes that into the manifest
under the optional key ``impact`` (hashed and signed with the rest; bundles without it verify as
before)::

    "impact": {"V010__add_payments_currency.sql": [
        {"relation": "public.payments", "lock": "ACCESS EXCLUSIVE", "rewrite": true, "source": "rehearsal"}
    ]}

At plan time ``table_stats`` reads those tables' size and row estimate from the *target's* own
catalogs (``pg_class.reltuples``, ``pg_total_relation_size``; partitioned tables summed over their
partitions), so the approver reads "ACCESS EXCLUSIVE + rewrite on public.payments (48 GB, ~310 M
rows)" for production, not for the build machine's throwaway database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import psycopg2
import psycopg2.errors

IMPACT_KEY = "impact"
# the table-level lock modes, weakest first, spelled as LOCK TABLE and the manual spell them
LOCK_MODES = (
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)
STATS_LOCK_TIMEOUT = "2s"  # pg_total_relation_size opens the table: never queue behind a migration


@dataclass(frozen=True)
class LockImpact:
    """One migration's strongest lock on one relation that existed before it."""

    relation: str  # schema-qualified where the validator knew the schema
    lock: str  # one of LOCK_MODES
    rewrite: bool = False  # the migration replaces the table's storage (every row is copied)
    source: str = "rehearsal"  # "rehearsal", or the safety rule id that recognised the statement

    def describe(self) -> str:
        return f"{self.lock}{' + rewrite' if self.rewrite else ''} on {self.relation}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LockImpact:
        relation, lock = data.get("relation"), data.get("lock")
        if not isinstance(relation, str) or not relation or lock not in LOCK_MODES:
            raise ValueError(f"not a lock impact: {dict(data)!r}")
        return cls(
            relation=relation,
            lock=str(lock),
            rewrite=bool(data.get("rewrite", False)),
            source=str(data.get("source") or "rehearsal"),
        )


def stronger(a: str, b: str) -> str:
    return b if LOCK_MODES.index(b) > LOCK_MODES.index(a) else a


def merge(impacts: Iterable[LockImpact]) -> list[LockImpact]:
    """One entry per relation: the strongest lock, rewrite if any source saw one, sorted by strength."""
    by_relation: dict[str, LockImpact] = {}
    for item in impacts:
        known = by_relation.get(item.relation)
        if known is None:
            by_relation[item.relation] = item
            continue
        lock = stronger(known.lock, item.lock)
        by_relation[item.relation] = LockImpact(
            relation=item.relation,
            lock=lock,
            rewrite=known.rewrite or item.rewrite,
            source=known.source if lock == known.lock else item.source,
        )
    return sorted(by_relation.values(), key=lambda i: (-LOCK_MODES.index(i.lock), i.relation))


def impact_from_manifest(extra: Mapping[str, Any]) -> dict[str, list[LockImpact]] | None:
    """The ``impact`` key of a manifest (``Manifest.extra``) per file; None when the bundle has none.

    An entry that is not a lock impact is skipped rather than refusing the bundle: the key is
    advisory (what to show the approver), and the bundle's hash already proves who wrote it."""
    raw = extra.get(IMPACT_KEY)
    if not isinstance(raw, Mapping):
        return None
    out: dict[str, list[LockImpact]] = {}
    for file, items in raw.items():
        parsed = []
        for item in items if isinstance(items, list) else []:
            try:
                parsed.append(LockImpact.from_dict(item if isinstance(item, Mapping) else {}))
            except ValueError:
                continue
        out[str(file)] = parsed
    return out


def impact_to_manifest(impact: Mapping[str, Iterable[LockImpact]]) -> dict[str, list[dict[str, Any]]]:
    return {file: [i.to_dict() for i in merge(items)] for file, items in sorted(impact.items())}


# --------------------------------------------------------------------------------------------
# the target's statistics


@dataclass(frozen=True)
class TableStats:
    relation: str  # as the manifest names it
    exists: bool
    kind: str = ""  # pg_class.relkind
    bytes: int | None = None  # pg_total_relation_size (table + TOAST + indexes)
    size: str = ""  # pg_size_pretty of bytes, PostgreSQL's own spelling ("48 GB")
    rows: int | None = None  # reltuples; None: never vacuumed or analyzed
    estimated_size: bool = False  # the table was locked: size from relpages instead

    def describe(self) -> str:
        if not self.exists:
            return "not in this database yet"
        rows = f"~{_count(self.rows)} rows" if self.rows is not None else "rows unknown: never analyzed"
        size = f"{self.size} (estimate: the table is locked)" if self.estimated_size else self.size
        return f"{size}, {rows}"


def _count(n: int) -> str:
    for limit, suffix in ((1_000_000_000, " bn"), (1_000_000, " M"), (1_000, " k")):
        if n >= limit:
            value = n / limit
            return f"{value:.0f}{suffix}" if value >= 10 else f"{value:.1f}{suffix}"
    return str(n)


# Partitioned tables store nothing themselves: their size and rows are their leaf partitions'.
_PARTITIONED_SIZE = """CASE WHEN c.relkind = 'p'
     THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0) FROM pg_partition_tree(c.oid) t)
     ELSE pg_total_relation_size(c.oid) END"""
_PARTITIONED_ROWS = """CASE WHEN c.relkind = 'p' THEN (SELECT CASE WHEN bool_and(p.reltuples < 0) THEN -1
                                              ELSE sum(greatest(p.reltuples, 0)) END
                                  FROM pg_partition_tree(c.oid) t JOIN pg_class p ON p.oid = t.relid
                                 WHERE t.isleaf)
     ELSE c.reltuples END"""
# Without a lock at all: the table's own pages as of its last VACUUM / ANALYZE (indexes not counted).
_PAGES_SIZE = "c.relpages::bigint * current_setting('block_size')::bigint"
_STATS = """
SELECT name, relkind, size, pg_size_pretty(size), tuples
  FROM (SELECT r.name, r.n, c.relkind, ({size})::bigint AS size, ({rows})::float8 AS tuples
          FROM unnest(%s::text[]) WITH ORDINALITY AS r(name, n)
          LEFT JOIN pg_class c ON c.oid = to_regclass(r.name)) s
 ORDER BY n
"""


def table_stats(conn: Any, relations: Iterable[str]) -> dict[str, TableStats]:
    """Size and row estimate of each relation on ``conn``'s database.  Reads catalogs only, never
    waits for a lock (``lock_timeout`` 2 s, then the lock-free page estimate), leaves no transaction
    open."""
    names = sorted(set(relations))
    if not names:
        return {}
    partitions = conn.server_version >= 120000  # pg_partition_tree
    exact = _STATS.format(
        size=_PARTITIONED_SIZE if partitions else "pg_total_relation_size(c.oid)",
        rows=_PARTITIONED_ROWS if partitions else "c.reltuples",
    )
    estimated = False
    try:
        rows = _query(conn, exact, names)
    except psycopg2.errors.LockNotAvailable:
        rows, estimated = _query(conn, _STATS.format(size=_PAGES_SIZE, rows="c.reltuples"), names), True
    out: dict[str, TableStats] = {}
    for name, kind, size, pretty, tuples in rows:
        if kind is None:
            out[name] = TableStats(relation=name, exists=False)
            continue
        out[name] = TableStats(
            relation=name,
            exists=True,
            kind=kind,
            bytes=int(size or 0),
            size=pretty or "0 bytes",
            rows=None if tuples is None or tuples < 0 else round(tuples),
            estimated_size=estimated,
        )
    return out


def _query(conn: Any, sql: str, names: list[str]) -> list[tuple]:
    saved = conn.autocommit
    conn.autocommit = False
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', '10s', true)",
                (STATS_LOCK_TIMEOUT,),
            )
            cur.execute(sql, (names,))
            return cur.fetchall()
    finally:
        conn.rollback()  # read only: nothing to keep, and no transaction left open
        conn.autocommit = saved
