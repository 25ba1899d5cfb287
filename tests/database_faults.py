"""Putting a real PostgreSQL into the states the fault tests need, and reading what it holds after.

- ``held_snapshot``: a session with an open REPEATABLE READ transaction that has taken its
  snapshot.  A ``CREATE INDEX CONCURRENTLY`` (or ``REINDEX CONCURRENTLY``) started after it waits in
  its last phase, "waiting for old snapshots", with its INVALID index already committed, until
  the snapshot is released: a deterministic moment to kill the build.
- ``index_builds`` / ``wait_for_build``: what pg_stat_progress_create_index shows.
- ``schemagate_process``: ``python -m schemagate ARGS`` as a real process, to be killed.
- ``indexes``, ``history_rows``, ``catalog_snapshot``: what the database holds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2

REPO_ROOT = Path(__file__).resolve().parent.parent
WAITING_FOR_OLD_SNAPSHOTS = "waiting for old snapshots"


def rows(url: str, sql: str, params: tuple = ()) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


@contextmanager
def held_snapshot(url: str) -> Iterator[psycopg2.extensions.connection]:
    """An open REPEATABLE READ transaction holding its snapshot (no table locks) until the block ends."""
    conn = psycopg2.connect(url, application_name="held-snapshot")
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            cur.execute("SELECT 1")  # the snapshot is taken here
        yield conn
    finally:
        conn.rollback()
        conn.close()


def index_builds(url: str) -> list[tuple[int, str, str, str]]:
    """(pid, command, phase, application_name) of every index build running in ``url``'s database."""
    return rows(
        url,
        "SELECT p.pid, p.command, p.phase, a.application_name FROM pg_stat_progress_create_index p "
        "JOIN pg_stat_activity a ON a.pid = p.pid WHERE p.datname = current_database()",
    )


def wait_for_build(url: str, phase: str = WAITING_FOR_OLD_SNAPSHOTS, timeout: float = 60) -> int:
    """The pid of the backend whose index build has reached ``phase``."""
    found = wait_until(
        lambda: [pid for pid, _, p, _ in index_builds(url) if p.startswith(phase)],
        timeout,
        f"an index build in phase {phase!r}",
    )
    return found[0]


def backend_alive(url: str, pid: int) -> bool:
    return bool(rows(url, "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)))


def terminate(url: str, pid: int) -> None:
    rows(url, "SELECT pg_terminate_backend(%s)", (pid,))
    wait_until(lambda: not backend_alive(url, pid), 30, f"backend {pid} to end")


def indexes(url: str) -> dict[str, bool]:
    """``{schema.index: indisvalid}`` for every index outside the system schemas."""
    return {
        f"{schema}.{name}": valid
        for schema, name, valid in rows(
            url,
            "SELECT n.nspname, c.relname, x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1, 2",
        )
    }


def invalid_indexes(url: str) -> list[str]:
    return [name for name, valid in indexes(url).items() if not valid]


def history_rows(url: str, table: str = "public.schemagate_history") -> list[tuple[str, bool]]:
    if rows(url, "SELECT to_regclass(%s)", (table,)) == [(None,)]:
        return []
    return rows(url, f"SELECT script, success FROM {table} ORDER BY installed_rank")


def catalog_snapshot(url: str) -> dict[str, list[tuple]]:
    """What a migration history leaves in the user's schemas, comparable between two databases."""
    user = "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
    return {
        "relations": rows(
            url,
            f"SELECT n.nspname, c.relname, c.relkind, c.relpersistence FROM pg_class c JOIN pg_namespace n "
            f"ON n.oid = c.relnamespace WHERE {user} ORDER BY 1, 2",
        ),
        "columns": rows(
            url,
            "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_attrdef d "
            f"ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE {user} AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY 1, 2, 3",
        ),
        "indexes": rows(
            url,
            "SELECT n.nspname, c.relname, x.indisvalid, x.indisready, pg_get_indexdef(c.oid) FROM pg_index x "
            f"JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            f"WHERE {user} ORDER BY 1, 2",
        ),
        "constraints": rows(
            url,
            "SELECT n.nspname, r.conname, r.contype, r.convalidated, pg_get_constraintdef(r.oid) "
            f"FROM pg_constraint r JOIN pg_namespace n ON n.oid = r.connamespace WHERE {user} ORDER BY 1, 2",
        ),
        "types": rows(
            url,
            "SELECT n.nspname, t.typname, coalesce(string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder), '') "
            f"FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace LEFT JOIN pg_enum e "
            f"ON e.enumtypid = t.oid WHERE {user} GROUP BY 1, 2 ORDER BY 1, 2",
        ),
        "routines": rows(
            url,
            "SELECT n.nspname, p.proname, pg_get_function_identity_arguments(p.oid), md5(p.prosrc) "
            f"FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {user} ORDER BY 1, 2, 3",
        ),
        "views": rows(
            url,
            "SELECT schemaname, viewname, definition FROM pg_views "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
        ),
    }


def schemagate_process(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``python -m schemagate ARGS`` in its own process (stdout and stderr piped)."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "PGHOST", "PGDATABASE")}
    full_env.update({"PYTHONPATH": str(REPO_ROOT), **(env or {})})
    return subprocess.Popen(
        [sys.executable, "-m", "schemagate", *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_schemagate(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 120):
    """Run ``python -m schemagate ARGS`` to the end: (exit code, stdout, stderr)."""
    process = schemagate_process(args, cwd, env)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(
            f"schemagate {' '.join(args)} did not finish in {timeout}s:\n{out}\n{err}"
        ) from None
    return process.returncode, out, err
