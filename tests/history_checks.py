"""What the tests of another tool's history check the same way for every layout: validate it in a
directory of its own (``validate_report``), and put it in a real git repository with a feature
branch, so a branch that adds one migration can be validated against ``main`` (``feature_branch``)."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path

from schemagate.cli import main

STRUCTURAL_FAMILIES = ("naming", "order", "syntax", "integrity")


def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main",
         "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
    )  # fmt: skip
    return result.stdout


def run_in(project: Path, *args: str) -> int:
    """``schemagate ARGS`` with ``project`` as the working directory."""
    with contextlib.chdir(project):
        return main(list(args))


def validate_report(project: Path, migrations: Path, *extra: str) -> tuple[int, dict]:
    """Exit code and report.json of ``schemagate validate --migrations DIR --reports DIR EXTRA``."""
    reports = project / "reports"
    code = run_in(project, "validate", "--migrations", str(migrations), "--reports", str(reports), *extra)
    return code, json.loads((reports / "report.json").read_text())


def structural_errors(report: dict) -> list[dict]:
    return [f for f in report["findings"] if f["family"] in STRUCTURAL_FAMILIES and f["severity"] == "error"]


def feature_branch(project: Path, write_history: Callable[[Path], Path], migrations_rel: str) -> Path:
    """A git repository at ``project`` with the history committed on ``main`` and a branch
    ``feature`` checked out; returns the migrations directory."""
    migrations = write_history(project / migrations_rel)
    git(project, "init", "-q")
    git(project, "add", ".")
    git(project, "commit", "-q", "-m", "history")
    git(project, "checkout", "-q", "-b", "feature")
    return migrations
