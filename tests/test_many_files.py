"""A long history (issue 12: 20,000 files did not finish): a structural ``schemagate validate`` of
3,000 generated migrations (bench/validate.py's generator, the same realistic mix of tables,
columns, indexes, enums, backfills and functions) finishes, and its report accounts for every file.

Nothing here is timed: the run gets a generous ``timeout`` (a linear validate of 3,000 files takes
seconds), so a check that grows quadratically with the number of files (a per-file loop over all
files, an order check comparing every pair) shows up as a timeout in CI instead of passing slowly.
Speed is measured in bench/ (``bench/validate.py --count 20000``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

COUNT = 3000
TIMEOUT = 300  # seconds: >10x the linear run on a loaded 2-core machine (26 s); a quadratic one at
# this size costs 4.5 million file pairs, so anything above ~70 µs a pair (a rescan, a re-read) times out


def _generator():
    spec = importlib.util.spec_from_file_location("bench_validate", REPO_ROOT / "bench" / "validate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_a_structural_validate_of_3000_files_finishes_and_reports_every_file(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "many"\nversion = "0"\n\n[tool.schemagate]\nmigrations = "migrations"\n'
    )
    _generator().generate(tmp_path / "migrations", COUNT)
    names = sorted(p.name for p in (tmp_path / "migrations").glob("*.sql"))
    assert len(names) == COUNT

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemagate",
            "validate",
            "--no-lint",
            "--reports",
            "reports",
            "--bundle",
            "bundle",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert re.search(rf"^{COUNT} files checked \(.*\): 0 errors, \d+ warnings -- passed$", done.stdout, re.M)

    report = json.loads((tmp_path / "reports" / "report.json").read_text())
    summary = report["summary"]
    assert summary["files"] == COUNT and summary["judged"] == COUNT and summary["errors"] == 0
    assert summary["warnings"] == len(report["findings"]) > 0
    # the bundle holds every file once, in version order
    assert report["bundle"]["migrations"] == COUNT
    manifest = json.loads((tmp_path / "bundle" / "manifest.json").read_text())
    assert [m["file"] for m in manifest["migrations"]] == names

    # each file's findings are its own: prefer-text-field once per varchar column the generator wrote
    # into that file, none elsewhere; every finding names a generated file
    found = Counter(f["file"] for f in report["findings"] if f["rule"] == "prefer-text-field")
    expected = Counter(
        {n: c for n in names if (c := (tmp_path / "migrations" / n).read_text().count("varchar(200)"))}
    )
    assert expected and found == expected
    assert {f["file"] for f in report["findings"]} <= set(names)
