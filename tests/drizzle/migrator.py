"""drizzle-orm's own migrator, run for real: ``npm install`` puts drizzle-orm and pg in a cache
directory outside the repository (once; later sessions reuse it), and ``migrate.mjs`` next to this
file calls ``drizzle-orm/node-postgres/migrator`` on a migrations folder, as an application does.

``install()`` (the test modules' session fixture ``drizzle_orm``) fails, never skips, when npm cannot
install the packages: the Drizzle tests are only worth something against the real tool.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg2
import pytest

DRIZZLE_ORM = "0.45.4"
PG = "8"
SCRIPT = Path(__file__).with_name("migrate.mjs")
DEFAULT_TABLE = '"drizzle"."__drizzle_migrations"'


def cache_dir() -> Path:
    base = os.environ.get("SCHEMAGATE_TOOL_CACHE") or Path.home() / ".cache" / "schemagate-tests"
    return Path(base) / f"drizzle-orm-{DRIZZLE_ORM}"


def _installed(prefix: Path) -> bool:
    manifest = prefix / "node_modules" / "drizzle-orm" / "package.json"
    if not manifest.is_file() or not (prefix / "node_modules" / "pg" / "package.json").is_file():
        return False
    return json.loads(manifest.read_text()).get("version") == DRIZZLE_ORM


def install() -> Path:
    """drizzle-orm and pg installed under ``cache_dir()`` (xdist workers wait for each other)."""
    prefix = cache_dir()
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed(prefix):
            return prefix
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail(
                "npm is not installed: the Drizzle tests run drizzle-orm's own migrator (node 20 + npm)"
            )
        result = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(prefix),
                "--no-audit",
                "--no-fund",
                f"drizzle-orm@{DRIZZLE_ORM}",
                f"pg@{PG}",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        if result.returncode != 0 or not _installed(prefix):
            pytest.fail(
                f"npm could not install drizzle-orm@{DRIZZLE_ORM} and pg@{PG} into {prefix} "
                f"(exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
            )
    return prefix


def run_migrator(
    modules: Path, url: str, folder: Path, *, table: str | None = None, schema: str | None = None
) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node, "node is not installed"
    argv = [node, str(SCRIPT), url, str(folder)]
    if table or schema:
        argv += [table or "__drizzle_migrations", schema or "drizzle"]
    env = {**os.environ, "DRIZZLE_MODULES": str(modules)}
    return subprocess.run(argv, capture_output=True, text=True, check=False, env=env, timeout=300)


def drizzle_migrate(
    modules: Path,
    url: str,
    folder: Path,
    *,
    upto: int | None = None,
    table: str | None = None,
    schema: str | None = None,
) -> None:
    """``migrate(db, { migrationsFolder })`` with drizzle-orm; ``upto``: as if the journal had only its
    first ``upto`` entries then (a copy of the folder with the journal cut there)."""
    with tempfile.TemporaryDirectory(prefix="drizzle-") as tmp:
        target = folder
        if upto is not None:
            target = Path(tmp) / "drizzle"
            shutil.copytree(folder, target)
            journal_path = target / "meta" / "_journal.json"
            journal = json.loads(journal_path.read_text())
            journal["entries"] = journal["entries"][:upto]
            journal_path.write_text(json.dumps(journal, indent=2))
        result = run_migrator(modules, url, target, table=table, schema=schema)
    assert result.returncode == 0, f"drizzle-orm migrate failed:\n{result.stdout}\n{result.stderr}"


def drizzle_rows(url: str, table: str = DEFAULT_TABLE) -> list[tuple]:
    """(id, hash, created_at) as drizzle-orm wrote them."""
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT id, hash, created_at FROM {table} ORDER BY id")
            return cur.fetchall()
    finally:
        conn.close()
