"""Benchmark: cold import of the Lambda handler module (``import executor.handler``).

A Lambda cold start pays for the interpreter, then for importing the handler module (boto3,
psycopg2, Powertools Logger/Metrics and the executor).  Each run is a fresh interpreter; the time
is measured inside it around the import alone.  Printed, all from the same run:

* interpreter   -- ``python -c pass`` wall time (the floor no code of ours can lower)
* boto3 alone   -- ``import boto3`` (the baseline every Python Lambda that calls AWS pays)
* handler       -- ``import executor.handler``, bytecode cache warm
* handler, package without bytecode -- executor, psycopg2 and Powertools copied without
  ``__pycache__`` into a directory first on ``sys.path``, ``PYTHONDONTWRITEBYTECODE=1``: what
  ``/var/task`` is when the deployment package ships no ``.pyc`` (it is read-only, so *every*
  cold start compiles them); boto3 and the standard library keep their bytecode, as in the runtime

Target: handler import < 1 s (median).

    .venv/bin/python bench/lambda_cold_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TARGET_S = 1.0

_TIMED = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


PACKAGED = ("aws_lambda_powertools", "psycopg2")  # what the deployment package adds to the runtime


def _env(path: Path = REPO) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SCHEMAGATE_", "POWERTOOLS_"))}
    env["PYTHONPATH"] = str(path)
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return env


def import_time(module: str, *, package_dir: Path | None = None) -> float:
    env = _env(package_dir or REPO)
    if package_dir is not None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    out = subprocess.run(
        [PYTHON, "-c", _TIMED.format(module=module)],
        cwd=package_dir or REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout.strip().splitlines()[-1])


def package_without_bytecode(into: Path) -> Path:
    """executor + the packaged dependencies, without __pycache__ (as pip --no-compile leaves them)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO / "executor", into / "executor", ignore=ignore)
    for name in PACKAGED:
        spec = importlib.util.find_spec(name)
        assert spec and spec.submodule_search_locations, name
        source = Path(next(iter(spec.submodule_search_locations)))
        shutil.copytree(source, into / name, ignore=ignore)
        for libs in source.parent.glob(f"{name}*.libs"):  # the wheel's bundled shared libraries
            shutil.copytree(libs, into / libs.name)
    return into


def interpreter_time() -> float:
    started = time.perf_counter()
    subprocess.run([PYTHON, "-c", "pass"], env=_env(), check=True)
    return time.perf_counter() - started


def median(runs: int, measure) -> tuple[float, float, float]:
    samples = [measure() for _ in range(runs)]
    return statistics.median(samples), min(samples), max(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    import_time("executor.handler")  # fill the bytecode cache once
    with tempfile.TemporaryDirectory() as tmp:
        package = package_without_bytecode(Path(tmp))
        rows = [
            ("interpreter (python -c pass)", median(args.runs, interpreter_time)),
            ("import boto3", median(args.runs, lambda: import_time("boto3"))),
            ("import executor.handler", median(args.runs, lambda: import_time("executor.handler"))),
            (
                "import executor.handler, package without .pyc",
                median(args.runs, lambda: import_time("executor.handler", package_dir=package)),
            ),
        ]
    print(f"Lambda cold start: {args.runs} fresh interpreters each, median (min-max), {PYTHON}")
    for label, (med, lo, hi) in rows:
        print(f"  {label:<45} {med * 1000:8.1f} ms  ({lo * 1000:.0f}-{hi * 1000:.0f})")
    handler = rows[2][1][0]
    boto3_alone = rows[1][1][0]
    print(f"  handler / boto3 alone: {handler / boto3_alone:.2f}x")
    verdict = "OK" if handler < TARGET_S else "OVER TARGET"
    print(f"  target: handler import < {TARGET_S:.0f} s -> {verdict}")
    if rows[3][1][0] >= TARGET_S:
        print("  note: ship the package with .pyc compiled by the runtime's Python (see the last row)")
    return 0 if handler < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
