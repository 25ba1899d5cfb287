"""The PostgreSQL extension install/upgrade scripts on this machine, as migration files.

They are real, reviewed, valid DDL written by the PostgreSQL developers over many years: the
largest corpus of "migrations" available without a network.  psql meta-commands (``\\echo``,
``\\quit``) are dropped and the substitution variables replaced, as CREATE EXTENSION does.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path


def extension_dirs() -> list[Path]:
    dirs = []
    spec = importlib.util.find_spec("pgserver")  # located, not imported (its import is slow and noisy)
    if spec is not None and spec.origin:
        dirs.append(Path(spec.origin).parent / "pginstall/share/postgresql/extension")
    dirs += sorted(Path("/usr/share/postgresql").glob("*/extension"))
    return [d for d in dirs if d.is_dir()]


def as_migration(text: str) -> str:
    text = "\n".join("" if line.lstrip().startswith("\\") else line for line in text.splitlines()) + "\n"
    text = re.sub(r"@extschema(:\w+)?@", "public", text)
    text = text.replace("@extowner@", "postgres")
    return text.replace("MODULE_PATHNAME", "$libdir/extension")


def _version_key(path: Path) -> tuple:
    # install script (ext--1.0.sql) first, then upgrades (ext--1.0--1.1.sql) in version order
    parts = path.stem.split("--")
    return (
        len(parts) > 2,
        [tuple(int(x) if x.isdigit() else 0 for x in re.split(r"[._]", p)) for p in parts[1:]],
    )


def extension_histories() -> dict[str, dict[str, str]]:
    """{"<dir>/<extension>": {file name: SQL}} with each extension's files in apply order."""
    out: dict[str, dict[str, str]] = {}
    for d in extension_dirs():
        by_ext: dict[str, list[Path]] = {}
        for path in d.glob("*.sql"):
            by_ext.setdefault(path.name.split("--")[0], []).append(path)
        for ext, paths in sorted(by_ext.items()):
            out[f"{d.parent.parent.name}/{ext}"] = {
                p.name: as_migration(p.read_text(encoding="utf-8")) for p in sorted(paths, key=_version_key)
            }
    return out
