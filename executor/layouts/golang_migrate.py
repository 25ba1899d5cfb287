"""golang-migrate's layout: ``<version>_<title>.up.sql`` and ``<version>_<title>.down.sql``, side by
side in one directory.

Names are read with golang-migrate's own pattern (``source/parse.go`` in golang-migrate/migrate,
``^([0-9]+)_(.*)\\.(down|up)\\.(.*)$``): the version is the leading number (golang-migrate parses it as
an unsigned integer and its PostgreSQL driver stores it as ``bigint``, so ``000001`` is version 1), the
title is everything up to ``.up``/``.down`` and may hold dots and hyphens (``0002_1.7.0_schema.up.sql``).
Like golang-migrate's file source (``source/iofs/iofs.go``), only the files directly in the directory
count; sub-directories are not read.

- an ``.up.sql`` file is a versioned migration, its history version the number (``1``), its script the
  file name;
- an ``.down.sql`` file is the undo of the up file with the same number; one that holds no SQL (the
  empty down file of an irreversible change, as ``migrate create`` leaves it) is no undo at all, so
  ``schemagate undo`` refuses instead of recording a reversal that changes nothing;
- refused, as naming errors: what golang-migrate would run but schemagate cannot map (``.up.SQL``,
  ``.up.sql.bak``: golang-migrate accepts any extension), what golang-migrate refuses (two up files for
  one version), what it would record without running (a down file without its up file: ``migrate up``
  sets the version and runs nothing), versions beyond ``bigint``, and near-misses of the pattern
  (``0001-init.up.sql``, ``0001_init.UP.sql``, ``0001_init.sql``);
- a file of the pattern in a sub-directory is a warning: golang-migrate never runs it.

Files wrapped in ``BEGIN; ... COMMIT;`` are the norm here (golang-migrate sends a file as one query
string, so teams write the transaction themselves); the validator and executor decide what that means.
"""

from __future__ import annotations

import re
from collections import defaultdict
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
    undo_of,
)
from executor.layouts.numbering import next_version
from executor.naming import Version

# golang-migrate's source.Regex, verbatim in meaning
NAME_RE = re.compile(r"^(?P<version>[0-9]+)_(?P<title>.*)\.(?P<direction>down|up)\.(?P<ext>.*)$")
# names meant to be golang-migrate migrations that its pattern (or schemagate's ".sql") rejects
_NEAR_MISS_RE = re.compile(r"^[0-9]+.*\.sql$|\.(up|down)\.[^/]*$", re.IGNORECASE)
BIGINT_MAX = 2**63 - 1
FIRST_VERSION = "000001"  # `migrate create -seq` (6 digits, its default width)
UP, DOWN = "up", "down"
_UNIX_TIME_DIGITS = 10  # `migrate create -format unix`


@dataclass(frozen=True)
class _Name:
    rel: str
    digits: str  # the version as written (000042)
    number: int
    title: str
    direction: str


class GolangMigrate(Layout):
    name = "golang-migrate"
    title = "golang-migrate"
    docs = "docs/layouts/golang-migrate.md"
    patterns = "<version>_<title>.up.sql and <version>_<title>.down.sql"

    def score(self, tree: SourceTree) -> int:
        return len(self.resolve(tree).migrations)

    def resolve(self, tree: SourceTree) -> Resolution:
        out = Resolution(layout=self.name)
        names: dict[tuple[int, str], list[_Name]] = defaultdict(list)
        for rel in tree.paths():
            head, _, base = rel.rpartition("/")
            name = self._parse(rel, base, out, nested=bool(head))
            if name is not None:
                names[(name.number, name.direction)].append(name)
        ups = {number: self._first(group, out) for (number, d), group in names.items() if d == UP}
        downs = {number: self._first(group, out) for (number, d), group in names.items() if d == DOWN}
        for number in sorted(ups):
            up = ups[number]
            migration = self.versioned(up.rel, str(number), describe(up.title), display=up.rel)
            out.migrations.append(migration)
            down = downs.get(number)
            if down is not None and _holds_sql(tree.read(down.rel)):
                out.migrations.append(undo_of(migration, down.rel))
        for number in sorted(set(downs) - set(ups)):
            down = downs[number]
            out.problems.append(
                NameProblem(
                    rel=down.rel,
                    problem=f"there is no up file for version {number}: golang-migrate would record version "
                    f"{number} as applied without running anything",
                    example=down.rel.replace(".down.sql", ".up.sql"),
                )
            )
        return out

    def _parse(self, rel: str, base: str, out: Resolution, *, nested: bool) -> _Name | None:
        m = NAME_RE.match(base)
        if nested:
            if m is not None or _NEAR_MISS_RE.search(base):
                out.migration_like += 1
                out.problems.append(
                    NameProblem(
                        rel=rel,
                        problem="golang-migrate reads only the files directly in the migrations directory, "
                        "so it never runs this one",
                        example=base,
                        severity="warning",
                    )
                )
            return None
        if m is None:
            if _NEAR_MISS_RE.search(base):
                out.migration_like += 1
                out.problems.append(NameProblem(rel=rel, problem=_explain(base), example=_suggest(base)))
            return None
        out.migration_like += 1
        digits, title, direction, ext = m.group("version", "title", "direction", "ext")
        if ext != "sql":
            problem = (
                "the extension must be lower-case '.sql'"
                if ext.lower() == "sql"
                else f"golang-migrate runs a file of any extension ('.{ext}'), but a migration here must end "
                f"in '.{direction}.sql'"
            )
            out.problems.append(
                NameProblem(rel=rel, problem=problem, example=f"{digits}_{title}.{direction}.sql")
            )
            return None
        number = int(digits)
        if number > BIGINT_MAX:
            out.problems.append(
                NameProblem(
                    rel=rel,
                    problem=f"the version {digits} is larger than golang-migrate's bigint version column "
                    "holds",
                    example=f"{FIRST_VERSION}_{title}.{direction}.sql",
                )
            )
            return None
        return _Name(rel=rel, digits=digits, number=number, title=title, direction=direction)

    @staticmethod
    def _first(group: list[_Name], out: Resolution) -> _Name:
        """The first file of a version's direction; the others are errors (golang-migrate refuses to
        start with a duplicate migration)."""
        first, *others = sorted(group, key=lambda n: n.rel)
        for other in others:
            kind = "an up" if other.direction == UP else "a down"
            out.problems.append(
                NameProblem(
                    rel=other.rel,
                    problem=f"version {other.number} already has {kind} file ({first.rel}); "
                    "golang-migrate refuses to run with two (duplicate migration)",
                    example=f"<next version>_{other.title}.{other.direction}.sql",
                )
            )
        return first

    def new_migration(
        self, tree: SourceTree, description: str, *, now: datetime, version: str | None = None
    ) -> NewMigration:
        written = [Version.parse(n.digits) for n in _up_names(tree)]
        if version is None:
            version = _next_version(written, now)
        elif not version.isdigit():
            raise ConfigurationError(
                f"--version {version!r} is not a golang-migrate version",
                remedy="golang-migrate versions are digits only, for example --version 000043 or "
                "--version 20240501120000",
            )
        elif int(version) in {v.parts[0] for v in written}:
            raise ConfigurationError(
                f"version {version} is already used", remedy="leave out --version to get the next free one"
            )
        up = f"{version}_{description}.up.sql"
        down = f"{version}_{description}.down.sql"
        text = description.replace("_", " ")
        stamp = now.strftime("%Y-%m-%d %H:%M")
        return NewMigration(
            files={
                up: (
                    f"-- {up}: {text}\n"
                    f"-- Created by `schemagate new` on {stamp} UTC.\n"
                    "-- schemagate runs the file in one transaction with its history row\n"
                    "-- (a BEGIN; ... COMMIT; around the whole file is accepted, not needed).\n"
                    "-- A statement that cannot run in a transaction (CREATE INDEX CONCURRENTLY, ...)\n"
                    "-- goes alone in a file of its own.\n"
                    "\n"
                ),
                down: (
                    f"-- {down}: reverses {up}.\n"
                    "-- Run only by `schemagate undo` (or `migrate down 1`); left without SQL, the change\n"
                    "-- cannot be undone.\n"
                    "\n"
                ),
            },
            edit_first=up,
            version=str(int(version)),
        )


def _up_names(tree: SourceTree) -> list[_Name]:
    found = []
    for rel in tree.paths():
        m = NAME_RE.match(rel)
        if m and "/" not in rel and m.group("direction") == UP and m.group("ext") == "sql":
            found.append(_Name(rel, m["version"], int(m["version"]), m["title"], UP))
    return found


def _next_version(written: list[Version], now: datetime) -> str:
    """The next version in the directory's style: sequential (``000042`` -> ``000043``, the width of
    ``-seq -digits N``), a UTC timestamp (``20240501120000``, golang-migrate's default), or Unix seconds
    (``-format unix``); ``000001`` in an empty directory."""
    if not written:
        return FIRST_VERSION
    highest = max(written)
    if len(highest.text) == _UNIX_TIME_DIGITS and highest.parts[0] >= 10**9:
        return str(max(int(now.timestamp()), highest.parts[0] + 1))
    return next_version(written, now=now, first=FIRST_VERSION)


def _holds_sql(data: bytes) -> bool:
    try:
        return bool(split_statements(decode_sql(data)))
    except UnicodeDecodeError:
        return True  # kept, so that discovery reports the encoding


def _explain(base: str) -> str:
    if not base[:1].isdigit():
        return "the name must start with the version number (golang-migrate: <version>_<title>.up.sql)"
    digits = re.match(r"^[0-9]+", base).group(0)  # type: ignore[union-attr]
    rest = base[len(digits) :]
    if not rest.startswith("_"):
        return f"the version must be followed by '_' ({digits}_<title>.up.sql)"
    if re.search(r"\.(up|down)\.", base, re.IGNORECASE):
        return "the direction must be lower-case '.up' or '.down'"
    return "the name needs the direction before the extension: '.up.sql' (or '.down.sql' for its undo)"


def _suggest(base: str) -> str:
    stem = re.sub(r"\.sql$", "", base, flags=re.IGNORECASE)
    direction = DOWN if re.search(r"\.down(\.|$)", stem, re.IGNORECASE) else UP
    stem = re.sub(r"\.(up|down)(\..*)?$", "", stem, flags=re.IGNORECASE)
    m = re.match(r"^([0-9]*)[^A-Za-z0-9]*(.*)$", stem)
    digits, title = (m.group(1), m.group(2)) if m else ("", stem)
    title = re.sub(r"[^A-Za-z0-9.\-]+", "_", title).strip("_") or "describe_the_change"
    return f"{digits or FIRST_VERSION}_{title}.{direction}.sql"
