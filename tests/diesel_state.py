"""A database migrated by Diesel, built the way ``diesel migration run`` builds it (Diesel's CLI is a
Rust crate and crates.io is not a registry this project may use, so its table is written exactly as
its source writes it: diesel-rs/diesel ``diesel/src/migration/setup_migration_table.sql`` and
``diesel_migrations/src/migration_harness.rs``).

- before anything, Diesel runs its ``CREATE TABLE IF NOT EXISTS __diesel_schema_migrations`` (below);
- the pending migrations (directories whose version is not in the table) run in the order of their
  version strings (the directory name up to the first ``_``, dashes removed), each ``up.sql`` with the
  real ``psql`` in one transaction, or without one when ``metadata.toml`` says so (Diesel's rule: a
  ``metadata.toml`` that parses without ``run_in_transaction`` means false);
- after each, Diesel inserts only ``version`` (``run_on`` takes its default).

This helper reads the directory on its own (it does not use schemagate's layout), so a test that
compares the two catches a layout that reads Diesel's files differently than Diesel.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import psycopg2

from tests.schema_snapshot import psql_run

DIESEL_DDL = """\
CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
       version VARCHAR(50) PRIMARY KEY NOT NULL,
       run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
"""


def diesel_version(directory: str) -> str:
    """``migrations_internals::version_from_string``."""
    return directory.split("_", 1)[0].replace("-", "")


def diesel_order(root: Path) -> list[str]:
    """The migration directories in the order ``diesel migration run`` applies them."""
    directories = [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted((d for d in directories if (root / d / "up.sql").is_file()), key=diesel_version)


def runs_in_transaction(directory: Path) -> bool:
    metadata = directory / "metadata.toml"
    if not metadata.is_file():
        return True
    try:
        table = tomllib.loads(metadata.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError:
        return True  # Diesel's unwrap_or_default
    value = table.get("run_in_transaction", False)
    return value if isinstance(value, bool) else True


def diesel_migrate(url: str, root: Path, *, upto: int | None = None) -> list[str]:
    """``diesel migration run`` for the first ``upto`` directories (all by default); returns them."""
    directories = diesel_order(root)[:upto]
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(DIESEL_DDL)
            cur.execute("SELECT version FROM __diesel_schema_migrations")
            applied = {r[0] for r in cur.fetchall()}
            for directory in directories:
                version = diesel_version(directory)
                if version in applied:
                    continue
                psql_run(
                    url,
                    [root / directory / "up.sql"],
                    single_transaction_each=runs_in_transaction(root / directory),
                )
                cur.execute("INSERT INTO __diesel_schema_migrations (version) VALUES (%s)", (version,))
    finally:
        conn.close()
    return directories


def diesel_rows(url: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version, run_on FROM __diesel_schema_migrations ORDER BY version")
            return cur.fetchall()
    finally:
        conn.close()
