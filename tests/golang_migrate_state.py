"""A database migrated by golang-migrate, built the way golang-migrate builds it.

golang-migrate is a Go program on none of the registries this project may use (not on npm, not in
Debian), so its PostgreSQL driver is followed step by step, from ``database/postgres/postgres.go`` and
``migrate.go`` in golang-migrate/migrate:

- ``ensureVersionTable``: ``CREATE TABLE IF NOT EXISTS "<current_schema()>"."schema_migrations" (version
  bigint not null primary key, dirty boolean not null)`` (another name with ``x-migrations-table``,
  quoted as one identifier);
- for each up file after the current version, in version order: ``SetVersion(V, dirty=true)``
  (``TRUNCATE`` then ``INSERT (V, true)`` in one transaction), ``Run``: the whole file sent as ONE query
  string on an autocommit connection (lib/pq's simple query: PostgreSQL runs several statements as one
  implicit transaction unless the file says ``BEGIN``/``COMMIT`` itself), then ``SetVersion(V, false)``;
- a failing file leaves ``(V, true)``: the dirty state ``migrate force`` clears.
"""

from __future__ import annotations

from pathlib import Path

import psycopg2
from psycopg2 import sql

from tests.helpers import fetch_value

TABLE = "schema_migrations"


def up_files(root: Path) -> list[Path]:
    """The up files golang-migrate would run, in its order (by version number)."""
    return sorted(root.glob("*.up.sql"), key=lambda p: int(p.name.split("_", 1)[0]))


def version_of(path: Path) -> int:
    return int(path.name.split("_", 1)[0])


def _table(cur, table: str) -> sql.Composed:
    cur.execute("SELECT current_schema()")
    return sql.SQL("{}.{}").format(sql.Identifier(fetch_value(cur)), sql.Identifier(table))


def ensure_version_table(cur, table: str = TABLE) -> sql.Composed:
    name = _table(cur, table)
    cur.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (version bigint not null primary key, dirty boolean not null)"
        ).format(name)
    )
    return name


def set_version(cur, name: sql.Composed, version: int, dirty: bool) -> None:
    cur.execute("BEGIN")
    cur.execute(sql.SQL("TRUNCATE {}").format(name))
    if version >= 0 or dirty:
        cur.execute(sql.SQL("INSERT INTO {} (version, dirty) VALUES (%s, %s)").format(name), (version, dirty))
    cur.execute("COMMIT")


def migrate_up(url: str, root: Path, *, upto: int | None = None, table: str = TABLE) -> list[str]:
    """``migrate -path ROOT -database URL up`` (``goto UPTO`` with ``upto``); returns the files run.
    Raises psycopg2.Error from a failing file, leaving the state dirty at its version."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    ran: list[str] = []
    try:
        with conn.cursor() as cur:
            name = ensure_version_table(cur, table)
            cur.execute(sql.SQL("SELECT version, dirty FROM {} LIMIT 1").format(name))
            row = cur.fetchone()
            if row is not None and row[1]:
                raise AssertionError(
                    f"golang-migrate refuses: Dirty database version {row[0]}. Fix and force version."
                )
            current = row[0] if row is not None else -1
            for path in up_files(root):
                version = version_of(path)
                if version <= current or (upto is not None and version > upto):
                    continue
                set_version(cur, name, version, True)
                cur.execute(path.read_text(encoding="utf-8"))
                set_version(cur, name, version, False)
                ran.append(path.name)
    finally:
        conn.close()
    return ran


def force(url: str, version: int, *, table: str = TABLE) -> None:
    """``migrate force V``: set the version, clear dirty, run nothing."""
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            set_version(cur, ensure_version_table(cur, table), version, False)
    finally:
        conn.close()


def state(url: str, *, table: str = TABLE) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT version, dirty FROM {} ORDER BY version").format(_table(cur, table)))
            return cur.fetchall()
    finally:
        conn.rollback()
        conn.close()
