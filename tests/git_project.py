"""A migrations directory in a real git repository, for the tests of what a branch changes."""

from __future__ import annotations

import subprocess
from pathlib import Path

PYPROJECT = '[tool.schemagate]\nmigrations = "{migrations}"\n'


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [
            "git",
            "-c",
            "user.name=dev",
            "-c",
            "user.email=dev@example.test",
            "-c",
            "init.defaultBranch=main",
            *args,
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def commit_all(root: Path, message: str) -> None:
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)


def project_on_main(root: Path, migrations: str) -> Path:
    """``root`` as a git repository on ``main`` holding pyproject.toml and what is already under it;
    returns ``root``."""
    (root / "pyproject.toml").write_text(PYPROJECT.format(migrations=migrations))
    git(root, "init", "-q")
    commit_all(root, "the history so far")
    return root
