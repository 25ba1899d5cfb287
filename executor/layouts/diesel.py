"""Diesel's layout: one directory per migration, ``<version>_<name>/up.sql`` with ``down.sql`` and an
optional ``metadata.toml``.

What Diesel does, from its source (diesel-rs/diesel: ``diesel_migrations/src/file_based_migrations.rs``,
``diesel_migrations/migrations_internals/src/lib.rs``, ``diesel_cli/src/migrations/mod.rs``):

- every directory directly under the migrations directory (names starting with ``.`` excepted) is a
  migration, and must hold ``up.sql``: one that does not makes Diesel refuse the whole directory
  (``UnknownMigrationFormat``); files directly under the migrations directory, and any other file in a
  migration directory, are ignored;
- the version is the directory name up to the first ``_`` with every ``-`` removed
  (``version_from_string``): ``2024-05-01-120000_create_users`` -> ``20240501120000``, the string
  ``__diesel_schema_migrations.version`` holds.  ``diesel migration generate`` writes
  ``%Y-%m-%d-%H%M%S`` (Diesel before 1.0 wrote ``%Y%m%d%H%M%S``; long-lived histories have both);
  ``diesel setup`` adds ``00000000000000_diesel_initial_setup`` (the ``diesel_manage_updated_at`` and
  ``diesel_set_updated_at`` functions);
- migrations run in the order of their version strings, each in a transaction unless its
  ``metadata.toml`` says ``run_in_transaction = false``.  Diesel's quirk: the key defaults to *false*
  once the file parses (serde's default for a bool), while a file that does not parse is silently
  ignored (the migration runs in a transaction);
- ``down.sql`` runs on ``diesel migration revert``.

Here: ``up.sql`` is the versioned migration (version = Diesel's version string, history script = the
directory name, as ``diesel migration list`` shows it), ``down.sql`` its undo, ``metadata.toml`` a support
file whose ``run_in_transaction = false`` makes both run outside a transaction.  What Diesel would
refuse, or silently never run, is a naming finding.
"""

from __future__ import annotations

import re
import tomllib
from datetime import datetime

from executor.errors import ConfigurationError
from executor.layouts.base import (
    Layout,
    NameProblem,
    NewMigration,
    Resolution,
    SourceTree,
    describe,
    slug,
    undo_of,
)
from executor.layouts.migration_directories import is_sql, near_miss, split_tree, text_order_problems
from executor.layouts.numbering import next_timestamp
from executor.naming import VERSIONED, Version

UP_SQL = "up.sql"
DOWN_SQL = "down.sql"
METADATA = "metadata.toml"
INITIAL_SETUP = "00000000000000_diesel_initial_setup"
EXAMPLE_VERSION = "2024-05-01-120000"  # the shape `diesel migration generate` gives a directory
_DIESEL_NAMED = re.compile(r"^\d[\d-]*_")
_VERSION_ARGUMENT = re.compile(r"^\d[\d-]*$")
_HEX_SUBVERSION = re.compile(r"^(?P<stamp>\d{4}-\d{2}-\d{2}-\d{6})-(?P<sub>[0-9a-f]{4})$")
# what `diesel migration generate` writes into the two files
UP_TEMPLATE = "-- Your SQL goes here\n"
DOWN_TEMPLATE = "-- This file should undo anything in `up.sql`\n"


class Diesel(Layout):
    name = "diesel"
    title = "Diesel"
    docs = "docs/layouts/diesel.md"
    patterns = (
        "<version>_<name>/up.sql with down.sql and an optional metadata.toml, the version "
        "YYYY-MM-DD-HHMMSS or YYYYMMDDHHMMSS"
    )

    def score(self, tree: SourceTree) -> int:
        return sum(1 for m in self.resolve(tree).migrations if m.kind == VERSIONED)

    def resolve(self, tree: SourceTree) -> Resolution:
        out = Resolution(layout=self.name)
        parts = split_tree(tree)
        for dirname, files in sorted(parts.directories.items()):
            if not any(is_sql(n) or n == METADATA for n in files):
                continue  # a directory of notes or fixtures; Diesel would refuse it, but it runs nothing
            if _DIESEL_NAMED.match(dirname) or any(n in (UP_SQL, DOWN_SQL, METADATA) for n in files):
                out.migration_like += 1
            self._directory(tree, dirname, files, out)
        for rel in parts.top:
            if not is_sql(rel):
                continue
            if rel in (UP_SQL, DOWN_SQL):
                out.migration_like += 1
            stem = "describe_the_change" if rel in (UP_SQL, DOWN_SQL) else slug(rel.rsplit(".", 1)[0])
            out.problems.append(
                NameProblem(
                    rel=rel,
                    problem="a .sql file directly in the migrations directory is never run by Diesel: "
                    "each migration is a directory <version>_<name>/ that holds up.sql",
                    example=f"{EXAMPLE_VERSION}_{stem}/{DOWN_SQL if rel == DOWN_SQL else UP_SQL}",
                )
            )
        for rel in parts.nested:
            if is_sql(rel):
                out.problems.append(
                    NameProblem(
                        rel=rel,
                        problem="Diesel reads only the files directly inside a migration directory, "
                        "so this file is never run",
                        remedy="move its SQL into the up.sql of the migration it belongs to "
                        f"(<version>_<name>/{UP_SQL}), or delete it",
                    )
                )
        out.problems += text_order_problems(
            out.migrations,
            tool="Diesel",
            text_key=lambda m: m.version.text,  # type: ignore[union-attr]
            what="version",
        )
        return out

    def _directory(self, tree: SourceTree, dirname: str, files: dict[str, str], out: Resolution) -> None:
        raw, _, rest = dirname.partition("_")
        digits = raw.replace("-", "")
        anchor = files.get(UP_SQL) or next((files[n] for n in sorted(files) if is_sql(n)), files[min(files)])
        if not digits.isdigit():
            hex_subversion = _HEX_SUBVERSION.match(raw)
            why = (
                f"its sub-version {hex_subversion['sub']!r} is hexadecimal with letters (what `diesel "
                "migration generate` writes after ten migrations in one second), and schemagate needs "
                "digits"
                if hex_subversion
                else "schemagate needs digits (with '-' between them, as `diesel migration generate` "
                "writes them)"
            )
            out.problems.append(
                NameProblem(
                    rel=anchor,
                    problem=f"the directory name {dirname!r} does not start with a version: Diesel takes "
                    f"everything before the first '_' as the version ({raw!r} here), and {why}",
                    example=f"{hex_subversion['stamp']}-{int(hex_subversion['sub'], 16):04d}_{rest}/{UP_SQL}"
                    if hex_subversion
                    else f"{EXAMPLE_VERSION}_{slug(dirname)}/{UP_SQL}",
                )
            )
            return
        strays = [n for n in sorted(files) if is_sql(n) and n not in (UP_SQL, DOWN_SQL)]
        if UP_SQL not in files:
            guess = next((n for n in strays if near_miss(n, [UP_SQL])), None)
            if guess is not None:
                strays.remove(guess)
            out.problems.append(
                NameProblem(
                    rel=files[guess] if guess else anchor,
                    problem=(f"{guess} is not a file Diesel runs, and " if guess else "")
                    + f"the directory {dirname}/ has no up.sql: Diesel refuses to run any migration "
                    "while one directory lacks it",
                    example=f"{dirname}/{UP_SQL}",
                )
            )
        for name in strays:
            target = near_miss(name, [n for n in (UP_SQL, DOWN_SQL) if n not in files])
            out.problems.append(
                NameProblem(
                    rel=files[name],
                    problem=f"Diesel runs only up.sql and down.sql of a migration directory: {name} is "
                    "never run",
                    example=f"{dirname}/{target}" if target else None,
                    remedy=None
                    if target
                    else f"move its SQL into {dirname}/{UP_SQL} (or {DOWN_SQL}), or delete it",
                )
            )
        if UP_SQL not in files:
            return
        transactional = None
        if METADATA in files:
            out.support_files.append(files[METADATA])
            transactional = _run_in_transaction(tree, files[METADATA], out)
        up = self.versioned(
            files[UP_SQL], digits, describe(rest), script=dirname, transactional=transactional
        )
        out.migrations.append(up)
        if DOWN_SQL in files:
            out.migrations.append(undo_of(up, files[DOWN_SQL], transactional=transactional))

    def new_migration(
        self, tree: SourceTree, description: str, *, now: datetime, version: str | None = None
    ) -> NewMigration:
        """The directory ``diesel migration generate`` makes: ``up.sql`` and ``down.sql`` with Diesel's
        two comment lines, named in the style of the latest migration (``YYYY-MM-DD-HHMMSS``, Diesel's
        default, unless the history uses ``YYYYMMDDHHMMSS``)."""
        resolution = self.resolve(tree)
        versioned = [m for m in resolution.migrations if m.kind == VERSIONED and m.version is not None]
        existing = [m.version for m in versioned if m.version is not None]
        if version is None:
            digits = next_timestamp(existing, now=now)
            ours = [m for m in versioned if m.script != INITIAL_SETUP]
            latest = max(ours, key=lambda m: m.version) if ours else None  # type: ignore[arg-type, return-value]
            compact = latest is not None and "-" not in latest.history_script.partition("_")[0]
            directory_version = digits if compact else _dashed(digits)
        else:
            if not _VERSION_ARGUMENT.match(version):
                raise ConfigurationError(
                    f"--version {version!r} is not a Diesel version",
                    remedy="digits, optionally separated by '-' as Diesel writes them, for example "
                    f"--version {EXAMPLE_VERSION} or --version 20240501120000",
                )
            digits = version.replace("-", "")
            if Version.parse(digits) in existing:
                raise ConfigurationError(
                    f"version {digits} is already used", remedy="leave out --version to get the next free one"
                )
            directory_version = version
        directory = f"{directory_version}_{description}"
        return NewMigration(
            files={f"{directory}/{UP_SQL}": UP_TEMPLATE, f"{directory}/{DOWN_SQL}": DOWN_TEMPLATE},
            edit_first=f"{directory}/{UP_SQL}",
            version=digits,
        )


def _run_in_transaction(tree: SourceTree, rel: str, out: Resolution) -> bool | None:
    """False when ``metadata.toml`` makes Diesel run the migration outside a transaction, None when
    it runs in one (problems for what Diesel would read differently than its author meant)."""
    try:
        table = tomllib.loads(tree.read(rel).decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        out.problems.append(
            NameProblem(
                rel=rel,
                problem=f"it is not valid TOML ({exc}): Diesel ignores such a file without a word and "
                "runs the migration in a transaction, whatever the file meant to say",
                remedy="write `run_in_transaction = false` on a line of its own (or delete the file to "
                "run the migration in a transaction)",
            )
        )
        return None
    if "run_in_transaction" not in table:
        out.problems.append(
            NameProblem(
                rel=rel,
                problem="it has no run_in_transaction key, and Diesel then runs up.sql and down.sql "
                "outside a transaction (the key defaults to false once metadata.toml exists); "
                "schemagate does the same",
                severity="warning",
                remedy="say it: `run_in_transaction = false`, or `run_in_transaction = true` (or delete "
                "the file) to run the migration in a transaction",
            )
        )
        return False
    value = table["run_in_transaction"]
    if not isinstance(value, bool):
        out.problems.append(
            NameProblem(
                rel=rel,
                problem=f"run_in_transaction is {value!r}, not true or false: Diesel cannot read the file, "
                "ignores it and runs the migration in a transaction",
                remedy="write `run_in_transaction = false` (a TOML boolean, without quotes)",
            )
        )
        return None
    return None if value else False


def _dashed(digits: str) -> str:
    """``20240501120000`` as ``diesel migration generate`` writes it: ``2024-05-01-120000``."""
    if len(digits) != 14:
        return digits
    return f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}-{digits[8:]}"
