"""Fault injection in full: kill `schemagate apply` at random points of a long realistic history.

    .venv/bin/python bench/fault_injection.py [--files 200] [--kills 30] [--seeds 1 2 3]

For each seed: the history (tests/fault_injection.py: tables with imported data, backfills, enums,
NOT VALID constraints, triggers, views, and CREATE [UNIQUE] INDEX CONCURRENTLY IF NOT EXISTS /
REINDEX CONCURRENTLY / DROP INDEX CONCURRENTLY in files of their own) is applied once cleanly to
a fresh database, and once, on another, by real `schemagate apply` processes of which `--kills` are
interrupted: SIGKILL at a random moment, SIGKILL or pg_terminate_backend while a concurrent index
build waits on a held snapshot.  Then apply runs until it succeeds, and the run fails unless the
history is exact (each file once, all successful), no index is INVALID and the catalog equals the
clean run's.  `tests/test_faults_injection.py` is the bounded form that CI runs.

The server: $SCHEMAGATE_TEST_DATABASE_URL, otherwise the embedded PostgreSQL in .schemagate/test-server.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from tests.conftest import temporary_database  # noqa: E402
from tests.fault_injection import (  # noqa: E402
    check_outcome,
    clean_run,
    interrupt_and_finish,
    realistic_history,
    write_history,
)


def server_url(stack: ExitStack) -> str:
    url = os.environ.get("SCHEMAGATE_TEST_DATABASE_URL")
    if url:
        return url
    from localdb.server import EmbeddedPostgres

    return stack.enter_context(EmbeddedPostgres(REPO_ROOT / ".schemagate" / "test-server").running())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--kills", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    failures = 0
    with ExitStack() as stack:
        admin = server_url(stack)
        for seed in args.seeds:
            files = realistic_history(args.files, seed)
            concurrent = sum(1 for sql in files.values() if "CONCURRENTLY" in sql and "DROP INDEX" not in sql)
            with tempfile.TemporaryDirectory(prefix="sg-faults-") as tmp:
                project = Path(tmp)
                write_history(project / "migrations", files)
                with (
                    temporary_database(admin, prefix="sg_bench_clean") as clean,
                    temporary_database(admin, prefix="sg_bench_faulted") as faulted,
                ):
                    started = time.monotonic()
                    seconds = clean_run(project, clean)
                    try:
                        run = interrupt_and_finish(
                            project, faulted, kills=args.kills, seed=seed, clean_run_s=seconds
                        )
                        check_outcome(faulted, clean, files)
                        verdict = "ok: exact history, no INVALID index, same catalog as the clean run"
                    except AssertionError as exc:
                        failures += 1
                        run = None
                        verdict = f"FAILED: {exc}"
                    elapsed = time.monotonic() - started
            print(
                f"seed {seed}: {len(files)} files ({concurrent} concurrent builds), clean run {seconds:.1f} s"
            )
            if run is not None:
                left = sum(1 for r in run.rounds if r.invalid_after)
                print(f"  {run.summary()}; {left} round(s) left INVALID indexes behind")
            print(f"  {verdict} ({elapsed:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
