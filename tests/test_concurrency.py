"""Several executors at once, and an executor killed half-way, on a real PostgreSQL with real
processes (tests/executor_worker.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from executor.apply import apply
from executor.bundle import write_bundle
from executor.connection import connect
from executor.history import read_history
from executor.progress import Event
from executor.settings import ExecutorSettings
from tests.executor_worker import bundle_of

REPO_ROOT = Path(__file__).resolve().parent.parent

FILES = {
    f"V{i}__step_{i}.sql": f"CREATE TABLE step_{i} (id int);\nINSERT INTO steps VALUES ({i});\n"
    for i in range(2, 7)
}
FILES = {
    "V1__steps.sql": "CREATE TABLE steps (n int PRIMARY KEY);\n",
    **FILES,
    "R__step_count.sql": "CREATE OR REPLACE VIEW step_count AS SELECT count(*) AS n FROM steps;\n",
}


def start_worker(url: str, bundle_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.executor_worker", url, str(bundle_dir), *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("processes", [2, 8])
def test_executors_started_at_once_apply_each_migration_exactly_once(
    fresh_db: str, tmp_path: Path, processes: int
) -> None:
    write_bundle(bundle_of(FILES), tmp_path / "bundle")
    start_at = time.time() + 1.5  # every process is connected and waiting by then
    workers = [
        start_worker(fresh_db, tmp_path / "bundle", "--start-at", str(start_at), "--app-name", f"w{i}")
        for i in range(processes)
    ]
    results = []
    for w in workers:
        out, err = w.communicate(timeout=60)
        assert w.returncode == 0, err + out
        results.append(json.loads(out.strip().splitlines()[-1]))

    applied = sorted(f for r in results for f in r["applied"])
    assert applied == sorted(FILES)  # every file once, across all processes
    assert sum(1 for r in results if r["applied"]) >= 1
    conn = psycopg2.connect(fresh_db)
    try:
        rows = read_history(conn, ExecutorSettings())
        assert sorted(r.script for r in rows) == sorted(FILES)
        assert [r.installed_rank for r in rows] == list(range(1, len(FILES) + 1))
        with conn.cursor() as cur:
            cur.execute("SELECT n FROM step_count")
            assert cur.fetchone() == (5,)
    finally:
        conn.close()


def _wait_for(predicate, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return time.monotonic() - started


def test_an_executor_killed_half_way_leaves_a_database_the_next_apply_finishes(
    fresh_db: str, tmp_path: Path
) -> None:
    files = {
        "V1__first.sql": "CREATE TABLE first (id int);\n",
        # long only for the process that is about to be killed (application_name 'doomed')
        "V2__long.sql": (
            "CREATE TABLE second (id int);\n"
            "SELECT pg_sleep(CASE WHEN current_setting('application_name') = 'doomed' THEN 60 ELSE 0 END);\n"
            "INSERT INTO second VALUES (1);\n"
        ),
        "V3__third.sql": "CREATE TABLE third (id int);\n",
    }
    bundle = bundle_of(files)
    write_bundle(bundle, tmp_path / "bundle")
    watcher = psycopg2.connect(fresh_db)
    watcher.autocommit = True
    dbname = fresh_db.rsplit("/", 1)[1]

    def doomed_pids() -> list[int]:
        with watcher.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = 'doomed' "
                "AND query LIKE '%%pg_sleep%%' AND state = 'active'",
                (dbname,),
            )
            return [r[0] for r in cur.fetchall()]

    worker = start_worker(fresh_db, tmp_path / "bundle", "--app-name", "doomed")
    try:
        _wait_for(lambda: bool(doomed_pids()), 20, "the worker to be inside V2__long.sql")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)

    # The orphaned backend is still in pg_sleep, holding the lock and V2's open transaction.  The
    # executor's session sets client_connection_check_interval, so PostgreSQL notices the dead client
    # within seconds, rolls the transaction back and releases the lock; the next apply waits for that.
    events: list[Event] = []
    conn = connect(fresh_db)
    try:
        started = time.monotonic()
        result = apply(conn, bundle, ExecutorSettings(advisory_lock_wait_s=20), on_event=events.append)
        elapsed = time.monotonic() - started
        assert [a.entry.file for a in result.applied] == ["V2__long.sql", "V3__third.sql"]
        assert elapsed < 10, f"the orphaned session lingered {elapsed:.1f}s"
        assert [r.script for r in read_history(conn, ExecutorSettings())] == list(files)
        conn.rollback()
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM second")
            assert cur.fetchone() == (1,)  # V2 ran exactly once: the killed run left nothing behind
        conn.rollback()
        assert doomed_pids() == []  # PostgreSQL ended the orphaned session by itself
    finally:
        conn.close()
        watcher.close()
