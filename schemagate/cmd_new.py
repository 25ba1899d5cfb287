"""``schemagate new <description>``: create the next migration in the directory's layout.

The layout (``executor.layouts``) decides the file names and the numbering: Flyway numbers like the
highest existing version (``V042`` -> ``V043``, ``V1.2`` -> ``V1.3``, a timestamp -> the current UTC
time in the same style; see ``executor.layouts.numbering``), the timestamp layouts (Prisma, Diesel,
dbmate, golang-migrate with timestamps) take the current UTC time, Drizzle also gets its journal entry,
Diesel a directory with ``up.sql`` and ``down.sql``.  The path of the file to write first is printed.

The description is made from the words given (``schemagate new add invoice status`` ->
``add_invoice_status``); spaces and hyphens become ``_``; anything else that a migration name
cannot hold (letters outside ASCII, punctuation) is refused with a usable example (exit 2).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import click

from executor import layouts
from executor.errors import ConfigurationError
from executor.layouts.numbering import next_version
from executor.naming import DESCRIPTION_RE

_MAX_DESCRIPTION = 120
__all__ = ["create_migration", "next_version", "slug_description"]


def slug_description(words: tuple[str, ...] | list[str]) -> str:
    """The file-name description for ``words``; ConfigurationError when it cannot be one."""
    joined = "_".join(w.strip() for w in words if w.strip())
    slug = re.sub(r"[\s\-]+", "_", joined)
    slug = re.sub(r"_+", "_", slug).strip("_")
    if slug and DESCRIPTION_RE.match(slug) and len(slug) <= _MAX_DESCRIPTION:
        return slug
    ascii_words = unicodedata.normalize("NFKD", joined).encode("ascii", "ignore").decode()
    suggestion = re.sub(r"[^A-Za-z0-9]+", "_", ascii_words).strip("_")[:_MAX_DESCRIPTION]
    suggestion = suggestion or "add_invoice_status"
    if not joined:
        problem = "the description is empty"
    elif len(slug) > _MAX_DESCRIPTION:
        problem = f"the description is longer than {_MAX_DESCRIPTION} characters"
    else:
        bad = sorted({c for c in slug if not (c.isascii() and (c.isalnum() or c == "_"))})
        problem = "a migration name can hold only ASCII letters, digits and '_', " + (
            f"not {' '.join(map(repr, bad))}"
        )
    raise ConfigurationError(
        f"cannot make a migration name from {' '.join(words)!r}: {problem}",
        remedy=f"for example: schemagate new {suggestion.replace('_', ' ')}  "
        f"(creates V<next>__{suggestion}.sql)",
    )


def create_migration(
    migrations_dir: Path,
    words: tuple[str, ...] | list[str],
    *,
    version: str | None = None,
    now: datetime | None = None,
    layout: str | None = None,
) -> Path:
    """Create the next migration in ``migrations_dir`` and return the path of the file to write."""
    from validator.discovery import DirectoryTree

    now = now or datetime.now(UTC)
    description = slug_description(words)
    tree = DirectoryTree(migrations_dir) if migrations_dir.is_dir() else layouts.MappingTree({})
    chosen = layouts.get(layout) if layout else layouts.get(layouts.detect(tree).layout)
    new = chosen.new_migration(tree, description, now=now, version=version)
    for rel in new.files:
        if (migrations_dir / rel).exists():  # pragma: no cover - the version was free a moment ago
            raise ConfigurationError(
                f"{migrations_dir / rel} already exists", remedy="pick another description"
            )
    migrations_dir.mkdir(parents=True, exist_ok=True)
    for rel, text in {**new.files, **new.updates}.items():
        path = migrations_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return migrations_dir / new.edit_first


def register(group: click.Group) -> None:
    """Add ``schemagate new`` to the group."""
    from schemagate.target import layout_option

    @group.command("new")
    @click.argument("description", nargs=-1, required=True)
    @click.option(
        "--migrations",
        "migrations_dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="migrations directory (default: [tool.schemagate] migrations, else ./migrations)",
    )
    @click.option("--version", "version", default=None, help="use this version instead of the next one")
    @layout_option
    def new(description: tuple[str, ...], migrations_dir: Path | None, version: str | None) -> None:
        """Create the next migration (in the directory's layout), numbered like the existing files.

        Example: schemagate new add invoice status  ->  migrations/V043__add_invoice_status.sql
        """
        from schemagate.target import load_config as load_with_flags

        config = load_with_flags(migrations_dir)
        existed = config.migrations.is_dir()
        path = create_migration(config.migrations, description, version=version, layout=config.layout)
        if not existed:
            click.echo(f"created directory {config.migrations}", err=True)
        click.echo(str(path))
        click.echo("write the SQL into it, then run `schemagate validate`", err=True)
