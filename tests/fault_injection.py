"""Kill the executor at random points of a long, realistic history, then run it again until done.

Used in a bounded form by ``tests/test_faults_injection.py`` (CI) and in full by
``bench/fault_injection.py``.  A run is a real ``schemagate apply --migrations DIR --yes``
process.  Each round picks, from a seeded ``random.Random``, one way to interrupt it:

- ``sigkill-anywhere``: SIGKILL a random moment after the run reached a random point of the
  history (inside a transactional migration, between two, while writing a history row ...);
- ``sigkill-in-index-build``: a snapshot held from the run's start makes the next
  ``CREATE INDEX CONCURRENTLY`` / ``REINDEX CONCURRENTLY`` it meets wait in its last phase, where
  the process is SIGKILLed (PostgreSQL ends the orphaned backend within
  ``client_connection_check_interval``, leaving the index INVALID);
- ``terminate-in-index-build``: the same, but the executor's backend is terminated
  (``pg_terminate_backend``), so the process sees its connection die and exits 1.

Afterwards ``apply`` runs without faults until it succeeds.  The database must then hold the exact
history (each file once, all ``success = true``, in order), no INVALID index, and the same catalog
as a clean run of the same files on a fresh database.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from executor.connection import scalar
from tests.database_faults import (
    WAITING_FOR_OLD_SNAPSHOTS,
    backend_alive,
    catalog_snapshot,
    held_snapshot,
    history_rows,
    index_builds,
    invalid_indexes,
    run_schemagate,
    schemagate_process,
    terminate,
    wait_until,
)

STRATEGIES = ("sigkill-anywhere", "sigkill-in-index-build", "terminate-in-index-build")
# files a SIGKILLed run may still apply after its target (polling, the delay): an anywhere round aims
# this far short of the index builds that later rounds need
ANYWHERE_MARGIN = 6


# -- a realistic history ---------------------------------------------------------------------


class HistoryWriter:
    """A SaaS billing schema grown the way a team grows one: tables with seed and imported data,
    expand/backfill steps, enums, NOT VALID constraints validated later, views, triggers, and
    index builds (``CONCURRENTLY``, ``IF NOT EXISTS``, partial, unique, expression, ``REINDEX``)
    in files of their own."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.files: dict[str, str] = {}
        self.tables: list[str] = []
        self.indexes: list[str] = []
        self.enums: list[str] = []

    def emit(self, description: str, sql: str) -> None:
        self.files[f"V{len(self.files) + 1:03d}__{description}.sql"] = sql.strip() + "\n"

    def new_table(self) -> None:
        n = len(self.tables) + 1
        name = f"{self.rng.choice(['accounts', 'projects', 'invoices', 'payments', 'events', 'tickets'])}_{n}"
        parent = self.tables[-1] if self.tables else None
        fk = f"\n    {parent}_id bigint REFERENCES {parent} (id)," if parent else ""
        self.emit(
            f"create_{name}",
            f"""
CREATE TABLE {name} (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,{fk}
    reference   text        NOT NULL,
    status      text        NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'void')),
    amount      numeric(12, 2),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE {name} IS 'created by the {name} migration';
""",
        )
        self.tables.append(name)
        rows = self.rng.choice([2000, 5000, 12000])
        # the parent's ids: an identity does not reuse the values of a rolled-back import
        parent_ref = f", (SELECT min(id) FROM {parent}) + g % {self.rng.randint(50, 200)}" if parent else ""
        parent_col = f", {parent}_id" if parent else ""
        self.emit(
            f"import_{name}",
            f"""
-- import the rows the old system holds (its export numbers them, one reference each)
INSERT INTO {name} (reference, status, amount, created_at{parent_col})
SELECT 'REF-{n}-' || lpad(g::text, 7, '0'),
       (ARRAY['open', 'closed', 'void'])[1 + g % 3],
       round((g % 997) * 1.37, 2),
       now() - g * interval '7 minutes'{parent_ref}
FROM generate_series(1, {rows}) AS g;
""",
        )

    def index_concurrently(self) -> None:
        table = self.rng.choice(self.tables)
        shape = self.rng.choice(["plain", "partial", "expression", "covering"])
        name = f"{table}_{shape}_{len(self.indexes) + 1}_idx"
        body = {
            "plain": "(created_at)",
            "partial": "(created_at) WHERE status = 'open'",
            "expression": "(lower(reference))",
            "covering": "(status, created_at) INCLUDE (amount)",
        }[shape]
        self.emit(
            f"index_{name}",
            f"""
-- schemagate:set statement_timeout=1h
-- {table} holds data: build without blocking writes (a failed build is retried by the next run)
CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} {body};
""",
        )
        self.indexes.append(name)

    def unique_the_safe_way(self) -> None:
        table = self.rng.choice(self.tables)
        name = f"{table}_reference_key"
        if name in self.indexes:
            return self.index_concurrently()
        self.emit(
            f"unique_index_{table}_reference",
            f"CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} (reference);",
        )
        self.emit(
            f"unique_constraint_{table}_reference",
            f"ALTER TABLE {table} ADD CONSTRAINT {name} UNIQUE USING INDEX {name};",
        )
        self.indexes.append(name)
        return None

    def reindex(self) -> None:
        plain = [i for i in self.indexes if not i.endswith("_key")]
        if not plain:
            return self.index_concurrently()
        self.emit(
            f"rebuild_{plain[-1]}",
            f"-- bloated after the archive purge: rebuild without blocking writes\n"
            f"REINDEX INDEX CONCURRENTLY {plain[-1]};",
        )
        return None

    def replace_index(self) -> None:
        plain = [i for i in self.indexes if not i.endswith("_key")]
        if len(plain) < 2:
            return self.index_concurrently()
        old = plain[0]
        self.indexes.remove(old)
        self.emit(f"drop_{old}", f"DROP INDEX CONCURRENTLY IF EXISTS {old};")
        return None

    def expand_and_backfill(self) -> None:
        table = self.rng.choice(self.tables)
        column = f"note_{len(self.files) + 1}"
        self.emit(f"add_{table}_{column}", f"ALTER TABLE {table} ADD COLUMN {column} text;")
        self.emit(
            f"backfill_{table}_{column}",
            f"""
DO $$
DECLARE
    done bigint;
BEGIN
    LOOP
        UPDATE {table} SET {column} = 'migrated ' || status
        WHERE id IN (SELECT id FROM {table} WHERE {column} IS NULL LIMIT 2000);
        GET DIAGNOSTICS done = ROW_COUNT;
        EXIT WHEN done = 0;
    END LOOP;
    RAISE NOTICE 'backfilled %', '{table}.{column}';
END
$$;
""",
        )

    def enum(self) -> None:
        name = f"priority_{len(self.enums) + 1}"
        table = self.rng.choice(self.tables)
        self.emit(f"create_{name}", f"CREATE TYPE {name} AS ENUM ('low', 'normal', 'high');")
        self.emit(
            f"add_{table}_{name}", f"ALTER TABLE {table} ADD COLUMN {name} {name} NOT NULL DEFAULT 'normal';"
        )
        self.emit(f"{name}_add_urgent", f"ALTER TYPE {name} ADD VALUE IF NOT EXISTS 'urgent' AFTER 'high';")
        self.enums.append(name)

    def constraint_not_valid(self) -> None:
        table = self.rng.choice(self.tables)
        name = f"{table}_amount_positive_{len(self.files) + 1}"
        self.emit(
            f"check_{name}",
            f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK (amount IS NULL OR amount >= 0) NOT VALID;",
        )
        self.emit(f"validate_{name}", f"ALTER TABLE {table} VALIDATE CONSTRAINT {name};")

    def view_and_trigger(self) -> None:
        table = self.rng.choice(self.tables)
        fn = f"{table}_touch_{len(self.files) + 1}"
        self.emit(
            f"trigger_{fn}",
            f"""
CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();  -- keep updated_at current on every change
    RETURN NEW;
END
$$;
CREATE TRIGGER {fn} BEFORE UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION {fn}();
CREATE OR REPLACE VIEW {table}_open AS SELECT id, reference, amount FROM {table} WHERE status = 'open';
""",
        )

    def build(self, n_files: int) -> dict[str, str]:
        self.emit("create_billing_schema", "CREATE SCHEMA IF NOT EXISTS billing;")
        self.new_table()
        self.new_table()
        patterns = [
            (self.new_table, 3),
            (self.index_concurrently, 5),
            (self.unique_the_safe_way, 2),
            (self.reindex, 1),
            (self.replace_index, 1),
            (self.expand_and_backfill, 3),
            (self.enum, 1),
            (self.constraint_not_valid, 2),
            (self.view_and_trigger, 2),
        ]
        while len(self.files) < n_files - 1:
            self.rng.choices([p for p, _ in patterns], [w for _, w in patterns])[0]()
        views = "\n".join(
            f"CREATE OR REPLACE VIEW billing.{t}_totals AS SELECT status, count(*) AS n, sum(amount) AS total "
            f"FROM public.{t} GROUP BY status;"
            for t in self.tables
        )
        self.files["R__billing_totals.sql"] = views + "\n"
        return self.files


def realistic_history(n_files: int, seed: int) -> dict[str, str]:
    return HistoryWriter(seed).build(n_files)


def write_history(directory: Path, files: dict[str, str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql, encoding="utf-8")


# -- interrupting runs -------------------------------------------------------------------------


@dataclass
class Round:
    strategy: str
    landed: str  # what the kill interrupted, as far as the database tells
    exit_code: int | None
    applied_before: int  # history rows before the round
    applied_after: int
    invalid_after: list[str]  # INVALID indexes the round left behind


@dataclass
class FaultRun:
    rounds: list[Round] = field(default_factory=list)
    final_runs: int = 0
    clean_run_s: float = 0.0

    def summary(self) -> str:
        landed: dict[str, int] = {}
        for r in self.rounds:
            landed[r.landed] = landed.get(r.landed, 0) + 1
        return (
            f"{len(self.rounds)} interrupted runs ("
            + ", ".join(f"{n} {what}" for what, n in sorted(landed.items()))
            + f"), then {self.final_runs} run(s) to finish"
        )

    def details(self) -> str:
        """``summary`` and every round: its strategy, the history rows before and after, what it
        landed on and the process's exit code."""
        return (
            self.summary()
            + "; rounds: "
            + "; ".join(
                f"{r.strategy} {r.applied_before}->{r.applied_after} rows: {r.landed} (exit {r.exit_code})"
                for r in self.rounds
            )
        )


def apply_args(url: str) -> list[str]:
    return ["apply", "--migrations", "migrations", "--database-url", url, "--yes"]


def clean_run(project: Path, url: str) -> float:
    started = time.monotonic()
    code, out, err = run_schemagate(apply_args(url), project, timeout=600)
    assert code == 0, out + err
    return time.monotonic() - started


def _executor_build(url: str) -> int | None:
    for pid, _command, phase, app in index_builds(url):
        if app == "schemagate" and phase.startswith(WAITING_FOR_OLD_SNAPSHOTS):
            return pid
    return None


class _Progress:
    """How many history rows there are, read on one connection of its own."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg2.connect(url, application_name="fault-injection-watcher")
        self.conn.autocommit = True

    def rows(self) -> int:
        with self.conn.cursor() as cur:
            if not scalar(cur, "SELECT to_regclass('public.schemagate_history') IS NOT NULL"):
                return 0
            return int(scalar(cur, "SELECT count(*) FROM public.schemagate_history"))

    def wait_for(self, target: int, process: subprocess.Popen) -> bool:
        """Until the history has ``target`` rows (True) or the process ended (False)."""
        wait_until(
            lambda: process.poll() is not None or self.rows() >= target,
            600,
            f"{target} history rows",
            interval=0.01,
        )
        return process.poll() is None

    def close(self) -> None:
        self.conn.close()


def _kill_in_index_build(project: Path, url: str, terminate_backend: bool) -> tuple[str, int | None]:
    """Hold a snapshot, then start the run: the first concurrent build it meets waits on the
    snapshot, and is interrupted there.  (Holding it only once the run had got some way was a race
    on a fast machine: the run passed several builds while the snapshot was being taken.)"""
    with held_snapshot(url):
        process = schemagate_process(apply_args(url), project)
        try:
            pid = wait_until(
                lambda: _executor_build(url) or (process.poll() is not None and -1),
                300,
                "an index build to wait",
                interval=0.01,
            )
            if pid == -1:  # the run finished without meeting another index build
                process.communicate()
                return "nothing (no index build left)", process.returncode
            if terminate_backend:
                terminate(url, pid)
                process.communicate(timeout=120)
                return "an index build (backend terminated)", process.returncode
            process.send_signal(signal.SIGKILL)
            process.communicate()
            wait_until(lambda: not backend_alive(url, pid), 60, "the orphaned backend to end")
            return "an index build (process killed)", process.returncode
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()


def _kill_anywhere(
    project: Path, url: str, progress: _Progress, target: int, delay: float
) -> tuple[str, int | None]:
    """SIGKILL a little after the run got ``target`` migrations far: inside a migration, between two,
    while writing a history row ..."""
    process = schemagate_process(apply_args(url), project)
    if not progress.wait_for(target, process):
        process.communicate()
        return "nothing (finished first)", process.returncode
    time.sleep(delay)
    if process.poll() is not None:
        process.communicate()
        return "nothing (finished first)", process.returncode
    process.send_signal(signal.SIGKILL)
    process.communicate()
    if process.returncode == 0:  # it ended between the poll and the signal
        return "nothing (finished first)", process.returncode
    building = any(b[3] == "schemagate" for b in index_builds(url))
    return ("an index build (process killed)" if building else "a run (process killed)"), process.returncode


def concurrent_builds(project: Path) -> list[int]:
    """The positions in the history (0-based, in the order of application) of the files that build
    an index concurrently: the build at position i runs when the history holds i rows."""
    # versioned files in name order (the history's numbers have equal widths), then the repeatable one
    files = sorted((project / "migrations").glob("*.sql"), key=lambda f: (f.name.startswith("R__"), f.name))
    return [i for i, f in enumerate(files) if builds_an_index_concurrently(f.read_text(encoding="utf-8"))]


def builds_an_index_concurrently(sql: str) -> bool:
    """A file of this history that builds an index concurrently (not one that drops one so)."""
    return "CONCURRENTLY" in sql and "DROP INDEX" not in sql


def interrupt_and_finish(project: Path, url: str, *, kills: int, seed: int, clean_run_s: float) -> FaultRun:
    """``kills`` interrupted runs at seeded random points of the history, then runs until one succeeds.

    Every other round is interrupted inside an index build (the next one the run meets), alternately
    killing the process and its backend; the rounds between are SIGKILLed a random moment after a
    random point.  That moment is scaled to this machine's speed (the clean run's time per file), and
    the point is kept before enough index builds for the index-build rounds still to come, so that
    what a round lands on does not depend on how fast the machine is.
    """
    rng = random.Random(seed)
    total = len(list((project / "migrations").glob("*.sql")))
    builds = concurrent_builds(project)
    per_file = clean_run_s / max(1, total)
    run = FaultRun(clean_run_s=clean_run_s)
    progress = _Progress(url)
    try:
        for number in range(kills):
            strategy = STRATEGIES[1 + (number // 2) % 2] if number % 2 == 0 else STRATEGIES[0]
            before = progress.rows()
            if strategy == "sigkill-anywhere":
                # spread the kills over what is left of the history, short of the builds still needed
                target = min(
                    total - 1, before + rng.randint(0, max(1, 2 * (total - before) // (kills - number)))
                )
                needed = len(range(number + 1, kills, 2))  # index-build rounds after this one
                if needed and len(builds) >= needed:
                    target = max(before, min(target, builds[-needed] - ANYWHERE_MARGIN))
                delay = rng.uniform(0, 2 * per_file)
                landed, code = _kill_anywhere(project, url, progress, target, delay)
            else:
                landed, code = _kill_in_index_build(project, url, strategy == "terminate-in-index-build")
            run.rounds.append(Round(strategy, landed, code, before, progress.rows(), invalid_indexes(url)))
    finally:
        progress.close()
    for attempt in range(1, 6):
        code, out, err = run_schemagate(apply_args(url), project, timeout=600)
        run.final_runs = attempt
        if code == 0:
            return run
    raise AssertionError(f"apply did not succeed after the faults ({run.summary()}):\n{out}\n{err}")


def check_outcome(url: str, reference_url: str, files: dict[str, str]) -> None:
    """Exact history, no INVALID index, the same catalog as the clean run."""
    assert history_rows(url) == [(name, True) for name in files]
    assert invalid_indexes(url) == []
    faulted, clean = catalog_snapshot(url), catalog_snapshot(reference_url)
    for part in clean:
        assert faulted[part] == clean[part], part
