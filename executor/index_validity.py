"""INVALID indexes: the leftovers of an interrupted or failed ``CREATE INDEX CONCURRENTLY`` / ``REINDEX
CONCURRENTLY``, found, rebuilt and reported.

A concurrent index build commits its catalog entry first and marks the index valid only at its
very end.  Killed half-way (the executor's process, its backend, the connection) or failed (a
unique index over duplicates, a timeout), it leaves an INVALID index: never used by queries, but
kept up to date on every write (and a unique one still rejects duplicates).  The next
``CREATE INDEX CONCURRENTLY IF NOT EXISTS`` of that name then only says ``NOTICE: relation ...
already exists, skipping``, and the migration would be recorded as a success without its index.

So, for every ``CREATE INDEX`` / ``REINDEX`` statement of a ``transactional: false`` file, the
executor (``executor.stepwise``):

1. ``before_statement``: looks for a leftover of *this* statement and drops it with
   ``DROP INDEX CONCURRENTLY IF EXISTS`` so that the statement builds the index again.  A leftover
   of this statement is an INVALID index of the name the statement creates, in its table's
   schema and on the same table; for ``REINDEX ... CONCURRENTLY``, the INVALID ``<name>_ccnew``
   / ``_ccold`` indexes PostgreSQL's own recovery advice says to drop.  It refuses instead
   (``SQL_ERROR``, rule ``invalid-index-leftover``, nothing run) where dropping is not safe: the
   INVALID index of that name belongs to another table; someone is building an index on the
   table right now; or the statement gives no name (PostgreSQL would pick a new one and build a
   second index beside the leftover) while the table holds INVALID indexes, since nothing says
   which of them this file left;
2. ``after_statement``: checks ``pg_index.indisvalid`` of the index the statement names (resolved
   as PostgreSQL resolved it: the table through the session's ``search_path``, the index in the
   table's schema), that it is on the statement's table, and that no other index in the
   statement's scope became INVALID; any of these is a failure (``SQL_ERROR``, rule
   ``invalid-index``), recorded with a ``success = false`` history row;
3. ``left_behind``: after a failed statement, names the INVALID indexes it left, for the message.

``annotate`` tells ``schemagate info`` which INVALID indexes in the database a recorded migration
should have built.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from executor.errors import SqlError
from executor.headers import split_statements
from executor.index_statement import (
    CREATE_INDEX,
    NAMEDATALEN,
    REINDEX,
    IndexStatement,
    parse_index_statement,
    quote_ident,
)

REINDEX_LEFTOVER_RE = re.compile(r"^(?P<base>.*)_cc(?:new|old)[0-9]*$")

_INDEXES = """
SELECT i.oid, n.nspname, i.relname, tn.nspname, t.relname, x.indrelid, x.indisvalid, x.indisunique,
       x.indisready, pg_get_indexdef(i.oid),
       (SELECT p.pid FROM pg_stat_progress_create_index p
        WHERE p.pid <> pg_backend_pid() AND (p.index_relid = i.oid OR p.relid = x.indrelid) LIMIT 1)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_namespace n ON n.oid = i.relnamespace
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace tn ON tn.oid = t.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND {where}
ORDER BY n.nspname, i.relname
"""

_BUILDS_ON_TABLE = """
SELECT p.pid, p.command, p.phase FROM pg_stat_progress_create_index p
WHERE p.pid <> pg_backend_pid() AND p.relid = %s
"""


@dataclass(frozen=True)
class IndexRow:
    oid: int
    schema: str
    name: str
    table_schema: str
    table: str
    table_oid: int
    valid: bool
    unique: bool
    ready: bool
    definition: str
    building_pid: int | None  # another session is building an index on its table right now

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def qualified_table(self) -> str:
        return f"{self.table_schema}.{self.table}"

    @property
    def sql(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.qualified,
            "table": self.qualified_table,
            "unique": self.unique,
            "definition": self.definition,
        }


def _indexes(cur, where: str, params: tuple = ()) -> list[IndexRow]:
    cur.execute(_INDEXES.format(where=where), params)
    return [IndexRow(*row) for row in cur.fetchall()]


def invalid_indexes(cur) -> list[IndexRow]:
    """Every INVALID index in the database (TOAST indexes included: REINDEX leaves those too)."""
    return _indexes(cur, "NOT x.indisvalid")


def _weight(row: IndexRow) -> str:
    harm = "it is not used by queries but is still updated on every write"
    return harm + (", and as a unique index it still rejects duplicates" if row.unique else "")


# --------------------------------------------------------------------------------------------
# the checks around one statement


@dataclass
class IndexCheck:
    """What ``before_statement`` learnt, for ``after_statement`` / ``left_behind``."""

    statement: IndexStatement
    file: str
    line: int
    scope: tuple[str, tuple]  # SQL condition on pg_index x / pg_class i, and its parameters
    invalid_before: set[int]


def _relation(cur, qualified_sql: str) -> tuple[int, int, int] | None:
    """(oid, namespace oid, TOAST table oid) of a relation named as SQL text, through search_path."""
    cur.execute(
        "SELECT c.oid, c.relnamespace, c.reltoastrelid FROM pg_class c WHERE c.oid = to_regclass(%s)",
        (qualified_sql,),
    )
    row = cur.fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else None


def _scope(cur, st: IndexStatement) -> tuple[tuple[str, tuple], dict[str, Any]]:
    """The indexes this statement can touch, as a condition, plus what was resolved on the way."""
    resolved: dict[str, Any] = {}
    if st.kind == CREATE_INDEX and st.table is not None:
        table = _relation(cur, st.table.sql())
        resolved["table"] = table
        return (("x.indrelid = %s", (table[0],)) if table else ("false", ())), resolved
    if st.kind == REINDEX and st.scope == "index" and st.index is not None:
        index = _relation(cur, st.index.sql())
        resolved["index"] = index
        if index is None:
            return ("false", ()), resolved
        cur.execute("SELECT indrelid FROM pg_index WHERE indexrelid = %s", (index[0],))
        row = cur.fetchone()
        return ("x.indrelid = %s", (row[0] if row else 0,)), resolved
    if st.kind == REINDEX and st.scope == "table" and st.table is not None:
        table = _relation(cur, st.table.sql())
        resolved["table"] = table
        return (("x.indrelid IN (%s, %s)", (table[0], table[2])) if table else ("false", ())), resolved
    if st.kind == REINDEX and st.scope == "schema" and st.schema is not None:
        condition = (
            "x.indrelid IN (SELECT c.oid FROM pg_class c WHERE c.relnamespace = "
            "(SELECT oid FROM pg_namespace WHERE nspname = %s) UNION ALL SELECT c.reltoastrelid "
            "FROM pg_class c WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = %s))"
        )
        return (condition, (st.schema, st.schema)), resolved
    return ("true", ()), resolved  # REINDEX DATABASE / SYSTEM, or a statement not understood


def _refuse(check: IndexCheck, message: str, remedy: str, rows: list[IndexRow]) -> SqlError:
    return SqlError(
        f"{message}; nothing of the statement at line {check.line} was run",
        file=check.file,
        line=check.line,
        rule="invalid-index-leftover",
        remedy=remedy,
        context={"invalid_indexes": [r.to_dict() for r in rows]},
    )


def _being_built(cur, check: IndexCheck, table_oid: int, rows: list[IndexRow]) -> None:
    cur.execute(_BUILDS_ON_TABLE, (table_oid,))
    builds = cur.fetchall()
    if builds:
        pid, command, phase = builds[0]
        raise _refuse(
            check,
            f"{rows[0].qualified} on {rows[0].qualified_table} is INVALID and session {pid} is running "
            f"{command} on that table right now ({phase}): it may be that very build",
            "wait for that session to finish (see pg_stat_progress_create_index), or end it with "
            f"SELECT pg_cancel_backend({pid}); then apply again",
            rows,
        )


def _reindex_leftover_of(name: str, index: str | None) -> bool:
    """Is ``name`` the ``_ccnew`` / ``_ccold`` index REINDEX CONCURRENTLY makes for ``index`` (any index
    when None)?  PostgreSQL cuts the base name so that the whole fits in 63 bytes."""
    m = REINDEX_LEFTOVER_RE.match(name)
    if not m:
        return False
    base = m.group("base")
    if index is None or index == base:
        return True
    return len(name.encode("utf-8")) == NAMEDATALEN - 1 and index.startswith(base)


def before_statement(
    cur, st: IndexStatement, *, file: str, line: int, on_drop: Callable[[IndexRow], None]
) -> IndexCheck:
    """Drop this statement's leftover INVALID index (or refuse, see the module docstring)."""
    scope, resolved = _scope(cur, st)
    check = IndexCheck(statement=st, file=file, line=line, scope=scope, invalid_before=set())
    leftovers: list[IndexRow] = []
    if st.kind == CREATE_INDEX and st.understood and resolved.get("table"):
        table_oid, namespace, _ = resolved["table"]
        if st.name is not None:
            cur.execute(
                "SELECT c.relkind FROM pg_class c WHERE c.relnamespace = %s AND c.relname = %s",
                (namespace, st.name),
            )
            kind = cur.fetchone()
            same_name = _indexes(cur, "i.relnamespace = %s AND i.relname = %s", (namespace, st.name))
            if kind is not None and not same_name and st.if_not_exists:
                raise _refuse(
                    check,
                    f"the name {st.name} in that schema belongs to a relation that is not an index "
                    f"(relkind {kind[0]!r}): IF NOT EXISTS would skip building the index",
                    "give the index another name in the file (it is not applied yet, so it may be edited)",
                    [],
                )
            for row in same_name:
                if row.valid and row.table_oid != table_oid and st.if_not_exists:
                    raise _refuse(
                        check,
                        f"the index name {row.qualified} is taken by an index on {row.qualified_table}: "
                        f"IF NOT EXISTS would skip building the index on {st.table}",
                        "give the index another name in the file (it is not applied yet, so it may be "
                        "edited)",
                        [row],
                    )
                if row.valid:
                    continue
                if row.table_oid != table_oid:
                    raise _refuse(
                        check,
                        f"an INVALID index {row.qualified} exists on {row.qualified_table}, but the file "
                        f"builds {st.name} on {st.table}: it is not this file's leftover, so schemagate "
                        "does not drop it",
                        f"check what built it; DROP INDEX CONCURRENTLY {row.sql} if nobody needs it (or "
                        "rename the index in the file), then apply again",
                        [row],
                    )
                _being_built(cur, check, table_oid, [row])
                leftovers.append(row)
        else:
            invalid = _indexes(cur, "NOT x.indisvalid AND x.indrelid = %s", (table_oid,))
            if invalid:
                _being_built(cur, check, table_oid, invalid)
                names = ", ".join(r.qualified for r in invalid)
                raise _refuse(
                    check,
                    f"{st.table} holds the INVALID index(es) {names} and the statement builds an index "
                    "without a name: schemagate cannot tell whether one of them is the leftover of an "
                    "interrupted run of this file, and PostgreSQL would build a second index beside it",
                    f"if {names} is such a leftover, DROP INDEX CONCURRENTLY it, then apply again; better, "
                    "name the index in the file (CREATE INDEX CONCURRENTLY IF NOT EXISTS <name> ON ...), "
                    "so that schemagate can rebuild it by itself after an interruption",
                    invalid,
                )
    elif st.kind == REINDEX and st.concurrently and scope[0] != "false":
        base = st.index.name if st.index is not None else None
        for row in _indexes(cur, f"NOT x.indisvalid AND {scope[0]}", scope[1]):
            if _reindex_leftover_of(row.name, base):
                _being_built(cur, check, row.table_oid, [row])
                leftovers.append(row)
    for row in leftovers:
        cur.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {row.sql}")
        on_drop(row)
    check.invalid_before = {r.oid for r in _indexes(cur, f"NOT x.indisvalid AND {scope[0]}", scope[1])}
    return check


def _fail(check: IndexCheck, message: str, rows: list[IndexRow], remedy: str) -> SqlError:
    return SqlError(
        message,
        file=check.file,
        line=check.line,
        rule="invalid-index",
        remedy=remedy,
        context={"invalid_indexes": [r.to_dict() for r in rows]},
    )


REMEDY_REBUILD = (
    "find out why the build failed (a unique index over duplicate rows, a timeout, a cancelled or killed "
    "session), fix that, run `schemagate repair` (the history records the failure) and apply again: "
    "schemagate drops the INVALID index the file builds and builds it again"
)


def after_statement(cur, check: IndexCheck) -> SqlError | None:
    """The failure to record when the statement succeeded but left no valid index; None when all is well."""
    st = check.statement
    scope, resolved = _scope(cur, st)
    now_invalid = _indexes(cur, f"NOT x.indisvalid AND {scope[0]}", scope[1])
    new = [r for r in now_invalid if r.oid not in check.invalid_before]
    at = f"the statement at line {check.line}"
    if st.kind == CREATE_INDEX and st.understood and st.name is not None and resolved.get("table"):
        table_oid, namespace, _ = resolved["table"]
        named = _indexes(cur, "i.relnamespace = %s AND i.relname = %s", (namespace, st.name))
        if not named:
            return _fail(
                check,
                f"{at} succeeded but no index {st.name} exists in the schema of {st.table} afterwards",
                [],
                "check what the statement built (pg_indexes) and fix the file",
            )
        row = named[0]
        if row.table_oid != table_oid:
            return _fail(
                check,
                f"{at} built nothing: the index name {row.qualified} belongs to an index on "
                f"{row.qualified_table}, so IF NOT EXISTS skipped building it on {st.table}",
                [row],
                "give the index another name in a new migration",
            )
        if not row.valid:
            return _fail(
                check,
                f"{at} left the index {row.qualified} on {row.qualified_table} INVALID "
                f"(pg_index.indisvalid is false): {_weight(row)}",
                [row],
                REMEDY_REBUILD,
            )
    if st.kind == REINDEX and st.index is not None and resolved.get("index"):
        cur.execute("SELECT indisvalid FROM pg_index WHERE indexrelid = %s", (resolved["index"][0],))
        valid = cur.fetchone()
        if valid is not None and not valid[0]:
            rows = [r for r in now_invalid if r.oid == resolved["index"][0]]
            return _fail(check, f"{at} left the index {st.index} INVALID", rows, REMEDY_REBUILD)
    if new:
        names = ", ".join(f"{r.qualified} on {r.qualified_table}" for r in new)
        return _fail(
            check,
            f"{at} left INVALID index(es) behind: {names} ({_weight(new[0])})",
            new,
            REMEDY_REBUILD,
        )
    return None


def left_behind(cur, check: IndexCheck) -> list[IndexRow]:
    """The INVALID indexes a failed statement left (they were not INVALID before it)."""
    scope, _ = _scope(cur, check.statement)
    return [
        r
        for r in _indexes(cur, f"NOT x.indisvalid AND {scope[0]}", scope[1])
        if r.oid not in check.invalid_before
    ]


def describe_left_behind(rows: list[IndexRow]) -> str:
    names = ", ".join(f"{r.qualified} on {r.qualified_table}" for r in rows)
    return (
        f"it left the INVALID index(es) {names} ({_weight(rows[0])}); after `schemagate repair`, the next "
        "apply drops and rebuilds it"
    )


# --------------------------------------------------------------------------------------------
# info: which recorded migration should have built an INVALID index


def index_statements(sql: str) -> list[IndexStatement]:
    """The CREATE INDEX / REINDEX statements of a migration's SQL."""
    found = []
    for st in split_statements(sql):
        parsed = parse_index_statement(st.text)
        if parsed is not None:
            found.append(parsed)
    return found


def _builds(st: IndexStatement, row: IndexRow) -> bool:
    """Could ``row`` be what ``st`` was meant to build (judged from names alone)?"""
    if st.kind == CREATE_INDEX and st.table is not None:
        same_table = row.table == st.table.name and st.table.schema in (None, row.table_schema)
        return same_table and (st.name is None or row.name == st.name)
    if st.kind == REINDEX:
        if st.index is not None:
            same = row.name == st.index.name and st.index.schema in (None, row.schema)
            return same or _reindex_leftover_of(row.name, st.index.name)
        if st.table is not None:
            return row.table == st.table.name and st.table.schema in (None, row.table_schema)
        return _reindex_leftover_of(row.name, None)
    return False


def annotate(cur, bundle, infos: list[Any]) -> list[tuple[IndexRow, str | None]]:
    """Every INVALID index with the recorded migration that should have built it (or None), and
    ``info.invalid_indexes`` filled in for those migrations."""
    invalid = invalid_indexes(cur)
    for i in infos:
        i.invalid_indexes = []
    found: list[tuple[IndexRow, str | None]] = []
    expected: list[tuple[IndexStatement, Any]] = []
    if bundle is not None and invalid:
        for i in infos:
            entry = i.entry
            if entry is None or (entry.transactional and entry.checked) or getattr(i, "row", None) is None:
                continue
            statements = index_statements(bundle.sql(entry))
            if not entry.checked:
                # not parsed (applied with these bytes), so its transactional flag is only the layout's
                # default: look at its concurrent builds, the ones a failure leaves INVALID
                statements = [st for st in statements if st.concurrently]
            expected += [(st, i) for st in statements]
    for row in invalid:
        owner = next((i for st, i in expected if _builds(st, row)), None)
        if owner is not None:
            owner.invalid_indexes.append(row.qualified)
        found.append((row, owner.file if owner is not None else None))
    return found
