"""The executor killed at random points of a realistic history, inside concurrent index builds too,
then run again until done: the history is exact, no index is INVALID, and the schema is the one a
clean run builds.  A bounded form of ``bench/fault_injection.py`` (a few kills, seeded)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import temporary_database
from tests.fault_injection import (
    builds_an_index_concurrently,
    check_outcome,
    clean_run,
    interrupt_and_finish,
    realistic_history,
    write_history,
)

SEED = 20240611
FILES = 40
KILLS = 6


@pytest.mark.slow
def test_random_kills_end_in_an_exact_history_without_invalid_indexes(
    tmp_path: Path, pg_admin_url: str
) -> None:
    files = realistic_history(FILES, seed=SEED)
    index_builds = [f for f, sql in files.items() if builds_an_index_concurrently(sql)]
    assert len(index_builds) >= 4, "the history should build several indexes concurrently"
    write_history(tmp_path / "migrations", files)
    with (
        temporary_database(pg_admin_url, prefix="sg_clean") as clean,
        temporary_database(pg_admin_url, prefix="sg_faulted") as faulted,
    ):
        seconds = clean_run(tmp_path, clean)
        run = interrupt_and_finish(tmp_path, faulted, kills=KILLS, seed=SEED, clean_run_s=seconds)

        # the kills inside index builds (the process, and its backend) really left INVALID indexes ...
        inside = [
            r for r in run.rounds if r.strategy != "sigkill-anywhere" and r.landed.startswith("an index")
        ]
        assert {r.landed for r in inside} == {
            "an index build (process killed)",
            "an index build (backend terminated)",
        }, run.details()
        assert all(r.invalid_after for r in inside), run.details()
        # ... and the runs that followed cleaned them up and finished the history exactly once
        check_outcome(faulted, clean, files)
