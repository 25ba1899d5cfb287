"""A database migrated by Flyway, built the way Flyway builds it (Flyway runs on the JVM and is on none
of the registries this project may use, so the table is written exactly as Flyway's source writes it).

- the files run in Flyway's order (versioned by version, then repeatables by description), each with
  the real ``psql`` (Flyway, like psql, runs a file with CREATE INDEX CONCURRENTLY outside a transaction);
- ``flyway_schema_history`` is created with Flyway's DDL for PostgreSQL (createMetaDataTable.sql) and
  gets one row per script: installed_rank from 1, the version as written in the name (``_`` as ``.``),
  the description with ``_`` as spaces, type SQL, the script path relative to the location, the CRC32
  checksum of the file's lines, ``current_user``, ``now()``, the execution time in ms, success.
"""

from __future__ import annotations

import time
from pathlib import Path

import psycopg2

from executor.adopt.flyway import flyway_checksum
from executor.naming import REPEATABLE, VERSIONED, parse_name
from tests.helpers import fetch_value, version_of
from tests.schema_snapshot import psql_run

FLYWAY_DDL = """
CREATE TABLE "public"."flyway_schema_history" (
    "installed_rank" INT NOT NULL,
    "version" VARCHAR(50),
    "description" VARCHAR(200) NOT NULL,
    "type" VARCHAR(20) NOT NULL,
    "script" VARCHAR(1000) NOT NULL,
    "checksum" INTEGER,
    "installed_by" VARCHAR(100) NOT NULL,
    "installed_on" TIMESTAMP NOT NULL DEFAULT now(),
    "execution_time" INTEGER NOT NULL,
    "success" BOOLEAN NOT NULL
);
ALTER TABLE "public"."flyway_schema_history" ADD CONSTRAINT "flyway_schema_history_pk" PRIMARY KEY ("installed_rank");
CREATE INDEX "flyway_schema_history_s_idx" ON "public"."flyway_schema_history" ("success");
"""


def flyway_order(root: Path) -> list[str]:
    names = []
    for path in sorted(root.rglob("*.sql")):
        rel = path.relative_to(root).as_posix()
        name = parse_name(rel).name
        if name is not None and name.kind in (VERSIONED, REPEATABLE):
            names.append((rel, name))
    versioned = sorted((n for n in names if n[1].kind == VERSIONED), key=lambda n: version_of(n[1]))
    repeatable = sorted((n for n in names if n[1].kind == REPEATABLE), key=lambda n: n[1].description)
    return [rel for rel, _ in versioned + repeatable]


def flyway_migrate(url: str, root: Path, *, upto: int | None = None) -> list[str]:
    """Apply the first ``upto`` scripts (all by default) as Flyway would; returns their paths."""
    scripts = flyway_order(root)[:upto]
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.flyway_schema_history')")
            if fetch_value(cur) is None:
                cur.execute(FLYWAY_DDL)
            cur.execute('SELECT coalesce(max(installed_rank), 0) FROM "public"."flyway_schema_history"')
            rank = fetch_value(cur)
            for rel in scripts:
                name = parse_name(rel).name
                assert name is not None
                started = time.monotonic()
                psql_run(url, [root / rel])
                rank += 1
                cur.execute(
                    'INSERT INTO "public"."flyway_schema_history" (installed_rank, version, description, type, '
                    "script, checksum, installed_by, execution_time, success) "
                    "VALUES (%s, %s, %s, 'SQL', %s, %s, current_user, %s, true)",
                    (
                        rank,
                        name.version.text.replace("_", ".") if name.version else None,
                        name.description,
                        rel,
                        flyway_checksum((root / rel).read_bytes()),
                        int((time.monotonic() - started) * 1000),
                    ),
                )
    finally:
        conn.close()
    return scripts


def flyway_rows(url: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute('SELECT * FROM "public"."flyway_schema_history" ORDER BY installed_rank')
            return cur.fetchall()
    finally:
        conn.close()
