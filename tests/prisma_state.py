"""A database migrated by Prisma Migrate, built the way ``prisma migrate deploy`` and ``prisma migrate
resolve`` build it.  Prisma's CLI is on npm, but its schema engine downloads platform binaries from
Prisma's servers at install time, which this project may not reach; so the table and its rows are
written exactly as the engine's source writes them (prisma/prisma-engines
``schema-engine/connectors/sql-schema-connector/src/flavour/postgres.rs``,
``.../sql-schema-connector/src/sql_migration_persistence.rs``,
``schema-engine/core/src/commands/apply_migrations.rs``, ``.../schema-connector/src/checksum.rs``):

- ``deploy``: create ``_prisma_migrations`` when missing; refuse when a row has neither ``finished_at``
  nor ``rolled_back_at`` (P3009); for every directory (in name order) without a row that is not rolled
  back: insert ``id`` (UUID v4), ``checksum`` (SHA-256 hex of the script's bytes), ``started_at`` (the
  engine's clock, UTC) and ``migration_name``; run ``migration.sql`` (here with the real ``psql``); then
  ``applied_steps_count = applied_steps_count + 1`` and ``finished_at``; a failing script gets ``logs``;
- ``resolve --applied``: a finished row with ``logs = ''`` and ``started_at = finished_at``;
- ``resolve --rolled-back``: ``rolled_back_at`` on the migration's failed rows.

The directory is read on its own (not with schemagate's layout).
"""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg2

from tests.helpers import fetch_value
from tests.schema_snapshot import psql_run

PRISMA_DDL = """\
CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);
"""


def prisma_order(root: Path) -> list[str]:
    """Migration directories in the order Prisma applies them (by name)."""
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "migration.sql").is_file())


def checksum_of(root: Path, name: str) -> str:
    return hashlib.sha256((root / name / "migration.sql").read_bytes()).hexdigest()


def _connect(url: str):
    conn = psycopg2.connect(url)
    conn.autocommit = True
    return conn


def _initialize(cur) -> None:
    cur.execute("SELECT to_regclass('_prisma_migrations')")
    if fetch_value(cur) is None:
        cur.execute(PRISMA_DDL)


def _now() -> datetime:
    return datetime.now(UTC)


def prisma_deploy(url: str, root: Path, *, upto: int | None = None) -> list[str]:
    """``prisma migrate deploy`` of the first ``upto`` directories (all by default); returns the names
    it applied.  Raises AssertionError, like Prisma's P3009, when a failed migration is recorded."""
    conn = _connect(url)
    applied_now = []
    try:
        with conn.cursor() as cur:
            _initialize(cur)
            cur.execute(
                "SELECT migration_name FROM _prisma_migrations "
                "WHERE finished_at IS NULL AND rolled_back_at IS NULL"
            )
            failed = [r[0] for r in cur.fetchall()]
            assert not failed, f"P3009: migrate found failed migrations in the target database: {failed}"
            cur.execute("SELECT migration_name FROM _prisma_migrations WHERE rolled_back_at IS NULL")
            applied = {r[0] for r in cur.fetchall()}
            for name in prisma_order(root)[:upto]:
                if name in applied:
                    continue
                migration_id = str(uuid.uuid4())
                cur.execute(
                    "INSERT INTO _prisma_migrations (id, checksum, started_at, migration_name) "
                    "VALUES (%s, %s, %s, %s)",
                    (migration_id, checksum_of(root, name), _now(), name),
                )
                psql_run(url, [root / name / "migration.sql"])
                cur.execute(
                    "UPDATE _prisma_migrations SET applied_steps_count = applied_steps_count + 1 WHERE id = %s",
                    (migration_id,),
                )
                cur.execute(
                    "UPDATE _prisma_migrations SET finished_at = %s WHERE id = %s", (_now(), migration_id)
                )
                applied_now.append(name)
    finally:
        conn.close()
    return applied_now


def prisma_deploy_failing(url: str, root: Path, name: str) -> str:
    """``prisma migrate deploy`` of ``name`` when its script fails: the row gets the error as ``logs``
    and no ``finished_at``.  Returns the logs."""
    conn = _connect(url)
    try:
        with conn.cursor() as cur:
            _initialize(cur)
            migration_id = str(uuid.uuid4())
            cur.execute(
                "INSERT INTO _prisma_migrations (id, checksum, started_at, migration_name) "
                "VALUES (%s, %s, %s, %s)",
                (migration_id, checksum_of(root, name), _now(), name),
            )
            result = subprocess.run(
                [
                    "psql",
                    "-X",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-1",
                    "-d",
                    url,
                    "-f",
                    str(root / name / "migration.sql"),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            assert result.returncode != 0, f"{name} was expected to fail"
            # the engine's error as text: the SQLSTATE (42P01 for the missing table this helper breaks), then
            # the database's message
            logs = f"Database error code: 42P01\n\nDatabase error:\n{result.stderr.strip()}\n"
            cur.execute("UPDATE _prisma_migrations SET logs = %s WHERE id = %s", (logs, migration_id))
            return logs
    finally:
        conn.close()


def prisma_resolve_applied(url: str, root: Path, name: str) -> None:
    """``prisma migrate resolve --applied NAME`` (the migration's SQL is not run)."""
    conn = _connect(url)
    try:
        with conn.cursor() as cur:
            _initialize(cur)
            now = _now()
            cur.execute(
                "INSERT INTO _prisma_migrations (id, checksum, logs, started_at, finished_at, migration_name) "
                "VALUES (%s, %s, '', %s, %s, %s)",
                (str(uuid.uuid4()), checksum_of(root, name), now, now, name),
            )
    finally:
        conn.close()


def prisma_resolve_rolled_back(url: str, name: str) -> None:
    """``prisma migrate resolve --rolled-back NAME``: marks the migration's failed rows rolled back."""
    conn = _connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT id FROM _prisma_migrations WHERE migration_name = %s AND finished_at IS NULL "
                "AND rolled_back_at IS NULL",
                (name,),
            )
            ids = [r[0] for r in cur.fetchall()]
            assert ids, f"P3011: migration {name} cannot be rolled back because it is not in a failed state"
            for migration_id in ids:
                cur.execute(
                    "UPDATE _prisma_migrations SET rolled_back_at = %s WHERE id = %s", (_now(), migration_id)
                )
    finally:
        conn.close()


def prisma_rows(url: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT * FROM _prisma_migrations ORDER BY started_at, id")
            return cur.fetchall()
    finally:
        conn.close()
