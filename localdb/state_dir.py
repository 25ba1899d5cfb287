"""``.schemagate/``: the project's local state (the embedded PostgreSQL, the rehearsal's server, the
lint cache), in the project root.  It is never committed: the directory holds a ``.gitignore``
with ``*`` (which ignores the ignore file too), written whenever schemagate creates or uses it, so
``git add -A`` in a fresh checkout picks none of it up.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

STATE_DIR = ".schemagate"
GITIGNORE = "# schemagate's local state (embedded PostgreSQL, caches): never committed\n*\n"


def state_directory(project_root: Path) -> Path:
    """``<project_root>/.schemagate``, created with its ``.gitignore``."""
    path = Path(project_root) / STATE_DIR
    path.mkdir(parents=True, exist_ok=True)
    ignore_contents(path)
    return path


def ignore_contents(directory: Path) -> None:
    """Write ``.gitignore`` (``*``) into ``directory`` unless one is there (an edited one is kept).
    A read-only directory is left alone: it then holds nothing schemagate wrote either."""
    ignore = Path(directory) / ".gitignore"
    if ignore.exists():
        return
    with contextlib.suppress(OSError):
        ignore.write_text(GITIGNORE, encoding="utf-8")


def ignore_state_of(path: Path) -> None:
    """When ``path`` lies in a ``.schemagate`` directory, make sure that directory ignores itself."""
    for candidate in (Path(path), *Path(path).parents):
        if candidate.name == STATE_DIR:
            if candidate.is_dir():
                ignore_contents(candidate)
            return
