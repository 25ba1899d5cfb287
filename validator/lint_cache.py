"""A file cache of sqlfluff results, so an unchanged migration is never linted twice.

An entry is keyed by what decides sqlfluff's answer and nothing else:

* the file's checksum (``executor.checksum.file_checksum``: BOM and CRLF do not matter),
* the sqlfluff version,
* a hash of the effective sqlfluff configuration (schemagate's defaults + the project's
  ``.sqlfluff`` / ``[tool.sqlfluff]``), plus ``CACHE_FORMAT`` of this module.

The file name is not part of the key (a renamed file with the same bytes is a hit), and neither
is the severity schemagate gives lint findings: entries hold sqlfluff's raw violations, which are
turned into findings each run.  Layout: ``<dir>/<config key[:24]>/<checksum>.json``; the default
directory is ``.schemagate/cache/lint`` under the project root (``[tool.schemagate.lint]
cache_dir`` changes it, ``cache = false`` turns the cache off).  Entries are written atomically
(temporary file + rename), so parallel builds sharing a cache directory never read half a file;
an unreadable entry is a miss, never an error.

Entries of a configuration nobody has used for ``STALE_AFTER_DAYS`` (an older sqlfluff, an earlier
``.sqlfluff``) are removed by ``prune``, which every lint run calls with the keys it used; the
directory of a key in use is touched on each run, so its age is the time since it was last used.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any, TypedDict

from localdb.state_dir import ignore_state_of

CACHE_FORMAT = 1
STALE_AFTER_DAYS = 30
DEFAULT_CACHE_DIR = Path(".schemagate") / "cache" / "lint"


class Violation(TypedDict):
    """One sqlfluff violation as the workers send it and the cache keeps it (JSON)."""

    code: str
    line: int | None
    column: int | None
    description: str
    name: str
    warning: bool


def config_key(sqlfluff_version: str, effective_config: dict[str, Any]) -> str:
    """SHA-256 over the sqlfluff version, the effective configuration and the cache format."""
    payload = json.dumps(
        {"format": CACHE_FORMAT, "sqlfluff": sqlfluff_version, "config": effective_config},
        sort_keys=True,
        default=str,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class LintCache:
    """Violations by file checksum for one configuration key (``directory=None``: no caching)."""

    def __init__(self, directory: Path | None, key: str) -> None:
        self.key = key
        self.directory = (Path(directory) / key[:24]) if directory is not None else None
        self.hits = 0
        self.misses = 0
        self.writes = 0

    def _entry(self, checksum: str) -> Path | None:
        if self.directory is None or not checksum.isalnum():
            return None
        return self.directory / f"{checksum}.json"

    def get(self, checksum: str) -> list[Violation] | None:
        path = self._entry(checksum)
        if path is None:
            self.misses += 1
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.misses += 1
            return None
        if (
            not isinstance(data, dict)
            or data.get("key") != self.key
            or not isinstance(data.get("violations"), list)
        ):
            self.misses += 1
            return None
        self.hits += 1
        violations: list[Violation] = data["violations"]
        return violations

    def put(self, checksum: str, violations: list[Violation]) -> None:
        path = self._entry(checksum)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            ignore_state_of(path.parent)  # the default cache lies in .schemagate/: never committed
            write_atomically(path, json.dumps({"key": self.key, "violations": violations}, sort_keys=True))
            self.writes += 1
        except OSError:
            # a read-only or full disk makes the cache useless, never the validation wrong
            return

    def entries(self) -> list[Path]:
        """The entry files of this configuration (for tests and `--verbose` output)."""
        if self.directory is None or not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("*.json"))


def write_atomically(path: Path, text: str) -> None:
    """``text`` into ``path`` through a temporary file beside it and a rename: a parallel build never
    reads half of it."""
    import tempfile  # only to write an entry: a run of cache hits does without

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


def prune(
    directory: Path | None, used_keys: set[str], *, stale_after_days: float = STALE_AFTER_DAYS
) -> list[Path]:
    """Touch the directories of ``used_keys``; remove the other configurations' directories that
    nobody used for ``stale_after_days``.  Returns what was removed; never raises."""
    if directory is None or not Path(directory).is_dir():
        return []
    in_use = {key[:24] for key in used_keys}
    cutoff = time.time() - stale_after_days * 86400
    removed = []
    for child in Path(directory).iterdir():
        try:
            if not child.is_dir() or child.is_symlink():
                continue
            if child.name in in_use:
                os.utime(child)
            elif child.stat().st_mtime < cutoff:
                import shutil  # only to prune an old cache

                shutil.rmtree(child)
                removed.append(child)
        except OSError:
            continue  # a cache that cannot be tidied is still a cache
    return removed
