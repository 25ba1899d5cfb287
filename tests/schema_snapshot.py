"""What a migration history leaves in a database, compared between two ways of applying it.

``schema_snapshot(url)`` reads the user's schemas from the catalog (relations, columns with types,
defaults and NOT NULL, constraints, indexes, enum labels, functions, views, triggers, sequences,
extensions) without the history tables of any migration tool, so "schemagate applied it" and "psql
ran the files in the tool's order" can be compared with ``==``.  ``psql_run(url, files)`` runs files
with the real ``psql`` binary, stopping at the first error, the way a person would.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import psycopg2

# history tables of schemagate and of the tools it takes over (their rows are not the schema)
HISTORY_TABLES = (
    "schemagate_history",
    "flyway_schema_history",
    "_prisma_migrations",
    "__drizzle_migrations",
    "__diesel_schema_migrations",
    "schema_migrations",
)
_USER = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%%'"
# the tables, and their indexes and sequences (``<table>_pkey``, ``<table>_id_seq``...)
_NOT_HISTORY = "NOT (c.relname LIKE ANY (%(history)s))"

_QUERIES = {
    "schemas": "SELECT nspname FROM pg_namespace n WHERE " + _USER + " ORDER BY 1",
    "relations": (
        "SELECT n.nspname, c.relname, c.relkind, c.relpersistence FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE "
        + _USER
        + " AND "
        + _NOT_HISTORY
        + " ORDER BY 1, 2"
    ),
    "columns": (
        "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
        "pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE " + _USER + " AND " + _NOT_HISTORY + " AND a.attnum > 0 AND NOT a.attisdropped "
        "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1, 2, 3"
    ),
    "constraints": (
        "SELECT n.nspname, c.relname, k.conname, pg_get_constraintdef(k.oid), k.convalidated "
        "FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE " + _USER + " AND " + _NOT_HISTORY + " ORDER BY 1, 2, 3"
    ),
    "indexes": (
        "SELECT n.nspname, c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE " + _USER + " AND " + _NOT_HISTORY + " ORDER BY 1, 2"
    ),
    "enums": (
        "SELECT n.nspname, t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)::text "
        "FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid JOIN pg_namespace n ON n.oid = t.typnamespace "
        "GROUP BY 1, 2 ORDER BY 1, 2"
    ),
    "types": (
        "SELECT n.nspname, t.typname, t.typtype FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
        "WHERE " + _USER + " AND t.typtype IN ('e', 'd', 'c', 'r') AND (t.typrelid = 0 OR "
        "(SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c') ORDER BY 1, 2"
    ),
    "functions": (
        "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), md5(pg_get_functiondef(p.oid)) "
        "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE "
        + _USER
        + " AND p.prokind IN ('f', 'p') "
        "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e') ORDER BY 1, 2, 3"
    ),
    "views": (
        "SELECT n.nspname, c.relname, pg_get_viewdef(c.oid) FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE " + _USER + " AND c.relkind IN ('v', 'm') ORDER BY 1, 2"
    ),
    "triggers": (
        "SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c "
        "ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE " + _USER + " AND NOT t.tgisinternal ORDER BY 1, 2"
    ),
    "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
}


def schema_snapshot(url: str, *, rows_of: tuple[str, ...] = ()) -> dict[str, list[tuple]]:
    """The schema of the database at ``url`` (see the module doc); ``rows_of``: qualified tables
    whose rows are compared too (data backfills)."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            snapshot: dict[str, list[tuple]] = {}
            for name, sql in _QUERIES.items():
                patterns = [t.replace("_", r"\_") + "%" for t in HISTORY_TABLES]
                cur.execute(sql, {"history": patterns})
                snapshot[name] = cur.fetchall()
            for table in rows_of:
                cur.execute(f"SELECT * FROM {table} ORDER BY 1")
                snapshot[f"rows:{table}"] = cur.fetchall()
        conn.rollback()
    finally:
        conn.close()
    return snapshot


def psql_run(url: str, files: list[Path], *, single_transaction_each: bool = False) -> None:
    """Run ``files`` in order with ``psql -v ON_ERROR_STOP=1`` (one process per file); raises
    AssertionError with psql's output when one fails."""
    psql = shutil.which("psql")
    assert psql, "psql is not installed (Debian: postgresql-client)"
    for path in files:
        argv = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(path)]
        if single_transaction_each:
            argv.insert(2, "--single-transaction")
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"psql failed on {path}:\n{result.stdout}\n{result.stderr}"


def psql_run_sql(url: str, sql: str, *, name: str = "<sql>") -> None:
    """Run a piece of SQL text with psql (for sections of files, such as dbmate's up section)."""
    psql = shutil.which("psql")
    assert psql, "psql is not installed (Debian: postgresql-client)"
    argv = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url]
    result = subprocess.run(argv, input=sql, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"psql failed on {name}:\n{result.stdout}\n{result.stderr}"
