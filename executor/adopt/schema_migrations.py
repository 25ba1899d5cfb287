"""``schema_migrations``: the table name two tools share, told apart by its columns.

- golang-migrate (``database/postgres/postgres.go`` in golang-migrate/migrate) creates
  ``schema_migrations (version bigint not null primary key, dirty boolean not null)`` in the
  connection's current schema and keeps ONE row: the version the database is at, and whether the last
  migration stopped part-way (``dirty``).
- dbmate (``pkg/driver/postgres/postgres.go`` in amacneil/dbmate) creates
  ``schema_migrations (version varchar primary key)`` (``varchar(255)`` in dbmate 1.x) in the first
  schema of the URL's ``search_path``, else the current schema, and keeps one row per applied version.

So a table with ``version`` and ``dirty`` is golang-migrate's, one with ``version`` and no ``dirty`` is
dbmate's; reading one tool's table as the other's would adopt the wrong history, so it is refused with
the tool that really wrote it.  Both tools quote the table name they are given (``x-migrations-table``,
``--migrations-table``), so names are matched exactly, not folded to lower case.
"""

from __future__ import annotations

import re
from typing import Any

from executor.adopt.base import columns_of, qualified
from executor.errors import MigrationRefused

TABLE = "schema_migrations"
GOLANG_MIGRATE = "golang-migrate"
DBMATE = "dbmate"
_TITLES = {GOLANG_MIGRATE: "golang-migrate", DBMATE: "dbmate"}
_PART = r'"(?:[^"]|"")+"|[^."]+'
_QUALIFIED_RE = re.compile(rf"^(?:(?P<schema>{_PART})\.)?(?P<table>{_PART})$")


def writer_of(columns: set[str]) -> str | None:
    """Which tool writes a ``schema_migrations`` table with these columns (None: neither)."""
    if "version" not in columns:
        return None
    return GOLANG_MIGRATE if "dirty" in columns else DBMATE


def _unquote(part: str) -> str:
    return part[1:-1].replace('""', '"') if part.startswith('"') else part


def _schemas_holding(conn: Any, table: str) -> list[str]:
    """Schemas that hold a table called ``table`` (exactly), in search_path order, then by name."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = %s AND c.relkind IN ('r', 'p') "
            "ORDER BY array_position(current_schemas(false), n.nspname::text) NULLS LAST, n.nspname",
            (table,),
        )
        return [r[0] for r in cur.fetchall()]


def resolve_table(conn: Any, name: str) -> str | None:
    """The qualified, quoted name of the table ``name`` means (``table``, ``schema.table``,
    ``"Schema"."Table"``), or None when there is none.  Like golang-migrate without
    ``x-migrations-table-quoted``, a dotted name that is not ``schema.table`` is tried as one table name."""
    m = _QUALIFIED_RE.match(name.strip())
    tries: list[tuple[str | None, str]] = []
    if m is not None:
        schema = _unquote(m.group("schema")) if m.group("schema") else None
        tries.append((schema, _unquote(m.group("table"))))
    tries.append((None, name.strip()))
    for schema, table in tries:
        found = _schemas_holding(conn, table)
        if schema is None and found:
            return qualified(found[0], table)
        if schema is not None and schema in found:
            return qualified(schema, table)
    return None


def locate(conn: Any, tool: str) -> str | None:
    """The ``schema_migrations`` table ``tool`` wrote: the first one in search_path order with that
    tool's columns, else the first one at all (reading it then says which tool wrote it)."""
    found = [qualified(schema, TABLE) for schema in _schemas_holding(conn, TABLE)]
    for table in found:
        if writer_of(columns_of(conn, table)) == tool:
            return table
    return found[0] if found else None


def require_table_of(conn: Any, name: str, tool: str) -> str:
    """``name`` resolved to a table written by ``tool``; MigrationRefused (nothing is written) when it
    does not exist or another tool wrote it."""
    title = _TITLES[tool]
    table = resolve_table(conn, name)
    if table is None:
        raise MigrationRefused(
            f"this database has no table {name}: there is no {title} history to import",
            rule="import-no-table",
            remedy=f"check the database URL, and the table {title} was told to use (--table SCHEMA.TABLE, "
            f"as given to {'x-migrations-table' if tool == GOLANG_MIGRATE else '--migrations-table'})",
            context={"tool": tool, "table": name},
        )
    columns = columns_of(conn, table)
    writer = writer_of(columns)
    if writer == tool:
        return table
    shape = ", ".join(sorted(columns))
    if writer is None:
        raise MigrationRefused(
            f"{table} has the columns ({shape}), which is not the table {title} keeps ({_shape_of(tool)})",
            rule="import-wrong-tool",
            remedy="pass the table that tool really wrote (--table SCHEMA.TABLE), or --from the tool that "
            "wrote this one",
            context={"tool": tool, "table": table, "columns": sorted(columns)},
        )
    other = _TITLES[writer]
    raise MigrationRefused(
        f"{table} has the columns ({shape}): it is {other}'s table, not {title}'s ({_shape_of(tool)}); "
        f"importing it as {title}'s would adopt the wrong history",
        rule="import-wrong-tool",
        remedy=f"this database was migrated by {other}: run `schemagate import --from {writer}` with its "
        f"migrations directory (or pass --table for {title}'s own table, if it keeps one elsewhere)",
        context={"tool": tool, "table": table, "columns": sorted(columns), "written_by": writer},
    )


def _shape_of(tool: str) -> str:
    return "version, dirty" if tool == GOLANG_MIGRATE else "version"
