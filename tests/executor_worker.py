"""Test support for the executor: build in-memory bundles, and run one ``apply`` in a process of its own.

``python -m tests.executor_worker URL BUNDLE_DIR [--start-at EPOCH] [--app-name NAME] [--wait S]``
applies the bundle and prints one JSON line ``{"applied": [...], "up_to_date": bool}``; on a
schemagate error it prints ``{"error": ..., "category": ...}`` and exits 1.  The concurrency tests
start several of these at the same instant (``--start-at``) or kill one half-way.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from executor.bundle import Bundle, load_bundle, make_bundle
from executor.checksum import file_checksum
from executor.manifest import ManifestEntry


def migration(file: str, sql: str | bytes, *, transactional: bool = True) -> tuple[ManifestEntry, bytes]:
    data = sql.encode() if isinstance(sql, str) else sql
    kind = {"V": "versioned", "R": "repeatable", "U": "undo"}[file[0]]
    version = None if kind == "repeatable" else file[1:].split("__")[0]
    description = file.split("__", 1)[1].rsplit(".", 1)[0].replace("_", " ")
    entry = ManifestEntry(
        file=file,
        kind=kind,
        version=version,
        description=description,
        sha256=file_checksum(data),
        transactional=transactional,
    )
    return entry, data


def bundle_of(files: dict[str, str], *, non_transactional: tuple[str, ...] = ()) -> Bundle:
    """A sealed bundle of ``{file name: SQL}`` in the given order."""
    return make_bundle(
        [migration(f, sql, transactional=f not in non_transactional) for f, sql in files.items()],
        source={"repository": "tests"},
    )


def main(argv: list[str] | None = None) -> int:
    from executor.apply import apply
    from executor.connection import connect
    from executor.errors import SchemagateError
    from executor.settings import ExecutorSettings

    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("bundle")
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--app-name", default="schemagate-test-worker")
    parser.add_argument("--wait", type=float, default=30.0)
    args = parser.parse_args(argv)

    bundle = load_bundle(args.bundle)
    settings = ExecutorSettings(advisory_lock_wait_s=args.wait, run_id=args.app_name)
    conn = connect(args.url, application_name=args.app_name)
    delay = args.start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    try:
        result = apply(conn, bundle, settings)
    except SchemagateError as error:
        print(json.dumps({"error": str(error), "category": error.category.value}), flush=True)
        return 1
    finally:
        conn.close()
    print(
        json.dumps({"applied": [a.entry.file for a in result.applied], "up_to_date": result.up_to_date}),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
