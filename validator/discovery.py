"""Find and classify every file under the migrations directory.

The directory's layout (Flyway, Diesel, Prisma, Drizzle, golang-migrate, dbmate: ``executor.layouts``)
is detected from what it holds, or given (``--layout``, ``[tool.schemagate] layout``).  The layout says
which files are migrations and what their versions, kinds and sections are; this module reads them:

- a migration: read once, its checksum computed, its text decoded (``None`` when it is not UTF-8);
- a near-miss of the layout (``v1__x.sql``, ``V1_x.sql``, a Diesel directory without ``up.sql``...): an
  error finding that shows a correctly formed name, never silently skipped;
- a symbolic link that leads out of the migrations directory: an error finding (its target is not
  read, bundled or applied);
- a migration larger than the size limit: an error finding (it is not read);
- anything else (``README.md``, ``.gitkeep``, hidden files and directories): ignored.

A migration that is not valid UTF-8, or that holds no SQL at all (empty, white space or comments
only), is kept in the list (so order checks still see its version) and gets an error finding.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from executor import layouts
from executor.checksum import UTF8_BOM, decode_sql, file_checksum
from executor.errors import ConfigurationError
from executor.layouts.base import Resolution, ResolvedMigration
from executor.manifest import UP, ManifestEntry
from executor.naming import MigrationName
from executor.sqltext import REMEDY as CONTROL_REMEDY
from executor.sqltext import RULE as CONTROL_RULE
from executor.sqltext import byte_line_and_column, find_control_character
from validator.findings import ERROR, Finding

FAMILY = "naming"
NAMING_DOCS = "https://github.com/schemagate/schemagate/blob/main/README.md#migration-files"
NAME_PATTERNS = "V<version>__<description>.sql, R__<description>.sql or U<version>__<description>.sql"
DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024  # a migration over 16 MiB is a data dump, not a schema change


@dataclass
class MigrationFile:
    path: Path  # absolute path on disk
    rel: str  # posix path relative to the migrations directory
    name: MigrationName
    data: bytes  # the exact bytes on disk (of the whole file, for a section)
    checksum: str  # executor.checksum.file_checksum(data)
    text: str | None  # decoded SQL (BOM removed, CRLF as LF); None when not valid UTF-8
    section: str | None = None  # "up" / "down" when the file holds both (dbmate)
    layout_transactional: bool | None = None  # False: the layout says it runs outside a transaction
    script_name: str | None = None  # the history's name for it, when not ``rel``

    @property
    def kind(self) -> str:
        return self.name.kind

    @property
    def key(self) -> str:
        """Unique among the discovered files: ``rel``, or ``rel#down`` for a down section."""
        return self.rel if self.section in (None, UP) else f"{self.rel}#{self.section}"

    def manifest_entry(
        self,
        *,
        transactional: bool = True,
        settings: dict[str, str] | None = None,
        checked: bool = True,
        own_transactions: bool = False,
    ) -> ManifestEntry:
        """This file's line in a bundle manifest (``transactional``, ``settings`` and
        ``own_transactions`` come from parsing; ``checked=False``: not parsed, see
        ``ManifestEntry.checked``)."""
        return ManifestEntry(
            file=self.rel,
            kind=self.name.kind,
            version=self.name.version.text if self.name.version is not None else None,
            description=self.name.description,
            sha256=self.checksum,
            transactional=transactional and self.layout_transactional is not False,
            settings=dict(settings or {}),
            section=self.section,
            script_name=self.script_name,
            checked=checked,
            own_transactions=own_transactions,
        )


@dataclass
class Discovered:
    """What ``discover`` found; unpacks as ``files, findings``."""

    files: list[MigrationFile]
    findings: list[Finding]
    layout: str = layouts.DEFAULT_LAYOUT
    support_files: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator:
        return iter((self.files, self.findings))


class DirectoryTree:
    """The migrations directory as a ``SourceTree``: regular, non-hidden files, each read once.

    Symbolic links whose target lies outside the directory and files over the size limit are kept
    out of ``paths()`` and reported by ``refused`` instead."""

    def __init__(self, root: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        self.root = root
        self.max_file_bytes = max_file_bytes
        self._paths: list[str] = []
        self._full: dict[str, str] = {}
        self._data: dict[str, bytes] = {}
        self.refused: list[Finding] = []
        self._walk(os.fspath(root), "", root.resolve())
        self._paths.sort()

    def _walk(self, directory: str, prefix: str, resolved_root: Path) -> None:
        """One directory (as ``os.walk`` top-down would: its linked directories and files first,
        then its subdirectories in name order), through ``os.scandir`` so each file costs one
        ``stat``."""
        try:
            with os.scandir(directory) as it:
                entries = sorted((e for e in it if not e.name.startswith(".")), key=lambda e: e.name)
        except OSError:
            return  # as os.walk: a directory that cannot be listed holds nothing
        subdirs: list[os.DirEntry[str]] = []
        files: list[os.DirEntry[str]] = []
        for entry in entries:
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            (subdirs if is_dir else files).append(entry)
        for d in subdirs:  # os.walk does not descend into linked directories: say so if outside
            if d.is_symlink():
                linked = Path(d.path)
                if not linked.resolve().is_relative_to(resolved_root):
                    self.refused.append(_outside_link(prefix + d.name, os.readlink(linked), linked.resolve()))
        for f in files:
            self._add(f, prefix + f.name, resolved_root)
        for d in subdirs:
            if not d.is_symlink():
                self._walk(d.path, f"{prefix}{d.name}/", resolved_root)

    def _add(self, entry: os.DirEntry[str], rel: str, resolved_root: Path) -> None:
        if entry.is_symlink():
            target = Path(entry.path).resolve()
            if not target.is_relative_to(resolved_root):
                self.refused.append(_outside_link(rel, os.readlink(entry.path), target))
                return
        try:
            st = entry.stat()
        except OSError:
            return  # a dangling link
        if not stat.S_ISREG(st.st_mode):
            return
        if st.st_size > self.max_file_bytes:
            self.refused.append(_too_large(rel, st.st_size, self.max_file_bytes))
            return
        self._paths.append(rel)
        self._full[rel] = entry.path

    def paths(self) -> list[str]:
        return self._paths

    def read(self, rel: str) -> bytes:
        data = self._data.get(rel)
        if data is None:
            with open(self._full[rel], "rb") as f:
                data = f.read()
            self._data[rel] = data
        return data

    def full_path(self, rel: str) -> Path:
        return Path(self._full[rel])


def _require_directory(root: Path) -> None:
    if not root.exists():
        raise ConfigurationError(
            f"migrations directory {root} does not exist",
            remedy='pass --migrations DIR, set `migrations = "..."` under [tool.schemagate] in '
            "pyproject.toml, or create the first migration with `schemagate new <description>`",
        )
    if not root.is_dir():
        raise ConfigurationError(
            f"migrations directory {root} is not a directory",
            remedy="point --migrations (or [tool.schemagate] migrations) at the directory that holds "
            "the .sql files",
        )


_HandoverKey = tuple[str, "str | None", int]
_handover: list[tuple[_HandoverKey, Discovered]] = []  # at most one: see hand_over


def _handover_key(root: Path, layout: str | None, max_file_bytes: int) -> _HandoverKey:
    return (str(root.resolve()), layout, max_file_bytes)


def hand_over(migrations_dir: Path, found: Discovered, *, layout: str | None, max_file_bytes: int) -> None:
    """Keep ``found`` for the next ``discover`` call with the same arguments, once.

    ``schemagate.quick_apply`` discovers the files to see whether a plain ``apply`` is a no-op; when
    it is not, the full CLI runs in the same process a few milliseconds later and would read and
    hash every file again.  The next call takes this result instead (and the bytes it checks are the
    bytes the quick path saw); any other call, or a second one, discovers afresh."""
    _handover[:] = [(_handover_key(Path(migrations_dir), layout, max_file_bytes), found)]


def discover(
    migrations_dir: Path,
    *,
    layout: str | None = None,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
    memo: Path | None = None,
) -> Discovered:
    """Classify every file under ``migrations_dir`` (recursively) with its layout.

    ``memo``: a file (``validator.layout_memo``) that remembers which layout detection chose for
    these exact contents, so a repeated run resolves the tree with that layout alone.

    Returns the migrations in application order and the naming findings (unpacks as ``files,
    findings``). Raises ConfigurationError when the directory does not exist, is not a directory, or
    holds nothing that looks like a migration.
    """
    root = Path(migrations_dir)
    if _handover:
        ((key, found),) = _handover
        _handover.clear()
        if key == _handover_key(root, layout, max_file_bytes):
            return found
    _require_directory(root)
    tree = DirectoryTree(root, max_file_bytes=max_file_bytes)
    resolution = _resolve(tree, layout, memo)
    findings: list[Finding] = list(tree.refused)
    findings += [_problem_finding(resolution, p) for p in resolution.problems]
    files: list[MigrationFile] = []
    for m in resolution.migrations:
        mf, problem = _read(tree, resolution, m)
        files.append(mf)
        if problem is not None:
            findings.append(problem)
    if resolution.migration_like == 0 and not tree.refused:
        raise ConfigurationError(
            f"migrations directory {root} holds no migration files",
            remedy="add one with `schemagate new <description>` (it creates V001__<description>.sql), "
            "or point --migrations at the directory that holds the .sql files "
            f"(recognised layouts: {', '.join(layouts.LAYOUTS)})",
        )
    files.sort(key=lambda f: (f.name.sort_key, f.rel, f.section or ""))
    return Discovered(
        files=files,
        findings=findings,
        layout=resolution.layout,
        support_files=list(resolution.support_files),
    )


def _resolve(tree: DirectoryTree, layout: str | None, memo: Path | None) -> Resolution:
    if layout is not None or memo is None:
        return layouts.resolve(tree, layout)
    from validator import layout_memo

    key = layout_memo.tree_key(tree)
    known = layout_memo.recall(memo, key)
    if known in layouts.LAYOUTS:
        return layouts.get(known).resolve(tree)
    resolution = layouts.detect(tree)
    layout_memo.remember(memo, key, resolution.layout)
    return resolution


def _read(
    tree: DirectoryTree, resolution: Resolution, m: ResolvedMigration
) -> tuple[MigrationFile, Finding | None]:
    data = tree.read(m.rel)
    mf = MigrationFile(
        path=tree.full_path(m.rel),
        rel=m.rel,
        name=m.name,
        data=data,
        checksum=file_checksum(data),
        text=None,
        section=m.section,
        layout_transactional=m.transactional,
        script_name=m.script,
    )
    try:
        text = decode_sql(data)
    except UnicodeDecodeError:
        return mf, _not_utf8(mf)
    mf.text = layouts.get(resolution.layout).section_text(text, m.section)
    control = find_control_character(data) if m.section in (None, UP) else None  # once per file
    if control is not None:
        return mf, Finding(
            rule=CONTROL_RULE,
            family="syntax",
            severity=ERROR,
            file=m.rel,
            line=control.line,
            column=control.column,
            message=control.message(m.rel) + "; the executor refuses the file",
            help=CONTROL_REMEDY,
            docs=NAMING_DOCS,
        )
    if has_sql(mf.text):
        return mf, None
    what = f"the {m.section} section of {m.rel}" if m.section else m.rel
    return mf, Finding(
        rule="naming-empty-file",
        family=FAMILY,
        severity=ERROR,
        file=m.rel,
        line=None,
        column=None,
        message=f"{what} holds no SQL (it is empty or only white space and comments); "
        "an empty migration would be recorded as applied without changing anything",
        help=f"write the change into it, or delete it; a migration is named like {m.name.file} and "
        "holds at least one SQL statement",
        docs=NAMING_DOCS,
    )


def _problem_finding(resolution: Resolution, problem: layouts.NameProblem) -> Finding:
    layout = layouts.get(resolution.layout)
    help_ = problem.remedy or (
        f"rename it to {problem.example} ({layout.patterns})"
        if problem.example
        else f"{layout.title} migrations are named {layout.patterns}"
    )
    return Finding(
        rule=problem.rule,
        family=FAMILY,
        severity=problem.severity,
        file=problem.rel,
        line=None,
        column=None,
        message=problem.message
        or f"{problem.rel} is not a valid {layout.title} migration: {problem.problem}"
        + ("; the file would not be applied" if problem.severity == ERROR else ""),
        help=help_,
        docs=_docs_of(layout),
    )


def _docs_of(layout: layouts.Layout) -> str:
    if layout.docs:
        return f"https://github.com/schemagate/schemagate/blob/main/{layout.docs}"
    return NAMING_DOCS


def _outside_link(rel: str, raw_target: str, target: Path) -> Finding:
    return Finding(
        rule="symlink-outside",
        family=FAMILY,
        severity=ERROR,
        file=rel,
        line=None,
        column=None,
        message=f"{rel} is a symbolic link to {raw_target} ({target}), outside the migrations directory: "
        "what it points at is not reviewed with the migrations and could change without a pull request",
        help="copy the file into the migrations directory (and delete the link), or point --migrations "
        "at the directory that really holds it",
        docs=NAMING_DOCS,
    )


def _too_large(rel: str, size: int, limit: int) -> Finding:
    return Finding(
        rule="file-too-large",
        family=FAMILY,
        severity=ERROR,
        file=rel,
        line=None,
        column=None,
        message=f"{rel} is {size / 1048576:.1f} MiB, over the limit of {limit / 1048576:.1f} MiB for one "
        "migration: it was not read (a file this large is a data load, and validating it would take "
        "minutes and gigabytes)",
        help="load bulk data with COPY from a file outside the migrations, or split the migration; raise "
        "the limit with max_file_mb under [tool.schemagate] if the file really must be one migration",
        docs=NAMING_DOCS,
    )


def _not_utf8(mf: MigrationFile) -> Finding:
    data = mf.data
    skip = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    try:
        data[skip:].decode("utf-8")
        offset = 0  # pragma: no cover - only called for undecodable data
    except UnicodeDecodeError as exc:
        offset = exc.start + skip
    line, column = byte_line_and_column(data, offset)
    return Finding(
        rule="naming-not-utf8",
        family=FAMILY,
        severity=ERROR,
        file=mf.rel,
        line=line,
        column=column,
        message=f"{mf.rel} is not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset} "
        f"(line {line}) cannot be decoded; PostgreSQL would read different characters than the author wrote",
        help="save the file as UTF-8 (for example `iconv -f latin1 -t utf-8 FILE > FILE.new`) "
        f"and keep the name {mf.rel}",
        docs=NAMING_DOCS,
    )


def skip_sql_trivia(text: str, pos: int = 0) -> int:
    """The offset of the first character at or after ``pos`` that is not white space or a comment
    (``-- ...`` to end of line, ``/* ... */`` nested as PostgreSQL nests them)."""
    n = len(text)
    while pos < n:
        ch = text[pos]
        if ch.isspace():
            pos += 1
        elif text.startswith("--", pos):
            end = text.find("\n", pos)
            pos = n if end < 0 else end + 1
        elif text.startswith("/*", pos):
            depth, pos = 1, pos + 2
            while pos < n and depth:
                if text.startswith("/*", pos):
                    depth, pos = depth + 1, pos + 2
                elif text.startswith("*/", pos):
                    depth, pos = depth - 1, pos + 2
                else:
                    pos += 1
        else:
            break
    return pos


def has_sql(text: str) -> bool:
    """True when the text holds something besides white space, comments and semicolons."""
    pos = skip_sql_trivia(text)
    while pos < len(text) and text[pos] == ";":
        pos = skip_sql_trivia(text, pos + 1)
    return pos < len(text)
