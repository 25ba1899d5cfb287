"""The real dbmate, installed from the npm registry (package ``dbmate``, which ships the Go binary for
this platform) into a cache directory outside the repository, once per machine.

``dbmate_binary()`` installs it if it is absent (under a file lock, so parallel test workers do not
race npm) and FAILS the test when npm cannot: a test that needs the real tool must not pass without it.
``run_dbmate(...)`` runs it against a database URL and a migrations directory, without writing
``schema.sql`` (``--no-dump-schema``, so pg_dump is not needed).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

DBMATE_VERSION = "2.36.0"


def cache_dir() -> Path:
    base = os.environ.get("SCHEMAGATE_TOOL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "schemagate-test-tools"
    )
    return Path(base) / f"dbmate-{DBMATE_VERSION}"


def dbmate_binary() -> Path:
    """The dbmate launcher, installed with npm if needed; ``pytest.fail`` when it cannot be."""
    root = cache_dir()
    binary = root / "node_modules" / ".bin" / "dbmate"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _works(binary):
            npm = shutil.which("npm")
            if npm is None:
                pytest.fail(
                    "npm is not installed: the dbmate tests run the real dbmate from the npm registry"
                )
            result = subprocess.run(
                [
                    npm,
                    "install",
                    "--prefix",
                    str(root),
                    "--no-audit",
                    "--no-fund",
                    f"dbmate@{DBMATE_VERSION}",
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            if result.returncode != 0 or not _works(binary):
                pytest.fail(
                    f"could not install dbmate@{DBMATE_VERSION} from the npm registry into {root} "
                    f"(npm exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
                )
    return binary


def _works(binary: Path) -> bool:
    if not binary.exists():
        return False
    result = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    return result.returncode == 0 and DBMATE_VERSION in result.stdout


def dbmate_url(url: str) -> str:
    """``url`` as dbmate's driver (lib/pq) needs it: ``postgres://`` and ``sslmode=disable`` for a
    server without TLS."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("sslmode", "disable")
    return urlunsplit(("postgres", parts.netloc, parts.path, urlencode(query), parts.fragment))


def run_dbmate(
    binary: Path, url: str, migrations: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``dbmate --url URL --migrations-dir DIR --no-dump-schema ARGS...``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DBMATE_"))}
    argv = [
        str(binary),
        "--url",
        dbmate_url(url),
        "--migrations-dir",
        str(migrations),
        "--no-dump-schema",
        *args,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, env=env, timeout=300)
    if check:
        assert result.returncode == 0, f"dbmate {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result
