"""``bench/apply.py`` runs end to end on a small history (20 migrations, one repetition), so the
benchmark cannot rot: the real psql, the real dbmate (npm) and the ``schemagate`` CLI apply it into
fresh databases of the test server, every row of the report is printed and the run exits 0.

The times it prints are not asserted (speed is measured in bench/, never asserted in tests); the
round trips are counted, not timed, and psql's are known: one session sends ``BEGIN``, each
statement of the file and ``COMMIT`` as simple queries, so at least 3 per migration.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

# each printed as "  <label>   <a number>..."
ROWS = [
    "psql, one session (BEGIN; \\i file; COMMIT; per file)",  # the applies
    "dbmate migrate --no-dump-schema",
    "floor: python + psycopg2, one message per file",
    "schemagate apply --migrations DIR --yes",
    "schemagate apply --bundle DIR --yes (the pipeline's path)",
    "schemagate apply --migrations DIR",  # the no-ops
    "schemagate apply --bundle DIR",
    "dbmate migrate",
    "python -c pass (bare interpreter start-up)",
    "schemagate --help (CLI start-up)",
    "apply schemagate / dbmate",  # the ratios
    "apply schemagate / psql",
    "apply schemagate / floor",
    "apply --bundle (pipeline) / psql",
    "round trips per migration, schemagate",
    "no-op schemagate apply (process)",
    "no-op schemagate / dbmate",
]


@pytest.mark.slow
def test_bench_apply_prints_every_row_and_exits_0(pg_admin_url: str) -> None:
    env = {**os.environ, "SCHEMAGATE_TEST_DATABASE_URL": pg_admin_url}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "apply.py"), "--count", "20", "--repeat", "1"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for row in ROWS:
        assert re.search(rf"^  {re.escape(row)}\s+\d", out, re.M), f"{row!r} missing from the report:\n{out}"
    assert "20 generated migrations" in out
    assert "every database ended with the same schema and rows" in out

    # the round-trip table: connections, Q, P, B, E, S, round trips, per migration
    table = {
        m["name"]: [int(v) for v in m["numbers"].split()]
        for m in re.finditer(
            r"^  (?P<name>psql|dbmate|floor|schemagate|schemagate-bundle)\s+(?P<numbers>(?:\d+\s+){7})",
            out,
            re.M,
        )
    }
    assert set(table) == {"psql", "dbmate", "floor", "schemagate", "schemagate-bundle"}, out
    assert table["floor"][:2] == [1, 21] and table["floor"][6] == 21, out  # its table, then a message a file
    conns, q, _p, _b, _e, s, trips = table["psql"]
    assert conns == 1 and s == 0 and trips == q >= 3 * 20, out  # one session, simple queries only
    for tool in ("dbmate", "schemagate", "schemagate-bundle"):
        assert table[tool][0] >= 1 and table[tool][6] >= 20, out  # at least one per migration

    # before the first migration, then the rest: two parts of the whole run, for every apply
    section = out.split("\nbefore the first migration", 1)[1].split("\n\n", 1)[0]
    parts = {
        m["label"].strip(): (float(m["before"]), float(m["after"]), float(m["whole"]))
        for m in re.finditer(
            r"^  (?P<label>.+?)\s+(?P<before>\d+\.\d+) s\s+(?P<after>\d+\.\d+) s\s+(?P<whole>\d+\.\d+) s$",
            section,
            re.M,
        )
    }
    assert set(parts) >= {ROWS[0], ROWS[1], ROWS[2], ROWS[3], ROWS[4]}, section
    for label, (before, after, whole) in parts.items():
        assert 0 < before < whole and abs(before + after - whole) <= 0.002, (label, section)
