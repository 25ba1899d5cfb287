"""``schemagate new <description>``: create the next versioned migration file.

The version follows the style of the highest existing version:

| existing (highest)          | next                                                        |
|-----------------------------|-------------------------------------------------------------|
| none                        | ``V001``                                                    |
| ``V042`` (padded)           | ``V043`` (same width; ``V999`` is followed by ``V1000``)    |
| ``V7``                      | ``V8``                                                      |
| ``V1.2`` / ``V1_2``         | ``V1.3`` / ``V1_3``: the last part counts up, the release   |
|                             | stays (start a new one with ``--version 2.0``)              |
| ``V2024_05_01_1200``,       | the current UTC time in the same layout (digits and         |
| ``V20240501120000``         | separators); the next number if the clock is not ahead      |

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

from executor.errors import ConfigurationError
from executor.naming import DESCRIPTION_RE, VERSION_RE, VERSIONED, Version, format_version_like, parse_name
from validator.config import load_config

DEFAULT_FIRST_VERSION = "001"
_DATE_LAYOUTS = {8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}
_MAX_DESCRIPTION = 120


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


def next_version(existing: list[Version], *, now: datetime | None = None) -> str:
    """The version after the highest of ``existing``, written in its style (see the module doc)."""
    if not existing:
        return DEFAULT_FIRST_VERSION
    highest = max(existing)
    text = highest.text
    digits = re.sub(r"[._]", "", text)
    layout = _DATE_LAYOUTS.get(len(digits))
    if layout and _is_date(digits[:8]):
        stamp = (now or datetime.now(UTC)).strftime(layout)
        candidate = _with_separators_of(text, stamp)
        if Version.parse(candidate) > highest:
            return candidate
    if text.isdigit():
        return format_version_like(text, int(text) + 1)
    head, last = re.match(r"^(.*[._])(\d+)$", text).groups()  # type: ignore[union-attr]
    return head + str(int(last) + 1).zfill(len(last))


def _is_date(digits: str) -> bool:
    try:
        day = datetime.strptime(digits, "%Y%m%d")
    except ValueError:
        return False
    return 1990 <= day.year <= 2200


def _with_separators_of(template: str, digits: str) -> str:
    """``digits`` with the separators of ``template`` at the same places."""
    out, i = [], 0
    for ch in template:
        if ch in "._":
            out.append(ch)
        else:
            out.append(digits[i])
            i += 1
    return "".join(out)


def existing_versions(migrations_dir: Path) -> list[Version]:
    """Versions of the well-named versioned files under ``migrations_dir`` (recursively)."""
    versions = []
    if migrations_dir.is_dir():
        for path in migrations_dir.rglob("V*"):
            verdict = parse_name(path.name)
            if path.is_file() and verdict.name and verdict.name.kind == VERSIONED and verdict.name.version:
                versions.append(verdict.name.version)
    return versions


def header(version: str, description: str, now: datetime) -> str:
    return (
        f"-- V{version}: {description.replace('_', ' ')}\n"
        f"-- Created by `schemagate new` on {now.strftime('%Y-%m-%d %H:%M')} UTC.\n"
        "-- One change per file: the executor applies the file in a single transaction and records it.\n"
        "-- A statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY, ...) goes alone in\n"
        "-- a file of its own.\n"
        "\n"
    )


def create_migration(
    migrations_dir: Path,
    words: tuple[str, ...] | list[str],
    *,
    version: str | None = None,
    now: datetime | None = None,
) -> Path:
    """Create ``V<next>__<description>.sql`` in ``migrations_dir`` and return its path."""
    now = now or datetime.now(UTC)
    description = slug_description(words)
    existing = existing_versions(migrations_dir)
    if version is None:
        version = next_version(existing, now=now)
    elif not VERSION_RE.match(version):
        raise ConfigurationError(
            f"--version {version!r} is not a migration version",
            remedy="digits separated by '.' or '_', for example --version 2.0 or --version 043",
        )
    elif Version.parse(version) in existing:
        raise ConfigurationError(
            f"version {version} is already used in {migrations_dir}",
            remedy="leave out --version to get the next free one",
        )
    name = f"V{version}__{description}.sql"
    assert parse_name(name).ok, name
    migrations_dir.mkdir(parents=True, exist_ok=True)
    path = migrations_dir / name
    if path.exists():  # pragma: no cover - the version was free a moment ago
        raise ConfigurationError(f"{path} already exists", remedy="pick another description")
    path.write_text(header(version, description, now), encoding="utf-8")
    return path


def register(group: click.Group) -> None:
    """Add ``schemagate new`` to the group."""

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
    def new(description: tuple[str, ...], migrations_dir: Path | None, version: str | None) -> None:
        """Create the next V<version>__<description>.sql, numbered like the existing files.

        Example: schemagate new add invoice status  ->  migrations/V043__add_invoice_status.sql
        """
        config = load_config(Path.cwd(), migrations=migrations_dir)
        existed = config.migrations.is_dir()
        path = create_migration(config.migrations, description, version=version)
        if not existed:
            click.echo(f"created directory {config.migrations}", err=True)
        click.echo(str(path))
        click.echo("write the SQL into it, then run `schemagate validate`", err=True)
