"""The one seam that knows how a migration tool names, orders and splits its files.

Every layout (Flyway, Diesel, Prisma, Drizzle, golang-migrate, dbmate) is one ``Layout`` subclass
that turns a directory listing (a ``SourceTree``: relative paths and their bytes, on disk or at a git
ref) into a ``Resolution``: the migrations it holds, each a ``ResolvedMigration`` (version,
description, kind, the file that holds it, the part of the file that is its SQL, whether the tool
runs it in a transaction), and the files that look like migrations of the layout but are malformed
(``NameProblem``, always an error, never skipped).  Everything else in schemagate works on resolved
migrations and never looks at a file name again; Flyway's ``MigrationResolver`` is the model.

A layout is plain Python over plain data: no database, no pglast, no sqlfluff (the Lambda imports it
to read a bundle).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol

from executor.naming import REPEATABLE, UNDO, VERSIONED, MigrationName, Version


class SourceTree(Protocol):
    """What a layout looks at: the regular, non-hidden files under the migrations directory."""

    def paths(self) -> list[str]:
        """Posix paths relative to the migrations directory, sorted."""
        ...

    def read(self, rel: str) -> bytes:
        """The exact bytes of one file (raises KeyError for a path not in ``paths()``)."""
        ...


@dataclass(frozen=True)
class MappingTree:
    """A ``SourceTree`` over bytes held in memory (a git ref's blobs, a test's files)."""

    files: dict[str, bytes]

    def paths(self) -> list[str]:
        return sorted(self.files)

    def read(self, rel: str) -> bytes:
        return self.files[rel]


@dataclass(frozen=True)
class ResolvedMigration:
    """One migration as its layout defines it."""

    rel: str  # the file that holds it, relative to the migrations directory
    name: MigrationName  # kind, version (the layout's own identifier), description, display name
    section: str | None = None  # UP / DOWN when one file holds both (dbmate); None: the whole file
    transactional: bool | None = None  # False when the tool is told to run it outside a transaction
    script: str | None = None  # the name recorded in the history table (default: ``rel``)

    @property
    def kind(self) -> str:
        return self.name.kind

    @property
    def version(self) -> Version | None:
        return self.name.version

    @property
    def history_script(self) -> str:
        return self.script or self.rel

    @property
    def key(self) -> tuple[str, str | None]:
        """Unique within a bundle: a file, or one section of it."""
        return (self.rel, self.section)


@dataclass(frozen=True)
class NameProblem:
    """A file that looks like a migration of the layout but is not one: an error finding."""

    rel: str
    problem: str  # what is wrong, one clause ("the version must be digits")
    example: str | None = None  # a correctly formed path close to ``rel``
    rule: str = "naming-malformed"
    severity: str = "error"  # "warning" for files the tool itself ignores (a Drizzle orphan)
    # for a file that is not a migration itself (a Drizzle journal): the whole message and the remedy,
    # instead of "<rel> is not a valid <Tool> migration: <problem>" and "rename it to <example>"
    message: str | None = None
    remedy: str | None = None


@dataclass
class Resolution:
    """What a layout made of a directory: its migrations, its malformed names, its support files."""

    layout: str
    migrations: list[ResolvedMigration] = field(default_factory=list)
    problems: list[NameProblem] = field(default_factory=list)
    # files the layout reads but that are not migrations (journal, lock file, metadata.toml)
    support_files: list[str] = field(default_factory=list)
    migration_like: int = 0  # files that are, or look like, migrations of this layout
    # how many of those are unmistakably this layout's (detection ranks by it); None: migration_like.
    # Flyway counts only V/U/R-shaped names here, not every ``*.sql`` it would call a near-miss.
    evidence: int | None = None

    @property
    def resemblance(self) -> int:
        return self.migration_like if self.evidence is None else self.evidence


@dataclass(frozen=True)
class NewMigration:
    """What ``schemagate new`` writes: new files (relative path -> text), existing files it rewrites
    (a Drizzle journal gets its entry), and the file to write the SQL into first."""

    files: dict[str, str]
    edit_first: str
    version: str
    updates: dict[str, str] = field(default_factory=dict)


class Layout:
    """A migration tool's directory format.  Subclasses set ``name`` and implement the methods."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""  # the tool's name as its users spell it
    docs: ClassVar[str] = ""  # this layout's page in docs/layouts/
    patterns: ClassVar[str] = ""  # the file patterns, for messages

    def score(self, tree: SourceTree) -> int:
        """How many files of ``tree`` are unmistakably this layout's (0: not this layout)."""
        raise NotImplementedError

    def resolve(self, tree: SourceTree) -> Resolution:
        raise NotImplementedError

    def section_text(self, text: str, section: str | None) -> str:
        """The SQL of one section of a file (whole-file layouts return ``text``).  Lines outside the
        section are kept as empty lines, so line numbers stay those of the file."""
        return text

    def new_migration(
        self, tree: SourceTree, description: str, *, now: datetime, version: str | None = None
    ) -> NewMigration:
        raise NotImplementedError(f"`schemagate new` does not support the {self.name} layout")

    # helpers shared by the layouts ---------------------------------------------------------------

    @staticmethod
    def versioned(
        rel: str,
        version: str,
        description: str,
        *,
        display: str | None = None,
        kind: str = VERSIONED,
        **extra: object,
    ) -> ResolvedMigration:
        name = MigrationName(
            file=display or rel,
            kind=kind,
            version=Version.parse(version),
            description=description,
        )
        return ResolvedMigration(rel=rel, name=name, **extra)  # type: ignore[arg-type]

    @staticmethod
    def repeatable(rel: str, description: str, *, display: str | None = None) -> ResolvedMigration:
        name = MigrationName(file=display or rel, kind=REPEATABLE, version=None, description=description)
        return ResolvedMigration(rel=rel, name=name)


def describe(raw: str) -> str:
    """A description as shown to people: ``_`` and ``-`` as spaces."""
    return re.sub(r"\s+", " ", raw.replace("_", " ")).strip()


def slug(text: str) -> str:
    """A file-name-safe description (``add invoice status`` -> ``add_invoice_status``)."""
    out = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return out or "describe_the_change"


def timestamp(now: datetime) -> str:
    """The UTC timestamp most tools put in front of a new migration (YYYYMMDDHHMMSS)."""
    return now.strftime("%Y%m%d%H%M%S")


def undo_of(m: ResolvedMigration, rel: str, **extra: object) -> ResolvedMigration:
    """The down script of ``m`` held in ``rel`` (or in a section of the same file)."""
    assert m.version is not None
    name = MigrationName(file=rel, kind=UNDO, version=m.version, description=m.name.description)
    return ResolvedMigration(rel=rel, name=name, **extra)  # type: ignore[arg-type]


Reader = Callable[[str], bytes]
