"""Migration file names and versions (README.md "Migration files").

``parse_name`` returns a verdict, never raises: either a ``MigrationName`` or a problem with a
correctly formed example, the way Flyway's ResourceNameParser does.

| kind       | pattern                          |
|------------|----------------------------------|
| versioned  | ``V<version>__<description>.sql`` |
| repeatable | ``R__<description>.sql``          |
| undo       | ``U<version>__<description>.sql`` |
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

VERSIONED = "versioned"
REPEATABLE = "repeatable"
UNDO = "undo"
KINDS = (VERSIONED, REPEATABLE, UNDO)

_VERSION = r"\d+(?:[._]\d+)*"
# what ``schemagate new`` writes: letters, digits and "_"
_DESCRIPTION = r"[A-Za-z0-9_]*[A-Za-z0-9][A-Za-z0-9_]*"
# what Flyway accepts in a name: anything but a path separator or a control character, with at least
# one character that is not "_" or white space ("V2__add-index.sql", "V3__Add user.email.sql")
_ACCEPTED_DESCRIPTION = r"[^/\\\x00-\x1f]*[^/\\\x00-\x1f_\s][^/\\\x00-\x1f]*"
VERSIONED_RE = re.compile(
    rf"^(?P<prefix>[VU])(?P<version>{_VERSION})__(?P<description>{_ACCEPTED_DESCRIPTION})\.sql$"
)
REPEATABLE_RE = re.compile(rf"^R__(?P<description>{_ACCEPTED_DESCRIPTION})\.sql$")
VERSION_RE = re.compile(rf"^{_VERSION}$")
DESCRIPTION_RE = re.compile(rf"^{_DESCRIPTION}$")
ACCEPTED_DESCRIPTION_RE = re.compile(rf"^{_ACCEPTED_DESCRIPTION}$")
# Names that are meant to be migrations but are not well formed: anything ending in .sql (any
# case) and anything starting like a migration prefix (V1..., R_..., U2...).
_LOOKS_LIKE_MIGRATION_RE = re.compile(r"^([VvUu]\d|[Rr]_)")


@dataclass(frozen=True)
class Version:
    """A migration version: numeric parts compared one by one, trailing zeros ignored.

    ``Version.parse("1.10") > Version.parse("1.9")`` and ``Version.parse("001") == Version.parse("1")``.
    """

    text: str
    parts: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> Version:
        if cls is Version:
            return _parse_version(text)  # versions are immutable: one per text, shared
        return cls._build(text)

    @classmethod
    def _build(cls, text: str) -> Version:
        if not VERSION_RE.match(text):
            raise ValueError(f"not a migration version: {text!r} (digits separated by '.' or '_')")
        parts = [int(p) for p in re.split(r"[._]", text)]
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        return cls(text=text, parts=tuple(parts))

    @property
    def key(self) -> tuple[int, ...]:
        return self.parts

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.parts == other.parts

    def __hash__(self) -> int:
        return hash(self.parts)

    # the four comparisons written out (not functools.total_ordering, whose derived ones call two
    # methods each): a history's versions are sorted and compared on every plan
    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.parts < other.parts

    def __le__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.parts <= other.parts

    def __gt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.parts > other.parts

    def __ge__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.parts >= other.parts

    def __str__(self) -> str:
        return self.text


@lru_cache(maxsize=4096)
def _parse_version(text: str) -> Version:
    return Version._build(text)


@dataclass(frozen=True)
class MigrationName:
    """A well-formed migration file name."""

    file: str  # base name, e.g. "V042__add_invoices.sql"
    kind: str  # VERSIONED, REPEATABLE or UNDO
    version: Version | None  # None for repeatables
    description: str  # with "_" shown as spaces

    @property
    def sort_key(self) -> tuple[int, tuple[int, ...], str, str]:
        """Versioned first (by version), then repeatables (by description); undo last."""
        order = {VERSIONED: 0, REPEATABLE: 1, UNDO: 2}[self.kind]
        return (order, self.version.parts if self.version else (), self.description, self.file)


@dataclass(frozen=True)
class NameVerdict:
    """Either ``name`` is set, or ``problem`` says what is wrong and ``example`` shows a good name."""

    file: str
    name: MigrationName | None = None
    problem: str | None = None
    example: str | None = None
    is_migration_like: bool = True

    @property
    def ok(self) -> bool:
        return self.name is not None


def description_text(raw: str) -> str:
    return raw.replace("_", " ").strip()


def looks_like_migration(file: str) -> bool:
    """True when a file under the migrations directory is meant to be a migration."""
    base = file.rsplit("/", 1)[-1]
    return base.lower().endswith(".sql") or bool(_LOOKS_LIKE_MIGRATION_RE.match(base))


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").lower()
    return slug or "describe_the_change"


def suggest_name(file: str) -> str:
    """A correctly formed name close to ``file`` (used in error messages)."""
    base = file.rsplit("/", 1)[-1]
    stem = re.sub(r"\.sql$", "", base, flags=re.IGNORECASE)
    m = re.match(r"^([VvUuRr])([\d._]*)(.*)$", stem)
    if not m:
        return f"V1__{_slug(stem)}.sql"
    prefix, version, rest = m.group(1).upper(), m.group(2).strip("._"), m.group(3)
    description = _slug(rest)
    if prefix == "R":
        return f"R__{description}.sql"
    version = re.sub(r"[._]+", ".", version) or "1"
    return f"{prefix}{version}__{description}.sql"


def parse_name(file: str) -> NameVerdict:
    """Classify one file name (the base name; a relative path is accepted)."""
    base = file.rsplit("/", 1)[-1]
    if not looks_like_migration(base):
        return NameVerdict(file=file, problem="not a migration file", is_migration_like=False)

    m = VERSIONED_RE.match(base)
    if m:
        kind = VERSIONED if m.group("prefix") == "V" else UNDO
        return NameVerdict(
            file=file,
            name=MigrationName(
                file=base,
                kind=kind,
                version=Version.parse(m.group("version")),
                description=description_text(m.group("description")),
            ),
        )
    m = REPEATABLE_RE.match(base)
    if m:
        return NameVerdict(
            file=file,
            name=MigrationName(
                file=base, kind=REPEATABLE, version=None, description=description_text(m.group("description"))
            ),
        )
    return NameVerdict(file=file, problem=_explain(base), example=suggest_name(base))


def _explain(base: str) -> str:
    """Say precisely why a migration-like name is malformed."""
    if not base.endswith(".sql"):
        if base.lower().endswith(".sql"):
            return "the extension must be lower-case '.sql'"
        return "a migration file must end in '.sql'"
    stem = base[: -len(".sql")]
    first = stem[:1]
    if first in ("v", "u", "r"):
        return f"the prefix must be upper-case '{first.upper()}'"
    if first not in ("V", "U", "R"):
        return "the name must start with 'V' (versioned), 'R' (repeatable) or 'U' (undo)"
    if "__" not in stem:
        return "the version and the description must be separated by two underscores '__'"
    head, _, desc = stem.partition("__")
    if not desc:
        return "the description after '__' is empty"
    if not ACCEPTED_DESCRIPTION_RE.match(desc):
        return "the description may not be only '_' and white space, nor hold control characters"
    if first == "R":
        if head != "R":
            return "a repeatable migration has no version: 'R__<description>.sql'"
    elif not VERSION_RE.match(head[1:]):
        return "the version must be digits separated by '.' or '_' (for example 1, 001, 1.2, 2024_05_01_1200)"
    return (
        "the name does not match V<version>__<description>.sql, R__<description>.sql "
        "or U<version>__<description>.sql"
    )


def format_version_like(previous: str | None, number: int) -> str:
    """Render ``number`` in the style of ``previous`` (zero padding), used by ``schemagate new``."""
    if previous and previous.isdigit() and len(previous) > 1 and previous.startswith("0"):
        return str(number).zfill(len(previous))
    if previous and previous.isdigit():
        return str(number).zfill(len(previous)) if len(str(number)) <= len(previous) else str(number)
    return str(number)
