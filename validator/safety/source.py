"""SQL text -> the ParsedFile that ``validator.parse`` makes of a migration file on disk.

``check_sql`` (tests, docs examples) goes through the same parser as ``schemagate validate``, so a
rule sees the same statements, offsets and transactional flag in both.  The engine reads only
``rel``, ``text``, ``transactional`` and ``statements`` (``index``, ``text``, ``node``, ``start``,
``end``, ``line``, ``column``); node ``location`` values are character offsets into ``text``.
"""

from __future__ import annotations

from pathlib import Path

from executor.checksum import file_checksum
from executor.naming import parse_name
from validator.discovery import MigrationFile
from validator.parse import parse_file
from validator.parsed import ParsedFile


class SqlParseError(ValueError):
    """The SQL given to ``check_sql`` does not parse (the pipeline reports this as ``syntax``)."""


def source_file(sql: str, *, file: str = "V1__test.sql", transactional: bool | None = None) -> ParsedFile:
    data = sql.encode("utf-8")
    mf = MigrationFile(
        path=Path(file).resolve(),
        rel=file,
        # any name will do here (tests read PostgreSQL's own scripts); the rules never look at it
        name=parse_name(file).name,  # type: ignore[arg-type]
        data=data,
        checksum=file_checksum(data),
        text=sql,
    )
    parsed = parse_file(mf)
    syntax = [f for f in parsed.findings if f.rule in ("syntax-error",)]
    if syntax:
        raise SqlParseError(f"{file}:{syntax[0].line}:{syntax[0].column}: {syntax[0].message}")
    if transactional is not None:
        parsed.transactional = transactional
    return parsed
