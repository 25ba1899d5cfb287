"""Find and classify every file under the migrations directory (DESIGN.md "Migration files").

Each file is one of:

- a migration (``V<version>__<description>.sql``, ``R__...``, ``U<version>__...``): read once, its
  checksum computed, its text decoded (``None`` when it is not UTF-8);
- a near-miss (``v1__x.sql``, ``V1_x.sql``, ``V1__x.SQL``, ``V1__.sql``, ``V1.sql``): an error
  finding that shows a correctly formed name, never silently skipped;
- anything else (``README.md``, ``.gitkeep``, hidden files and directories): ignored.

A migration that is not valid UTF-8, or that holds no SQL at all (empty, white space or comments
only), is kept in the list (so order checks still see its version) and gets an error finding.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from executor.checksum import UTF8_BOM, decode_sql, file_checksum
from executor.errors import ConfigurationError
from executor.manifest import ManifestEntry
from executor.naming import MigrationName, parse_name
from executor.sqltext import REMEDY as CONTROL_REMEDY
from executor.sqltext import RULE as CONTROL_RULE
from executor.sqltext import find_control_character
from validator.findings import ERROR, Finding

FAMILY = "naming"
NAMING_DOCS = "https://github.com/schemagate/schemagate/blob/main/README.md#migration-files"
NAME_PATTERNS = "V<version>__<description>.sql, R__<description>.sql or U<version>__<description>.sql"


@dataclass
class MigrationFile:
    path: Path  # absolute path on disk
    rel: str  # posix path relative to the migrations directory
    name: MigrationName
    data: bytes  # the exact bytes on disk
    checksum: str  # executor.checksum.file_checksum(data)
    text: str | None  # decoded SQL (BOM removed, CRLF as LF); None when not valid UTF-8

    @property
    def kind(self) -> str:
        return self.name.kind

    def manifest_entry(
        self, *, transactional: bool = True, settings: dict[str, str] | None = None
    ) -> ManifestEntry:
        """This file's line in a bundle manifest (``transactional`` and ``settings`` come from parsing)."""
        return ManifestEntry(
            file=self.rel,
            kind=self.name.kind,
            version=self.name.version.text if self.name.version is not None else None,
            description=self.name.description,
            sha256=self.checksum,
            transactional=transactional,
            settings=dict(settings or {}),
        )


def discover(migrations_dir: Path) -> tuple[list[MigrationFile], list[Finding]]:
    """Classify every file under ``migrations_dir`` (recursively).

    Returns the well-named migration files in application order and the naming findings.
    Raises ConfigurationError when the directory does not exist, is not a directory, or holds
    nothing that looks like a migration.
    """
    root = Path(migrations_dir)
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

    files: list[MigrationFile] = []
    findings: list[Finding] = []
    migration_like = 0
    for path in _walk(root):
        rel = path.relative_to(root).as_posix()
        verdict = parse_name(rel)
        if not verdict.is_migration_like:
            continue
        migration_like += 1
        if verdict.name is None:
            findings.append(
                Finding(
                    rule="naming-malformed",
                    family=FAMILY,
                    severity=ERROR,
                    file=rel,
                    line=None,
                    column=None,
                    message=f"{path.name} is not a valid migration name: {verdict.problem}; "
                    "the file would not be applied",
                    help=f"rename it to {_beside(rel, verdict.example)} ({NAME_PATTERNS})",
                    docs=NAMING_DOCS,
                )
            )
            continue
        data = path.read_bytes()
        mf = MigrationFile(
            path=path, rel=rel, name=verdict.name, data=data, checksum=file_checksum(data), text=None
        )
        try:
            mf.text = decode_sql(data)
        except UnicodeDecodeError:
            findings.append(_not_utf8(mf))
        else:
            control = find_control_character(data)
            if control is not None:
                findings.append(
                    Finding(
                        rule=CONTROL_RULE,
                        family="syntax",
                        severity=ERROR,
                        file=rel,
                        line=control.line,
                        column=control.column,
                        message=control.message(path.name) + "; the executor refuses the file",
                        help=CONTROL_REMEDY,
                        docs=NAMING_DOCS,
                    )
                )
            if not has_sql(mf.text):
                findings.append(
                    Finding(
                        rule="naming-empty-file",
                        family=FAMILY,
                        severity=ERROR,
                        file=rel,
                        line=None,
                        column=None,
                        message=f"{path.name} holds no SQL (it is empty or only white space and comments); "
                        "an empty migration would be recorded as applied without changing anything",
                        help=f"write the change into it, or delete it; a migration is named like "
                        f"{verdict.name.file} and holds at least one SQL statement",
                        docs=NAMING_DOCS,
                    )
                )
        files.append(mf)

    if migration_like == 0:
        raise ConfigurationError(
            f"migrations directory {root} holds no migration files",
            remedy="add one with `schemagate new <description>` (it creates V001__<description>.sql), "
            "or point --migrations at the directory that holds the .sql files",
        )
    files.sort(key=lambda f: (f.name.sort_key, f.rel))
    return files, findings


def _walk(root: Path) -> list[Path]:
    """Regular files under root, sorted, skipping hidden files and directories."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        current = Path(dirpath)
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = current / name
            if path.is_file():
                found.append(path)
    return found


def _beside(rel: str, example: str | None) -> str:
    """The suggested name in the same sub-directory as ``rel``."""
    head, sep, _ = rel.rpartition("/")
    return f"{head}{sep}{example or 'V1__describe_the_change.sql'}"


def _not_utf8(mf: MigrationFile) -> Finding:
    data = mf.data
    skip = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    try:
        data[skip:].decode("utf-8")
        offset = 0  # pragma: no cover - only called for undecodable data
    except UnicodeDecodeError as exc:
        offset = exc.start + skip
    line = data.count(b"\n", 0, offset) + 1
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return Finding(
        rule="naming-not-utf8",
        family=FAMILY,
        severity=ERROR,
        file=mf.rel,
        line=line,
        column=column,
        message=f"{mf.name.file} is not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset} "
        f"(line {line}) cannot be decoded; PostgreSQL would read different characters than the author wrote",
        help="save the file as UTF-8 (for example `iconv -f latin1 -t utf-8 FILE > FILE.new`) "
        f"and keep the name {mf.name.file}",
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
