"""The safety catalog after the accepted history, kept between runs, so that a pull request's
validation does not rebuild the parse trees of every old file to learn again what they created.

The rules judge the new files knowing what the files before them created (``Catalog``: column
types, CHECK constraints, types, NOT NULL columns, partitioned tables).  Building it needs the
parse tree of every earlier file: on a 500-file history the trees are most of a warm ``validate
--base-ref`` (0.2 s of 0.75 s on this project's test machine), while the catalog itself is
recorded in 10 ms.  So the catalog as it stands after the *prefix* of files that are not judged
(the accepted history before the first judged file, in apply order) is written as JSON, keyed by
everything that decides it:

* each prefix file's path, checksum, section and transaction mode (which decide the statements,
  their trees and their transaction keys);
* ``CATALOG_FORMAT``, the code of ``validator/safety`` and the parse cache's options key (pglast's
  version and the parsing code): an upgrade or an edit invalidates every entry.

A hit gives the catalog a run without the cache builds (tests/test_safety_catalog_cache.py compares
the findings both ways); the prefix files' trees are then never built (``validator.parsed.
ensure_trees``).  JSON, not pickle: the cache directory is shared between pull-request builds
(CodeBuild's cache), and a pickle from a branch would run code.  An entry that does not load is a
miss, never an error.  Layout: ``.schemagate/cache/catalog/<options key[:24]>/<key[:32]>.json``
beside the parse cache, pruned like it, and within it the ``KEEP`` entries used last are kept;
``[tool.schemagate.lint] cache = false`` turns it off.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pglast import ast

from validator.safety.catalog import Catalog, CheckConstraint

if TYPE_CHECKING:
    from collections.abc import Sequence

    from validator.parsed import ParsedFile

CATALOG_FORMAT = 1
KEEP = 8  # catalogs kept per version of the code, the most recently used


@lru_cache(maxsize=1)
def options_key() -> str:
    """SHA-256 over the format, the parse cache's options key and every module of validator/safety."""
    from validator.parse_cache import options_key as parse_options

    digest = hashlib.sha256(f"catalog-format={CATALOG_FORMAT};{parse_options()}".encode())
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        digest.update(path.relative_to(Path(__file__).parent).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def prefix_key(files: Sequence[ParsedFile]) -> str:
    """What decides the catalog after ``files``."""
    rows = [
        [p.rel, p.file.checksum, p.file.section, p.transactional, p.own_transactions, len(p.statements)]
        for p in files
    ]
    payload = json.dumps([options_key(), rows], separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class CatalogCache:
    """Catalogs by prefix key under ``directory`` (None: no caching)."""

    def __init__(self, directory: Path | None) -> None:
        self.root = Path(directory) if directory is not None else None

    def _path(self, key: str) -> Path | None:
        return self.root / options_key()[:24] / f"{key[:32]}.json" if self.root is not None else None

    def load(self, key: str) -> Catalog | None:
        path = self._path(key)
        catalog = None
        if path is not None:
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(data, dict) and data.get("key") == key:
                    catalog = from_json(data["catalog"])
                    os.utime(path)  # used: the last to be pruned (``save``)
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                catalog = None
        return catalog

    def save(self, key: str, catalog: Catalog) -> None:
        path = self._path(key)
        if path is None or self.root is None:
            return
        try:
            from localdb.state_dir import ignore_state_of
            from validator.lint_cache import prune, write_atomically

            path.parent.mkdir(parents=True, exist_ok=True)
            ignore_state_of(self.root)  # the default cache lies in .schemagate/: never committed
            write_atomically(
                path, json.dumps({"key": key, "catalog": to_json(catalog)}, separators=(",", ":"))
            )
            prune(self.root, {options_key()})
            # one entry per state of the accepted history (each merge makes a new one), ~0.5 KB per
            # file: keep the ones used last
            entries = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
            for old in entries[KEEP:]:
                old.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only or full disk makes the cache useless, never the validation wrong


def catalog_cache_directory(parse_cache_dir: Path | None) -> Path | None:
    """``.schemagate/cache/catalog`` beside the parse cache (None when that is off)."""
    return parse_cache_dir.parent / "catalog" if parse_cache_dir is not None else None


# --- the catalog as JSON --------------------------------------------------------------------------


def _tx(value: Any) -> object:
    """A transaction key back from JSON: the engine compares them as tuples."""
    return tuple(_tx(v) for v in value) if isinstance(value, list) else value


def to_json(catalog: Catalog) -> dict[str, Any]:
    """What lasts across files (the per-file sets start empty in every file: ``start_file``)."""
    return {
        "columns": {
            table: {column: tn() if isinstance(tn, ast.TypeName) else tn for column, tn in columns.items()}
            for table, columns in catalog.columns.items()
        },
        "checks": [
            [table, name, c.table, c.name, c.not_null_column, c.validated, c.tx]
            for (table, name), c in catalog.checks.items()
        ],
        "types": catalog.types,
        "constrained_domains": sorted(catalog.constrained_domains),
        "not_null": sorted(catalog.not_null),
        "partitioned": sorted(catalog.partitioned),
    }


def from_json(data: dict[str, Any]) -> Catalog:
    catalog = Catalog()
    for table, columns in data["columns"].items():
        # the TypeName nodes are built when a rule asks (Catalog.column_type): most never are
        catalog.columns[str(table)] = {
            str(column): dict(tn) if isinstance(tn, dict) else None for column, tn in columns.items()
        }
    for table, name, c_table, c_name, column, validated, tx in data["checks"]:
        catalog.checks[(table, name)] = CheckConstraint(
            table=c_table, name=c_name, not_null_column=column, validated=bool(validated), tx=_tx(tx)
        )
    catalog.types = {str(k): str(v) for k, v in data["types"].items()}
    catalog.constrained_domains = {str(d) for d in data["constrained_domains"]}
    catalog.not_null = {(str(t), str(c)) for t, c in data["not_null"]}
    catalog.partitioned = {str(t) for t in data["partitioned"]}
    return catalog
