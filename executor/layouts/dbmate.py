"""dbmate's layout: one file per migration, ``<version>_<name>.sql`` (dbmate's default directory is
``db/migrations``), holding both directions::

    -- migrate:up
    create table users (id bigint primary key, email text not null);

    -- migrate:down
    drop table users;

Read the way dbmate reads it (amacneil/dbmate ``pkg/dbmate/db.go`` and ``pkg/dbmate/migration.go``):

- a migration file matches ``^(\\d+).*\\.sql$`` and lies directly in the directory (dbmate does not
  read sub-directories); its version is the leading digits as written (dbmate stores that string in
  ``schema_migrations.version``, usually a UTC timestamp ``20240501120000``), the rest of the name,
  after the version and its ``_``, the description;
- the up section runs from the line ``-- migrate:up`` to the line ``-- migrate:down``, the down
  section from there to the end; options follow the marker on the same line, ``key:value`` separated
  by spaces, and the one dbmate knows is ``transaction:false`` (run that section outside a
  transaction); only comments may come before ``-- migrate:up``.

One file gives two migrations that share the file and its checksum: the up section (versioned) and
the down section (undo, run only by ``schemagate undo``; a down section that holds no SQL, as
``dbmate new`` leaves it, is no undo at all).  ``section_text`` returns one section with every other
line left empty, so findings and errors keep the file's line numbers.

Refused, as naming errors (dbmate refuses them too, or would run them differently than schemagate):
a file without ``-- migrate:up``; ``-- migrate:down`` before ``-- migrate:up``; SQL before
``-- migrate:up``; two files with one version (dbmate records versions, so only the first would ever
run); versions whose file-name order (dbmate's) is not their numeric order (``9_x.sql`` after
``10_y.sql``); near-misses of the name (``.SQL``, no leading version) that hold a ``-- migrate:up``.
Warnings: no ``-- migrate:down`` (dbmate 2 refuses such a file; schemagate runs the up section and has
nothing to undo), an option dbmate ignores (``transaction:False`` still runs in a transaction), a
migration file in a sub-directory (dbmate never runs it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from executor.checksum import decode_sql
from executor.errors import ConfigurationError
from executor.headers import split_statements
from executor.layouts.base import (
    Layout,
    NameProblem,
    NewMigration,
    Resolution,
    SourceTree,
    describe,
    timestamp,
    undo_of,
)
from executor.layouts.numbering import next_version
from executor.manifest import DOWN, UP
from executor.naming import Version

DEFAULT_DIRECTORY = "db/migrations"
NAME_RE = re.compile(r"^(?P<version>\d+)(?P<rest>.*)\.sql$")  # dbmate's migrationFileRegexp
_S = r"[\t\n\f\r ]"  # Go's \s (RE2), which dbmate's patterns use
UP_RE = re.compile(rf"^--{_S}*migrate:up(?P<options>{_S}*$|{_S}+\S+.*$)", re.MULTILINE)
DOWN_RE = re.compile(rf"^--{_S}*migrate:down(?P<options>{_S}*$|{_S}+\S+$)", re.MULTILINE)
_ANY_UP_RE = re.compile(r"^\s*--\s*migrate:up", re.MULTILINE | re.IGNORECASE)
KNOWN_OPTIONS = {"transaction": ("true", "false")}


@dataclass(frozen=True)
class Sections:
    """Where the two sections of a dbmate file start (character offsets) and their options."""

    up: int
    down: int | None  # None: the file has no ``-- migrate:down`` line
    up_options: dict[str, str]
    down_options: dict[str, str]


def find_sections(text: str) -> Sections | str:
    """The sections of a migration's text, or what is wrong with it (dbmate's own errors)."""
    up = UP_RE.search(text)
    down = DOWN_RE.search(text)
    if up is None:
        return "it has no '-- migrate:up' line, so dbmate refuses it (each migration defines an up block)"
    if down is not None and down.start() < up.start():
        return (
            f"'-- migrate:down' (line {_line(text, down.start())}) comes before '-- migrate:up' "
            f"(line {_line(text, up.start())}); dbmate requires up first"
        )
    for offset, line in _lines_before(text, up.start()):
        if line.strip() and not line.lstrip().startswith("--"):
            return (
                f"line {_line(text, offset)} holds SQL before '-- migrate:up' "
                f"(line {_line(text, up.start())}); dbmate refuses statements outside the up and down blocks"
            )
    return Sections(
        up=up.start(),
        down=down.start() if down is not None else None,
        up_options=_options(up.group("options").split("\n")[0]),
        down_options=_options(down.group("options").split("\n")[0]) if down is not None else {},
    )


def _options(text: str) -> dict[str, str]:
    """``transaction:false foo:bar`` -> ``{"transaction": "false", "foo": "bar"}``, as dbmate splits
    them (a token without exactly one ``:`` is ignored)."""
    out = {}
    for token in text.split():
        pair = token.split(":")
        if len(pair) == 2:
            out[pair[0]] = pair[1]
    return out


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _lines_before(text: str, end: int) -> list[tuple[int, str]]:
    out, start = [], 0
    for line in text[:end].split("\n"):
        out.append((start, line))
        start += len(line) + 1
    return out


def _blank_outside(text: str, start: int, end: int) -> str:
    """``text`` with every line outside ``[start, end)`` (line-aligned offsets) left empty."""
    head = "\n" * text.count("\n", 0, start)
    tail = "\n" * text.count("\n", end)
    return head + text[start:end] + tail


def _holds_sql(text: str) -> bool:
    return bool(split_statements(text))


class Dbmate(Layout):
    name = "dbmate"
    title = "dbmate"
    docs = "docs/layouts/dbmate.md"
    patterns = "<version>_<name>.sql with '-- migrate:up' and '-- migrate:down' sections"

    def score(self, tree: SourceTree) -> int:
        return len(self.resolve(tree).migrations)

    def section_text(self, text: str, section: str | None) -> str:
        if section is None:
            return text
        found = find_sections(text)
        if isinstance(found, str):  # the bundle was validated; a file that no longer parses runs nothing
            return "\n" * text.count("\n")
        if section == UP:
            return _blank_outside(text, found.up, found.down if found.down is not None else len(text))
        if found.down is None:
            return "\n" * text.count("\n")
        return _blank_outside(text, found.down, len(text))

    def resolve(self, tree: SourceTree) -> Resolution:
        out = Resolution(layout=self.name)
        candidates: list[tuple[str, str, str]] = []  # (rel, version, description)
        for rel in tree.paths():
            head, _, base = rel.rpartition("/")
            m = NAME_RE.match(base)
            if head:
                if m is not None and _has_up_marker(tree, rel):
                    out.migration_like += 1
                    out.problems.append(
                        NameProblem(
                            rel=rel,
                            problem="dbmate reads only the files directly in the migrations directory, so it "
                            "never runs this one",
                            example=base,
                            severity="warning",
                        )
                    )
                continue
            if m is None:
                if base.lower().endswith(".sql") and _has_up_marker(tree, rel):
                    out.migration_like += 1
                    out.problems.append(NameProblem(rel=rel, problem=_explain(base), example=_suggest(base)))
                continue
            out.migration_like += 1
            candidates.append((rel, m.group("version"), describe(m.group("rest").lstrip("_-. "))))
        accepted = self._check_versions(candidates, out)
        for rel, version, description in accepted:
            self._add(tree, rel, version, description, out)
        return out

    def _check_versions(
        self, candidates: list[tuple[str, str, str]], out: Resolution
    ) -> list[tuple[str, str, str]]:
        """Drop (and report) files whose version another file holds, and report versions whose
        file-name order (dbmate's) differs from their numeric order (schemagate's)."""
        accepted: list[tuple[str, str, str]] = []
        by_number: dict[Version, str] = {}
        free = max((int(v) for _, v, _ in candidates), default=0) + 1
        for rel, version, description in sorted(candidates):  # dbmate's order: by file name
            number = Version.parse(version)
            if number in by_number:
                out.problems.append(
                    NameProblem(
                        rel=rel,
                        problem=f"version {version} is also the version of {by_number[number]}; dbmate "
                        "records versions, not files, so only one of the two would ever run",
                        example=f"{str(free).zfill(len(version))}_{_stem(rel)}.sql",
                    )
                )
                free += 1
                continue
            by_number[number] = rel
            accepted.append((rel, version, description))
        highest: tuple[Version, str, str] | None = None  # the highest version so far, its file and text
        for rel, version, _ in accepted:
            number = Version.parse(version)
            if highest is not None and number < highest[0]:
                out.problems.append(
                    NameProblem(
                        rel=rel,
                        problem=f"dbmate applies files in name order, so it runs {highest[1]} (version "
                        f"{highest[2]}) before this one (version {version}); schemagate applies them by "
                        "version, the other way round",
                        example=f"{version.zfill(len(highest[2]))}_{_stem(rel)}.sql",
                    )
                )
            elif highest is None or number > highest[0]:
                highest = (number, rel, version)
        return accepted

    def _add(self, tree: SourceTree, rel: str, version: str, description: str, out: Resolution) -> None:
        try:
            text = decode_sql(tree.read(rel))
        except UnicodeDecodeError:  # discovery reports the encoding; the file is kept as one migration
            out.migrations.append(self.versioned(rel, version, description, section=UP))
            return
        found = find_sections(text)
        if isinstance(found, str):
            out.problems.append(
                NameProblem(
                    rel=rel,
                    problem=found
                    + "; start the file with a line '-- migrate:up', and put '-- migrate:down' before the "
                    "SQL that reverses it",
                )
            )
            return
        for key, value in {**found.up_options, **found.down_options}.items():
            if key == "migrate":  # dbmate reads its own marker as the pair migrate:up / migrate:down
                continue
            allowed = KNOWN_OPTIONS.get(key)
            if allowed is None or value not in allowed:
                out.problems.append(
                    NameProblem(
                        rel=rel,
                        problem=f"dbmate ignores the option '{key}:{value}'"
                        + (
                            " (only 'transaction:false' runs a section outside a transaction)"
                            if key == "transaction"
                            else ""
                        )
                        + "; the section runs in a transaction",
                        severity="warning",
                    )
                )
        up = self.versioned(
            rel,
            version,
            description,
            section=UP,
            transactional=False if found.up_options.get("transaction") == "false" else None,
        )
        out.migrations.append(up)
        if found.down is None:
            out.problems.append(
                NameProblem(
                    rel=rel,
                    problem="it has no '-- migrate:down' line: dbmate 2 refuses such a file; schemagate runs "
                    "everything after '-- migrate:up' and has nothing to undo (add a '-- migrate:down' line "
                    "after the up section, with nothing after it if the change cannot be undone)",
                    severity="warning",
                )
            )
            return
        if _holds_sql(self.section_text(text, DOWN)):
            down_tx = False if found.down_options.get("transaction") == "false" else None
            out.migrations.append(undo_of(up, rel, section=DOWN, transactional=down_tx))

    def new_migration(
        self, tree: SourceTree, description: str, *, now: datetime, version: str | None = None
    ) -> NewMigration:
        existing = [m.version for m in self.resolve(tree).migrations if m.section == UP and m.version]
        if version is None:
            version = next_version(existing, now=now) if existing else timestamp(now)
        elif not version.isdigit():
            raise ConfigurationError(
                f"--version {version!r} is not a dbmate version",
                remedy="dbmate versions are the leading digits of the file name, for example "
                "--version 20240501120000",
            )
        elif Version.parse(version) in existing:
            raise ConfigurationError(
                f"version {version} is already used", remedy="leave out --version to get the next free one"
            )
        rel = f"{version}_{description}.sql"
        text = (
            "-- migrate:up\n"
            f"-- {description.replace('_', ' ')}: created by `schemagate new` on "
            f"{now.strftime('%Y-%m-%d %H:%M')} UTC.\n"
            "-- The up section runs in one transaction with its history row; a section that cannot\n"
            "-- (CREATE INDEX CONCURRENTLY, ...) says so on its marker: '-- migrate:up transaction:false'.\n"
            "\n"
            "\n"
            "-- migrate:down\n"
            "-- Reverses the up section; run only by `schemagate undo` (or `dbmate rollback`).\n"
            "\n"
        )
        return NewMigration(files={rel: text}, edit_first=rel, version=version)


def _has_up_marker(tree: SourceTree, rel: str) -> bool:
    try:
        return bool(_ANY_UP_RE.search(tree.read(rel).decode("utf-8", errors="replace")))
    except KeyError:
        return False


def _stem(rel: str) -> str:
    base = rel.rpartition("/")[2]
    return (
        re.sub(r"^\d+[_\-.]*", "", re.sub(r"\.sql$", "", base, flags=re.IGNORECASE)) or "describe_the_change"
    )


def _explain(base: str) -> str:
    if not base.endswith(".sql"):
        return "the extension must be lower-case '.sql' (dbmate ignores any other)"
    return "the name must start with the version digits (dbmate: <version>_<name>.sql), so dbmate ignores it"


def _suggest(base: str) -> str:
    m = re.match(r"^(\d+)", base)
    return f"{m.group(1) if m else '<YYYYMMDDHHMMSS>'}_{_stem(base)}.sql"
