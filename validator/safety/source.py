"""Turning SQL text into the ParsedFile shape the engine reads (for ``check_sql``, examples, tests).

The pipeline hands ``check_safety`` the files ``validator.parse`` parsed; this module is the
small stand-in used when there is only a string.  The engine reads these attributes only:
``rel``, ``text``, ``transactional``, ``statements`` (``index``, ``text``, ``node``, ``start``,
``end``, ``line``, ``column``); node ``location`` values are character offsets into ``text``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pglast import ast, parse_sql
from pglast.enums import ObjectType, ReindexObjectType


@dataclass
class SourceStatement:
    index: int
    text: str
    node: Any
    start: int
    end: int
    line: int
    column: int


@dataclass
class SourceFile:
    rel: str
    text: str
    transactional: bool
    statements: list[SourceStatement] = field(default_factory=list)


def needs_autocommit(node: Any) -> bool:
    """True for statements PostgreSQL refuses inside a transaction block."""
    if isinstance(node, ast.IndexStmt):
        return bool(node.concurrent)
    if isinstance(node, ast.DropStmt):
        return bool(node.concurrent)
    if isinstance(node, ast.ReindexStmt):
        concurrently = any(p.defname == "concurrently" for p in node.params or ())
        return concurrently or node.kind in (
            ReindexObjectType.REINDEX_OBJECT_SYSTEM,
            ReindexObjectType.REINDEX_OBJECT_DATABASE,
        )
    if isinstance(node, ast.AlterTableStmt):
        return any(isinstance(c.def_, ast.PartitionCmd) and c.def_.concurrent for c in node.cmds or ())
    if isinstance(
        node,
        ast.CreatedbStmt
        | ast.DropdbStmt
        | ast.VacuumStmt
        | ast.AlterSystemStmt
        | ast.CreateTableSpaceStmt
        | ast.DropTableSpaceStmt,
    ):
        return True
    return isinstance(node, ast.AlterObjectSchemaStmt) and node.objectType == ObjectType.OBJECT_DATABASE


def _first_token_offset(text: str, start: int, end: int) -> int:
    """Skip whitespace and comments that pglast counts as part of a statement."""
    i = start
    while i < end:
        if text[i].isspace():
            i += 1
        elif text.startswith("--", i):
            nl = text.find("\n", i)
            i = end if nl < 0 else nl + 1
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            i = end if close < 0 else close + 2
        else:
            break
    return i


def source_file(sql: str, *, file: str = "V1__test.sql", transactional: bool | None = None) -> SourceFile:
    raw = parse_sql(sql)
    statements: list[SourceStatement] = []
    for i, r in enumerate(raw):
        end = r.stmt_location + r.stmt_len if r.stmt_len else len(sql)
        start = _first_token_offset(sql, r.stmt_location, end)
        line = sql.count("\n", 0, start) + 1
        column = start - (sql.rfind("\n", 0, start) + 1) + 1
        statements.append(SourceStatement(i, sql[start:end], r.stmt, start, end, line, column))
    if transactional is None:
        transactional = not any(needs_autocommit(s.node) for s in statements)
    return SourceFile(file, sql, transactional, statements)
