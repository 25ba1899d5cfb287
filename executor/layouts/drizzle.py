"""Drizzle's layout: the ``out`` folder of drizzle-kit (``drizzle/`` by default).

What drizzle-orm's migrator reads (drizzle-orm ``src/migrator.ts``, ``readMigrationFiles``) is what
this layout reads:

- ``meta/_journal.json`` gives the order and the names: its ``entries`` (``idx``, ``version``,
  ``when``, ``tag``, ``breakpoints``) are the migrations, in the order they are listed;
- each entry's migration is ``<tag>.sql`` next to ``meta/``; a journal entry whose file is missing
  is an error (drizzle-orm stops with "No file ... found");
- a ``.sql`` file that the journal does not list is never run by drizzle-orm: a warning, not a
  migration;
- ``meta/<prefix>_snapshot.json`` are drizzle-kit's schema snapshots: support files.

Versions are the journal's ``idx`` written with four digits, as drizzle-kit writes its default
``index`` prefix (``0007`` for ``0007_brave_wolverine.sql``).  The idx is the one identifier every
prefix mode has: with ``prefix: "timestamp"`` (``20240311093000_add_x``), ``"unix"``
(``1710149400_add_x``) or ``"none"`` (``_add_x``) the tag's own prefix is a timestamp or nothing, and
only the journal's order says which migration comes first.  A journal whose ``idx`` does not increase
is an error; a ``when`` that does not increase is a warning (drizzle-orm runs only the entries whose
``when`` is later than the last one it recorded, so it would skip that entry on a database that
already applied the one before).

Statements: drizzle-orm splits a file at ``--> statement-breakpoint`` and sends each piece as it is.
The marker is an SQL comment, so PostgreSQL, psql and schemagate see the same statements as long as
each piece ends with ``;`` (drizzle-kit always writes one).  Where a hand-written piece does not,
``section_text`` turns the marker's ``-->`` into ``;--`` (same length, same line), so schemagate runs
the statements drizzle-orm would run instead of joining two of them.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from executor.errors import ConfigurationError
from executor.headers import split_statements
from executor.layouts.base import Layout, NameProblem, NewMigration, Resolution, SourceTree, describe
from executor.layouts.base import ResolvedMigration as Resolved

JOURNAL = "meta/_journal.json"
META = "meta/"
BREAKPOINT = "--> statement-breakpoint"
DIALECTS = ("postgresql", "pg")  # drizzle-kit 0.21+ writes "postgresql"; older journals "pg"
SNAPSHOT_VERSION = "7"  # drizzle-kit 0.31's PostgreSQL snapshot version (a new journal's "version")
IDX_WIDTH = 4  # drizzle-kit's index prefix: idx.toFixed(0).padStart(4, "0")
_TAG_PREFIX = re.compile(r"^(?P<prefix>\d*)_(?P<name>.+)$")
_EXAMPLE_ENTRY = '{"idx": 0, "version": "7", "when": 1710149400123, "tag": "0000_init", "breakpoints": true}'


@dataclass(frozen=True)
class JournalEntry:
    idx: int
    when: int
    tag: str
    version: str
    breakpoints: bool

    @property
    def rel(self) -> str:
        return f"{self.tag}.sql"

    @property
    def version_text(self) -> str:
        return str(self.idx).zfill(IDX_WIDTH)


@dataclass
class Journal:
    data: dict[str, Any]
    entries: list[JournalEntry]
    text: str  # as read, to keep its formatting when `schemagate new` rewrites it


class JournalError(ValueError):
    """meta/_journal.json cannot be read as drizzle-kit writes it; the message says why."""


def drizzle_hash(data: bytes) -> str:
    """The ``hash`` drizzle-orm records for a migration: SHA-256 of the file's content as Node reads
    it (``fs.readFileSync(...).toString()``, UTF-8 with invalid bytes replaced, a BOM kept)."""
    import hashlib

    return hashlib.sha256(data.decode("utf-8", errors="replace").encode("utf-8")).hexdigest()


def read_journal(raw: bytes) -> Journal:
    """Parse and check ``meta/_journal.json``; JournalError names what is wrong."""
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except UnicodeDecodeError as exc:
        raise JournalError(f"it is not UTF-8 (byte offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise JournalError(
            f"it is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise JournalError('it is not a drizzle-kit journal (a JSON object with an "entries" list)')
    dialect = data.get("dialect")
    if dialect is not None and dialect not in DIALECTS:
        raise JournalError(
            f"its dialect is {dialect!r}: these are drizzle-kit migrations for another database "
            '(schemagate migrates PostgreSQL, dialect "postgresql")'
        )
    entries: list[JournalEntry] = []
    tags: set[str] = set()
    for position, raw_entry in enumerate(data["entries"]):
        entry = _entry(position, raw_entry)
        if entries and entry.idx <= entries[-1].idx:
            raise JournalError(
                f"entry {position} ({entry.tag}) has idx {entry.idx}, not greater than the idx "
                f"{entries[-1].idx} of the entry before it ({entries[-1].tag}); drizzle-kit numbers "
                "entries 0, 1, 2, ... in the order it writes them"
            )
        if entry.tag in tags:
            raise JournalError(f"the tag {entry.tag!r} is listed twice")
        tags.add(entry.tag)
        entries.append(entry)
    return Journal(data=data, entries=entries, text=text)


def _whole_number(where: str, raw: dict[str, object], key: str) -> int:
    value = raw.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise JournalError(f"{where} has {key} {value!r}; it must be a whole number ({_EXAMPLE_ENTRY})")
    return value


def _entry(position: int, raw: object) -> JournalEntry:
    where = f"entry {position}"
    if not isinstance(raw, dict):
        raise JournalError(f"{where} is not an object like {_EXAMPLE_ENTRY}")
    idx, when = _whole_number(where, raw, "idx"), _whole_number(where, raw, "when")
    tag = raw.get("tag")
    if not isinstance(tag, str) or not tag.strip():
        raise JournalError(f"{where} (idx {idx}) has no tag ({_EXAMPLE_ENTRY})")
    if tag.startswith("/") or "\\" in tag or ".." in tag.split("/"):
        raise JournalError(f"{where} has the tag {tag!r}, which leads out of the migrations directory")
    version = raw.get("version", "")
    breakpoints = raw.get("breakpoints", True)
    return JournalEntry(
        idx=idx,
        when=when,
        tag=tag,
        version=str(version),
        breakpoints=bool(breakpoints),
    )


def tag_description(tag: str) -> str:
    """``0007_brave_wolverine`` -> ``brave wolverine`` (any numeric prefix, or none: ``_add_x``)."""
    m = _TAG_PREFIX.match(tag)
    return describe(m.group("name")) if m else describe(tag)


def journal_problem(problem: str, *, severity: str = "error", rule: str = "drizzle-journal") -> NameProblem:
    return NameProblem(
        rel=JOURNAL,
        problem=problem,
        rule=rule,
        severity=severity,
        message=f"{JOURNAL}: {problem}",
        remedy=(
            "drizzle-kit writes the journal: restore it from version control, or fix it so that every "
            f"entry reads like {_EXAMPLE_ENTRY} with idx increasing by one"
            if severity == "error"
            else "give the entry a `when` later than the entry before it (drizzle-kit writes the time "
            "of `generate` in milliseconds), or move the entry to its place in time"
        ),
    )


class Drizzle(Layout):
    name = "drizzle"
    title = "Drizzle"
    docs = "docs/layouts/drizzle.md"
    patterns = "<tag>.sql, listed with its tag in meta/_journal.json (drizzle-kit generate writes both)"

    def score(self, tree: SourceTree) -> int:
        return len(self.resolve(tree).migrations)

    def resolve(self, tree: SourceTree) -> Resolution:
        out = Resolution(layout=self.name)
        paths = tree.paths()
        sql_files = [p for p in paths if p.lower().endswith(".sql") and not p.startswith(META)]
        snapshots = [p for p in paths if p.startswith(META) and p.endswith("_snapshot.json")]
        out.support_files = [p for p in paths if p.startswith(META)]
        if JOURNAL not in paths:
            if snapshots:
                # drizzle-kit's snapshots without its journal: a Drizzle folder that lost the journal
                out.migration_like = len(sql_files) + 1
                out.problems.append(
                    journal_problem(
                        f"the journal is missing, but meta/ holds drizzle-kit snapshots "
                        f"({snapshots[-1]}): drizzle-orm takes the order and names of the migrations "
                        "from the journal and refuses to run without it"
                    )
                )
            else:
                out.migration_like = len(sql_files)
                out.evidence = 0  # .sql files without journal or snapshots: nothing says Drizzle
            return out
        out.migration_like = len(sql_files) + 1
        try:
            journal = read_journal(tree.read(JOURNAL))
        except JournalError as exc:
            out.problems.append(journal_problem(str(exc)))
            return out
        listed: set[str] = set()
        previous: JournalEntry | None = None
        for entry in journal.entries:
            listed.add(entry.rel)
            if previous is not None and entry.when <= previous.when:
                out.problems.append(
                    journal_problem(
                        f"entry idx {entry.idx} ({entry.tag}) has when {entry.when}, not later than "
                        f"{previous.when} of idx {previous.idx} ({previous.tag}): drizzle-orm's migrator "
                        "only runs entries whose `when` is later than the last one it recorded, so it "
                        f"would skip {entry.tag} on every database that already applied {previous.tag} "
                        "(schemagate applies them in the journal's order)",
                        severity="warning",
                        rule="drizzle-journal-when",
                    )
                )
            previous = entry
            if entry.rel not in paths:
                out.problems.append(
                    NameProblem(
                        rel=entry.rel,
                        problem="",
                        rule="drizzle-missing-file",
                        message=f"{JOURNAL} lists {entry.tag} (idx {entry.idx}), but {entry.rel} does "
                        "not exist: drizzle-orm's migrator stops at it, and schemagate cannot apply it",
                        remedy=f"restore {entry.rel} from version control; if the migration was abandoned, "
                        "remove it with `drizzle-kit drop` (it removes the file and its journal entry)",
                    )
                )
                continue
            out.migrations.append(
                Resolved(
                    rel=entry.rel,
                    name=self.versioned(entry.rel, entry.version_text, tag_description(entry.tag)).name,
                )
            )
        for rel in sql_files:
            if rel not in listed:
                out.problems.append(
                    NameProblem(
                        rel=rel,
                        problem="",
                        rule="drizzle-not-in-journal",
                        severity="warning",
                        message=f"{rel} is not listed in {JOURNAL}: drizzle-orm's migrator never runs it, "
                        "and schemagate does not apply it either",
                        remedy="if it is meant to run, create the migration with `drizzle-kit generate "
                        "--custom` (or `schemagate new`) and move the SQL into that file; otherwise "
                        "delete it or keep it outside the migrations directory",
                    )
                )
        return out

    def section_text(self, text: str, section: str | None) -> str:
        """The statements drizzle-orm runs, as PostgreSQL reads them (see the module doc): a
        ``--> statement-breakpoint`` after a piece that does not end with ``;`` ends its statement."""
        if BREAKPOINT not in text:
            return text
        out: list[str] = []
        start = 0
        while True:
            at = text.find(BREAKPOINT, start)
            if at < 0:
                out.append(text[start:])
                return "".join(out)
            piece = text[start:at]
            out.append(piece)
            statements = split_statements(piece)
            unterminated = bool(statements) and not statements[-1].text.rstrip().endswith(";")
            line_end = text.find("\n", at)
            rest = text[at + len(BREAKPOINT) : line_end if line_end >= 0 else len(text)]
            if rest.strip():
                # drizzle-orm runs what follows the marker on its line; PostgreSQL would read a comment
                out.append((";" if unterminated else " ") + " " * (len(BREAKPOINT) - 1))
            elif unterminated:
                out.append(";--" + BREAKPOINT[3:])
            else:
                out.append(BREAKPOINT)
            start = at + len(BREAKPOINT)

    def new_migration(
        self, tree: SourceTree, description: str, *, now: datetime, version: str | None = None
    ) -> NewMigration:
        """The next ``<prefix>_<description>.sql``, its journal entry and a copy of the latest snapshot,
        as ``drizzle-kit generate --custom --name <description>`` writes them."""
        paths = tree.paths()
        if JOURNAL in paths:
            try:
                journal = read_journal(tree.read(JOURNAL))
            except JournalError as exc:
                raise ConfigurationError(
                    f"{JOURNAL} cannot take a new entry: {exc}",
                    remedy="fix the journal first (`schemagate validate` shows the problem), then run "
                    "`schemagate new` again",
                ) from None
        else:
            initial = {"version": SNAPSHOT_VERSION, "dialect": "postgresql", "entries": []}
            journal = Journal(data=initial, entries=[], text=json.dumps(initial))
        last = journal.entries[-1] if journal.entries else None
        idx = 0 if last is None else last.idx + 1
        if version is not None:
            if not version.isdigit() or (last is not None and int(version) <= last.idx):
                raise ConfigurationError(
                    f"--version {version!r} cannot be the idx of the next Drizzle migration",
                    remedy=f"leave out --version (the next idx is {idx}), or give a whole number above "
                    f"{last.idx if last else -1}",
                )
            idx = int(version)
        prefix = _prefix_like(last.tag if last else None, idx, now)
        tag = f"{prefix}_{description}"
        rel = f"{tag}.sql"
        if rel in paths:
            raise ConfigurationError(f"{rel} already exists", remedy="pick another description")
        when = int(now.timestamp() * 1000)
        if last is not None and when <= last.when:
            when = last.when + 1
        entry = {
            "idx": idx,
            "version": last.version
            if last is not None and last.version
            else str(journal.data.get("version") or SNAPSHOT_VERSION),
            "when": when,
            "tag": tag,
            "breakpoints": last.breakpoints if last is not None else True,
        }
        data = dict(journal.data)
        data["entries"] = [*journal.data["entries"], entry]
        files = {rel: _header(tag, description, now)}
        snapshot = _custom_snapshot(tree, paths, prefix)
        if snapshot is not None:
            files[snapshot[0]] = snapshot[1]
        return NewMigration(
            files=files,
            edit_first=rel,
            version=str(idx).zfill(IDX_WIDTH),
            updates={JOURNAL: _dump_like(journal.text, data)},
        )


def _prefix_like(last_tag: str | None, idx: int, now: datetime) -> str:
    """The prefix drizzle-kit's ``prefix`` mode would give the next tag, read from the last tag."""
    m = _TAG_PREFIX.match(last_tag or "")
    digits = m.group("prefix") if m else "0000"
    if m and digits == "":
        return ""  # prefix: "none"
    if len(digits) == 14:  # prefix: "timestamp" (or "supabase"): UTC YYYYMMDDHHMMSS
        return now.strftime("%Y%m%d%H%M%S")
    if len(digits) == 10:  # prefix: "unix": seconds
        return str(int(now.timestamp()))
    return str(idx).zfill(IDX_WIDTH)  # prefix: "index" (the default)


def _dump_like(original: str, data: dict[str, Any]) -> str:
    """``data`` as JSON formatted like ``original``: drizzle-kit writes ``JSON.stringify(journal, null, 2)``
    (two spaces, no newline at the end); a journal a formatter re-indented with tabs stays so."""
    indent: str | int = "\t" if re.search(r"^\t", original, re.MULTILINE) else 2
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    return text + "\n" if original.endswith("\n") else text


def _custom_snapshot(tree: SourceTree, paths: list[str], prefix: str) -> tuple[str, str] | None:
    """What ``drizzle-kit generate --custom`` writes next to the journal: the latest snapshot with a
    new ``id`` and ``prevId`` pointing at it, so the next ``drizzle-kit generate`` diffs against the
    same schema.  None when there is no snapshot to copy, or with ``prefix: "none"`` (the file would
    be ``meta/_snapshot.json``, which drizzle-kit itself ignores)."""
    names = sorted(p[len(META) :] for p in paths if p.startswith(META) and "/" not in p[len(META) :])
    snapshots = [n for n in names if n.endswith(".json") and not n.startswith("_")]
    if not snapshots or not prefix:
        return None
    try:
        latest = json.loads(tree.read(META + snapshots[-1]))
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(latest, dict):
        return None
    rest = {k: v for k, v in latest.items() if k not in ("id", "prevId")}
    copy = {"id": str(uuid.uuid4()), "prevId": latest.get("id"), **rest}
    copy["_meta"] = {"columns": {}, "schemas": {}, "tables": {}}
    return f"{META}{prefix}_snapshot.json", json.dumps(copy, indent=2, ensure_ascii=False)


def _header(tag: str, description: str, now: datetime) -> str:
    return (
        f"-- {tag}: {description.replace('_', ' ')}\n"
        f"-- Created by `schemagate new` on {now.strftime('%Y-%m-%d %H:%M')} UTC, with its entry in "
        f"{JOURNAL}\n"
        "-- (as `drizzle-kit generate --custom` would). The file runs in one transaction; put\n"
        "-- drizzle-kit's statement breakpoint line between statements, as in the other files.\n"
        "\n"
    )
