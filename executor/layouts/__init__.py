"""Migration directory layouts: which tool's files a directory holds, and what they mean.

``LAYOUTS`` is the one explicit list (a new layout is one module plus its line here).
``detect(tree)`` resolves the tree with every layout and keeps the one that recognises the most
migrations (then the one with the most files unmistakably shaped like its own, so a directory that
matches no layout still gets messages in the terms of the tool it resembles); Flyway when nothing looks like a
migration at all.  ``resolve(tree, name)`` uses the layout a user set (``--layout``, ``[tool.schemagate]
layout``) or detects one.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from executor.errors import ConfigurationError
from executor.manifest import DOWN, UP  # the sections of a file, defined with the manifest that records them

if TYPE_CHECKING:
    from executor.layouts.base import (
        Layout,
        MappingTree,
        NameProblem,
        NewMigration,
        Resolution,
        ResolvedMigration,
        SourceTree,
    )


def __getattr__(name: str) -> Any:
    """The names of ``executor.layouts.base`` in ``__all__``, imported when first asked for (a name
    defined here is found without asking): the full CLI reads ``LAYOUTS`` (its ``--layout`` choices)
    on every command, and applying a bundle needs no layout."""
    if name in __all__:
        from executor.layouts import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


DEFAULT_LAYOUT = "flyway"

# name -> "module:class"; the order breaks ties in detection (more specific layouts first)
LAYOUTS: dict[str, str] = {
    "drizzle": "executor.layouts.drizzle:Drizzle",
    "prisma": "executor.layouts.prisma:Prisma",
    "diesel": "executor.layouts.diesel:Diesel",
    "golang-migrate": "executor.layouts.golang_migrate:GolangMigrate",
    "dbmate": "executor.layouts.dbmate:Dbmate",
    "flyway": "executor.layouts.flyway:Flyway",
}

_cache: dict[str, Layout] = {}


def get(name: str | None) -> Layout:
    """The layout called ``name`` (``None``: Flyway). ConfigurationError for an unknown name."""
    key = name or DEFAULT_LAYOUT
    if key in _cache:
        return _cache[key]
    target = LAYOUTS.get(key)
    if target is None:
        raise ConfigurationError(
            f"unknown layout {key!r}",
            remedy=f"use one of: {', '.join(sorted(LAYOUTS))} (or leave it out to detect it)",
        )
    module, _, cls = target.partition(":")
    layout = getattr(import_module(module), cls)()
    _cache[key] = layout
    return layout


def available() -> list[Layout]:
    return [get(name) for name in LAYOUTS]


def detect(tree: SourceTree) -> Resolution:
    """The resolution of ``tree`` by the layout that fits it best (see the module doc)."""
    best: tuple[tuple[int, int, int], Resolution] | None = None
    for priority, layout in enumerate(reversed(available())):
        resolution = layout.resolve(tree)
        found = len(resolution.migrations)
        # ties: the more specific layout when it found migrations, Flyway (the default) otherwise
        rank = (found, resolution.resemblance, priority if found else -priority)
        if best is None or rank > best[0]:
            best = (rank, resolution)
    assert best is not None
    return best[1]


def resolve(tree: SourceTree, name: str | None = None) -> Resolution:
    return get(name).resolve(tree) if name else detect(tree)


__all__ = [
    "DEFAULT_LAYOUT",
    "DOWN",
    "LAYOUTS",
    "UP",
    "Layout",
    "MappingTree",
    "NameProblem",
    "NewMigration",
    "Resolution",
    "ResolvedMigration",
    "SourceTree",
    "available",
    "detect",
    "get",
    "resolve",
]
