"""What the layouts that keep each migration in a directory of its own share (Diesel, Prisma).

Both tools put one directory per migration directly under the migrations directory, named
``<version>_<name>`` (Diesel: ``2024-05-01-120000_create_users``; Prisma: ``20240501120000_init``), with
the tool's script files inside (Diesel ``up.sql`` / ``down.sql`` / ``metadata.toml``, Prisma
``migration.sql``).  Neither tool looks at anything else, so a ``.sql`` file anywhere else is a
migration that would silently never run: the layouts report it.

- ``split_tree``: the paths as top-level files, files of each directory, files nested deeper;
- ``near_miss``: the tool's file name a typo was meant to be (``upp.sql`` -> ``up.sql``);
- ``text_order_problems``: both tools order migrations as text (Diesel compares version strings,
  Prisma sorts directory names), schemagate orders versions as numbers; where the two orders differ
  (``9_fix`` and ``10_add``) the history would run in another order under schemagate.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from executor.layouts.base import NameProblem, ResolvedMigration, SourceTree
from executor.naming import VERSIONED


@dataclass
class TreeParts:
    top: list[str] = field(default_factory=list)  # files directly under the migrations directory
    directories: dict[str, dict[str, str]] = field(default_factory=dict)  # dir -> {file name: rel}
    nested: list[str] = field(default_factory=list)  # files two or more directories deep


def split_tree(tree: SourceTree) -> TreeParts:
    parts = TreeParts()
    for rel in tree.paths():
        pieces = rel.split("/")
        if len(pieces) == 1:
            parts.top.append(rel)
        elif len(pieces) == 2:
            parts.directories.setdefault(pieces[0], {})[pieces[1]] = rel
        else:
            parts.nested.append(rel)
    return parts


def is_sql(name: str) -> bool:
    """A file meant to hold SQL (any case of the extension: ``UP.SQL`` is a typo, not another file)."""
    return name.lower().endswith(".sql")


def near_miss(name: str, expected: Iterable[str]) -> str | None:
    """The expected file name closest to ``name`` (``upp.sql``, ``Up.sql``, ``up.sql.sql`` -> ``up.sql``)."""
    found = difflib.get_close_matches(name.lower(), list(expected), n=1, cutoff=0.6)
    return found[0] if found else None


def text_order_problems(
    migrations: list[ResolvedMigration],
    *,
    tool: str,
    text_key: Callable[[ResolvedMigration], str],
    what: str,
) -> list[NameProblem]:
    """A problem for every pair of neighbouring versions that ``tool`` (ordering ``text_key`` as text)
    would run in the other order than schemagate (ordering versions as numbers).  The example pads
    the shorter version with zeros on the right, which keeps the tool's order (the order the
    migrations were applied in): ``2025-01-01-000000_y`` next to ``2024-06-01-100000-0001_x`` becomes
    ``202501010000000000_y``."""
    versioned = sorted(
        (m for m in migrations if m.kind == VERSIONED and m.version is not None),
        key=lambda m: (m.version.parts, m.rel),  # type: ignore[union-attr]
    )
    problems = []
    for first, second in pairwise(versioned):
        if first.version == second.version or text_key(first) <= text_key(second):
            continue
        shorter = first if len(first.version.text) < len(second.version.text) else second  # type: ignore[union-attr]
        longer = second if shorter is first else first
        problems.append(
            NameProblem(
                rel=shorter.rel,
                problem=f"{tool} orders migrations by {what} as text, so it runs {second.rel} before "
                f"{first.rel}, while schemagate compares versions as numbers and runs {first.rel} "
                "first: the versions have different numbers of digits, and the two tools would apply "
                "the history in different orders",
                example=(example := _padded(shorter, len(longer.version.text))),  # type: ignore[union-attr]
                rule="naming-version-order",
                remedy=f"rename it to {example}: both orders then agree, and it keeps {tool}'s, the one "
                f"the migrations were applied in; where {tool} applied it already, its record in {tool}'s "
                "history table keeps the old name, so change it there too before importing",
            )
        )
    return problems


def _padded(m: ResolvedMigration, width: int) -> str:
    """``m``'s path with the version of its directory padded with zeros on the right to ``width``."""
    directory, _, file = m.rel.partition("/")
    _, _, rest = directory.partition("_")
    return f"{m.version.text.ljust(width, '0')}_{rest}/{file}"  # type: ignore[union-attr]
