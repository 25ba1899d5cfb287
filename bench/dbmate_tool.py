"""The real dbmate for the benchmarks, from the npm registry (package ``dbmate``, which ships the Go
binary for this platform), installed once per machine into the same cache directory as the tests'
(``tests/dbmate_tool.py``: ``$SCHEMAGATE_TOOL_CACHE`` or ``~/.cache/schemagate-test-tools``), under
the same file lock, so a benchmark and a test run never race npm and share one install.

A copy of the tests' install logic rather than an import of it: nothing imports ``bench/``, and a
benchmark does not import the test suite (which would fail through ``pytest.fail``); keep the two
versions equal.
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

DBMATE_VERSION = "2.36.0"


def cache_dir() -> Path:
    base = os.environ.get("SCHEMAGATE_TOOL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "schemagate-test-tools"
    )
    return Path(base) / f"dbmate-{DBMATE_VERSION}"


def dbmate_binary() -> Path:
    """The dbmate launcher, installed with ``npm install dbmate@VERSION`` if needed.

    Raises ``SystemExit`` naming the remedy when npm is missing or the install fails."""
    root = cache_dir()
    binary = root / "node_modules" / ".bin" / "dbmate"
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not _works(binary):
            npm = shutil.which("npm")
            if npm is None:
                raise SystemExit(
                    "npm is not installed: the benchmark runs the real dbmate from the npm registry "
                    "(install Node.js and npm, e.g. `apt-get install npm`)"
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
                raise SystemExit(
                    f"could not install dbmate@{DBMATE_VERSION} from the npm registry into {root} "
                    f"(npm exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
                )
    return binary


def native_binary(launcher: Path) -> Path:
    """The Go binary the npm launcher (a Node.js script) would spawn for this platform.

    The benchmark runs it directly, as a user of dbmate's own release (Homebrew, a GitHub
    download, the Docker image) does: the launcher adds Node.js start-up (about 0.1 s) to every
    call.  ``SystemExit`` if the platform's package is missing."""
    modules = launcher.resolve().parent.parent.parent  # node_modules/dbmate/dist/cli.js
    arch = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64"}.get(platform.machine().lower())
    binary = modules / "@dbmate" / f"{sys.platform}-{arch or platform.machine().lower()}" / "bin" / "dbmate"
    if not _works(binary):
        raise SystemExit(f"dbmate's binary for this platform is not where npm puts it: {binary}")
    return binary


def _works(binary: Path) -> bool:
    if not binary.exists():
        return False
    result = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=False)
    return result.returncode == 0 and DBMATE_VERSION in result.stdout


def dbmate_url(url: str) -> str:
    """``url`` as dbmate's driver needs it: ``postgres://`` and ``sslmode=disable`` unless set."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("sslmode", "disable")
    return urlunsplit(("postgres", parts.netloc, parts.path, urlencode(query), parts.fragment))


def dbmate_argv(binary: Path, url: str, migrations: Path, *args: str) -> list[str]:
    """``dbmate --url URL --migrations-dir DIR --no-dump-schema ARGS...`` (no pg_dump needed)."""
    return [
        str(binary),
        "--url",
        dbmate_url(url),
        "--migrations-dir",
        str(migrations),
        "--no-dump-schema",
        *args,
    ]


def dbmate_env() -> dict[str, str]:
    """The environment without ``DATABASE_URL``/``DBMATE_*``, which would override the flags."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DBMATE_"))}
