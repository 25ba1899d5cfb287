"""Rehearsal with a long history: cold (the base history applied from scratch) against warm (the
base copied from its cached template), for N base migrations plus one new file.

    .venv/bin/python bench/rehearse.py [--files 500] [--database-url URL] [--runs 3]

The server is --database-url, else $SCHEMAGATE_TEST_DATABASE_URL, else an embedded PostgreSQL in
a temporary directory, started once for the whole bench (its start is printed apart).
``$DATABASE_URL`` is never used.  Prints cold and warm times (the median of --runs warm runs), the
time spent getting the base state in each, the warm/cold ratio and what the new file does.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg2

from validator.config import load_config
from validator.rehearsal import BaseStore, rehearse
from validator.structural import check_structure


def history(count: int, salt: str) -> dict[str, str]:
    """``count`` migrations of realistic shapes: tables with keys, columns, indexes, enums, data."""
    files: dict[str, str] = {}
    for i in range(1, count + 1):
        t = f"entity_{(i - 1) // 5}"
        shape = (i - 1) % 5
        if shape == 0:
            body = (
                f"-- {salt}\nCREATE TABLE {t} (\n  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
                "  name text NOT NULL,\n  created_at timestamptz NOT NULL DEFAULT now()\n);\n"
            )
        elif shape == 1:
            body = (
                f"CREATE TYPE {t}_state AS ENUM ('new', 'active', 'gone');\n"
                f"ALTER TABLE {t} ADD COLUMN state {t}_state NOT NULL DEFAULT 'new';\n"
            )
        elif shape == 2:
            body = f"INSERT INTO {t} (name) SELECT 'row ' || g FROM generate_series(1, 200) g;\n"
        elif shape == 3:
            body = f"CREATE INDEX {t}_name ON {t} (name);\n"
        else:
            body = (
                f"UPDATE {t} SET state = 'active' WHERE id % 2 = 0;\nCOMMENT ON TABLE {t} IS 'entity {i}';\n"
            )
        files[f"V{i:04d}__step_{i}.sql"] = body
    return files


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=500, help="base migrations (default 500)")
    parser.add_argument("--runs", type=int, default=3, help="warm runs to take the median of")
    parser.add_argument("--database-url", default=os.environ.get("SCHEMAGATE_TEST_DATABASE_URL"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pyproject.toml").write_text("[project]\nname = 'bench'\n")
        mig = root / "migrations"
        mig.mkdir()
        files = history(args.files, uuid.uuid4().hex)
        new_file = f"V{args.files + 1:04d}__entity_0_archived.sql"
        files[new_file] = (
            "ALTER TABLE entity_0\n  ADD COLUMN archived_at timestamptz DEFAULT clock_timestamp();\n"
        )
        for name, text in files.items():
            (mig / name).write_text(text)
        config = load_config(root, migrations=mig)
        structural = check_structure(config)

        with _server(root, args.database_url) as (url, server_note):
            started = time.perf_counter()
            cold = rehearse(config, structural, new={new_file}, database_url=url, reuse_base=False)
            cold_s = time.perf_counter() - started
            runs = []
            try:
                for _ in range(args.runs):
                    started = time.perf_counter()
                    warm = rehearse(config, structural, new={new_file}, database_url=url)
                    runs.append((time.perf_counter() - started, warm))
            finally:  # leave no template of a generated history behind
                admin = psycopg2.connect(url)
                admin.autocommit = True
                BaseStore(admin).forget(cold.base_key)
                admin.close()
        assert not cold.base_reused, "the cold run found a cached base"
        assert all(w.base_reused for _, w in runs), "a warm run did not reuse the base"
        warm_s = statistics.median(t for t, _ in runs)
        warm_base = statistics.median(w.base_seconds for _, w in runs)
        print(f"rehearsal server: {cold.server} (PostgreSQL {cold.server_version}){server_note}")
        print(f"history: {args.files} base migrations + 1 new ({new_file})")
        print(f"cold (base applied, then cached): {cold_s:7.2f} s  (base state {cold.base_seconds:.2f} s)")
        print(
            f"warm (base copied from template): {warm_s:7.2f} s  (base state {warm_base:.2f} s; "
            f"median of {len(runs)} runs: {', '.join(f'{t:.2f}' for t, _ in runs)})"
        )
        print(f"warm / cold: {warm_s / cold_s:.3f}  ({cold_s / warm_s:.1f}x faster)")
        m = runs[-1][1].migrations[0]
        print(f"new migration: {m.headline()} ({m.duration_ms} ms)")


@contextmanager
def _server(root: Path, url: str | None) -> Iterator[tuple[str, str]]:
    """The given server, or the embedded one rehearse() would use, kept up for the whole bench
    (its start is timed apart: it is not what the base cache saves)."""
    if url:
        yield url, ""
        return
    from localdb.server import EmbeddedPostgres

    started = time.perf_counter()
    with EmbeddedPostgres(root / ".schemagate" / "rehearsal").running() as embedded_url:
        note = f"; embedded server start (initdb) {time.perf_counter() - started:.2f} s, not counted below"
        yield embedded_url, note


if __name__ == "__main__":
    main()
