"""The SQL a ``DO`` block runs when the migration runs: its static statements and the ``EXECUTE
'...'`` whose text is a literal, parsed, with where they are in the file.

Migrations wrap DDL in DO blocks to make it conditional (``IF NOT EXISTS (...) THEN CREATE INDEX
...``, ``EXCEPTION WHEN duplicate_object``) or dynamic; that DDL takes the same locks as at top
level, so the engine runs the rules on it too.  ``EXECUTE format(...)`` and other computed strings
cannot be known before run time and are left alone.  Function and procedure bodies are not
included: they run when called, not when created.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pglast import ast
from pglast.parser import ParseError, parse_plpgsql_json, parse_sql

from validator.safety.nodes import sval

if TYPE_CHECKING:  # pragma: no cover
    from validator.parsed import Statement


@dataclass(frozen=True)
class EmbeddedStatement:
    node: Any  # the parsed statement (pglast node)
    # character offset in the file where the SQL text its node locations count from (None: the text
    # is not in the file as such, e.g. an EXECUTE literal with doubled quotes)
    shift: int | None


def _language(node: ast.DoStmt) -> str:
    for opt in node.args or ():
        if isinstance(opt, ast.DefElem) and opt.defname == "language" and isinstance(opt.arg, ast.String):
            return sval(opt.arg, "DO's LANGUAGE").lower()
    return "plpgsql"


def _queries(tree: Any) -> Iterator[tuple[int, str]]:
    """(line in the statement, SQL text) of every statement the body runs."""
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            if "PLpgSQL_stmt_execsql" in item:
                stmt = item["PLpgSQL_stmt_execsql"]
                yield stmt.get("lineno", 1), stmt["sqlstmt"]["PLpgSQL_expr"]["query"]
            elif "PLpgSQL_stmt_dynexecute" in item:
                stmt = item["PLpgSQL_stmt_dynexecute"]
                literal = _string_literal(stmt["query"]["PLpgSQL_expr"]["query"])
                if literal is not None:
                    yield stmt.get("lineno", 1), literal
            stack.extend(reversed(list(item.values())))


def _string_literal(expression: str) -> str | None:
    """The value of an expression that is one string constant ('...', E'...', $q$...$q$), else None."""
    try:
        [raw] = parse_sql(f"SELECT {expression}")
    except (ParseError, ValueError):
        return None
    if not isinstance(raw.stmt, ast.SelectStmt):
        return None
    targets = raw.stmt.targetList or ()
    if len(targets) != 1 or not isinstance(targets[0], ast.ResTarget):
        return None
    value = targets[0].val
    if isinstance(value, ast.A_Const) and isinstance(value.val, ast.String):
        return value.val.sval
    return None


def embedded_statements(stmt: Statement) -> list[EmbeddedStatement]:
    """The statements a top-level ``DO`` statement (``stmt``: validator.parse's Statement) runs."""
    if not isinstance(stmt.node, ast.DoStmt) or _language(stmt.node) != "plpgsql":
        return []
    try:
        tree = json.loads(parse_plpgsql_json(stmt.text))
    except (ParseError, ValueError):
        return []  # validator.parse reports a body that does not parse
    line_starts = [0] + [i + 1 for i, ch in enumerate(stmt.text) if ch == "\n"]
    out: list[EmbeddedStatement] = []
    for lineno, sql in _queries(tree):
        try:
            raws = parse_sql(sql)
        except ParseError:
            continue  # an EXECUTE of text that is not SQL fails at run time; nothing to judge here
        line_start = line_starts[min(max(lineno, 1), len(line_starts)) - 1]
        found = stmt.text.find(sql, line_start)
        shift = stmt.start + found if found >= 0 else None
        out.extend(EmbeddedStatement(raw.stmt, shift) for raw in raws)
    return out
