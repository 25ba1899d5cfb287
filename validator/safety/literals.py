"""Where a string literal stands in a statement, and which type PostgreSQL coerces it to there.

``enum-value-in-transaction`` asks this: after ``ALTER TYPE "OrderStatus" ADD VALUE 'CANCELLED'``,
is a later ``'CANCELLED'`` of the same transaction a value of ``"OrderStatus"`` (which fails with
"unsafe use of new value"), or a value of another type that happens to have the same label (a
second enum, a text column)?  The answer comes from the literal's surroundings: an explicit cast,
the column it is assigned to or compared with (its type known from the earlier migrations through
the ``Catalog``), the column whose default it is.  Where the surroundings say nothing the type is
unknown, and the caller must assume the worst.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType
from pglast.parser import ParseError, parse_sql
from pglast.visitors import Ancestor, Visitor

from validator.safety.catalog import Catalog, declared_type_name
from validator.safety.nodes import filled, last_name, relname, sval


@dataclass(frozen=True)
class LiteralUse:
    node: ast.A_Const
    types: tuple[str, ...]  # the type names it is cast or coerced to, nearest first; () = unknown
    location: int | None  # character offset (in the text the statement was parsed from)


def parents(ancestors: Ancestor) -> Iterator[tuple[Any, tuple[str | int | None, int | None]]]:
    """(parent node, member) pairs from the nearest up, skipping the tuples pglast puts in between
    (the member of a tuple element is its index; the tuple's own member is kept for the parent)."""
    index = None
    a: Ancestor | None = ancestors
    while a is not None and a.node is not None:
        if isinstance(a.node, tuple):
            if isinstance(a.member, int) and index is None:
                index = a.member
        else:
            yield a.node, (a.member, index)
            index = None
        a = a.parent


class _Finder(Visitor):
    def __init__(self, label: str) -> None:
        self.label = label
        self.found: list[tuple[Ancestor, ast.A_Const]] = []

    def visit_A_Const(self, ancestors: Ancestor, node: ast.A_Const) -> None:
        if isinstance(node.val, ast.String) and node.val.sval == self.label:
            self.found.append((ancestors, node))


def string_literals(stmt: ast.Node, label: str, catalog: Catalog) -> list[LiteralUse]:
    """Every string constant equal to ``label`` in the statement node ``stmt``, with its type."""
    finder = _Finder(label)
    finder(stmt)
    return [
        LiteralUse(node, _literal_types(ancestors, stmt, catalog), getattr(node, "location", None))
        for ancestors, node in finder.found
    ]


def _literal_types(ancestors: Ancestor, stmt: ast.Node, catalog: Catalog) -> tuple[str, ...]:
    casts: list[str] = []
    chain = list(parents(ancestors))
    i = 0
    # explicit casts (and ARRAY[...] around the literal) first: 'x'::text::"OrderStatus"
    while i < len(chain):
        parent, (member, _) = chain[i]
        if isinstance(parent, ast.TypeCast) and member == "arg":
            casts.append(declared_type_name(parent.typeName))
        elif isinstance(parent, ast.FuncCall) and _is_function_style_cast(parent, catalog):
            casts.append(last_name(parent.funcname, "FuncCall.funcname"))  # "OrderStatus"('x')
        elif not isinstance(parent, ast.A_ArrayExpr):
            break
        i += 1
    if casts:
        return tuple(casts)
    if i >= len(chain):
        return ()
    parent, (member, index) = chain[i]
    column = _target_column(parent, member, index, chain[i + 1 :], stmt, catalog)
    return (column,) if column else ()


def _is_function_style_cast(call: ast.FuncCall, catalog: Catalog) -> bool:
    return len(call.args or ()) == 1 and last_name(call.funcname, "FuncCall.funcname") in catalog.types


def _target_column(
    parent: object,
    member: str | int | None,
    index: int | None,
    above: list[tuple[Any, tuple[str | int | None, int | None]]],
    stmt: ast.Node,
    catalog: Catalog,
) -> str | None:
    """The declared type of the column the literal is assigned to, compared with, or the default of."""
    if isinstance(parent, ast.ResTarget) and member == "val":
        update = next((p for p, _ in above if isinstance(p, ast.UpdateStmt)), None)
        if update is not None and parent.name:
            return _column_type(catalog, [update.relation], parent.name)
        return None
    if isinstance(parent, ast.A_Expr):
        other = parent.rexpr if member == "lexpr" else parent.lexpr
        if isinstance(other, ast.ColumnRef):
            return _column_ref_type(other, stmt, catalog)
        return None
    if isinstance(parent, ast.Constraint) and parent.contype == ConstrType.CONSTR_DEFAULT:
        coldef = next((p for p, _ in above if isinstance(p, ast.ColumnDef)), None)
        if coldef is not None:
            return declared_type_name(coldef.typeName)
        return None
    if (
        isinstance(parent, ast.AlterTableCmd)
        and parent.subtype == AlterTableType.AT_ColumnDefault
        and isinstance(stmt, ast.AlterTableStmt)
    ):
        return _column_type(catalog, [stmt.relation], filled(parent.name, "AlterTableCmd.name"))
    if isinstance(parent, ast.SelectStmt) and member == "valuesLists" and index is not None:
        insert = next((p for p, _ in above if isinstance(p, ast.InsertStmt)), None)
        # ``index`` is the literal's position in its row of VALUES
        if insert is not None and insert.cols and insert.selectStmt is parent and index < len(insert.cols):
            target = insert.cols[index]
            if isinstance(target, ast.ResTarget) and target.name is not None:
                return _column_type(catalog, [insert.relation], target.name)
    return None


def _relations(stmt: ast.Node) -> list[ast.RangeVar]:
    found: list[ast.RangeVar] = []

    class _Rels(Visitor):
        def visit_RangeVar(self, ancestors: Ancestor, node: ast.RangeVar) -> None:
            found.append(node)

    _Rels()(stmt)
    return found


def _column_ref_type(ref: ast.ColumnRef, stmt: ast.Node, catalog: Catalog) -> str | None:
    names = [sval(f, "ColumnRef.fields") for f in ref.fields or () if isinstance(f, ast.String)]
    if not names:
        return None
    column = names[-1]
    relations = _relations(stmt)
    if len(names) >= 2:
        qualifier = names[-2]
        relations = [
            r
            for r in relations
            if r.relname == qualifier or (r.alias is not None and r.alias.aliasname == qualifier)
        ]
    if isinstance(stmt, ast.CreateStmt):  # a CHECK in CREATE TABLE names the table's own columns
        for elt in stmt.tableElts or ():
            if isinstance(elt, ast.ColumnDef) and elt.colname == column:
                return declared_type_name(elt.typeName)
    return _column_type(catalog, relations, column)


def _column_type(catalog: Catalog, relations: Sequence[ast.RangeVar | None], column: str) -> str | None:
    """The column's declared type when every candidate table that has the column agrees on it."""
    types = {
        declared_type_name(tn)
        for rel in relations
        if rel is not None and (tn := catalog.column_type(relname(rel), column)) is not None
    }
    return types.pop() if len(types) == 1 else None


def sql_function_body(stmt: object) -> list[ast.Node] | None:
    """The parsed statements of ``CREATE FUNCTION/PROCEDURE ... LANGUAGE sql AS '<body>'``: PostgreSQL
    parses and analyses such a body when the function is created (``check_function_bodies``), unlike a
    PL/pgSQL body.  None for anything else, or a body that does not parse."""
    if not isinstance(stmt, ast.CreateFunctionStmt) or stmt.sql_body is not None:
        return None
    language = body = None
    for opt in stmt.options or ():
        if isinstance(opt, ast.DefElem) and opt.defname == "language" and isinstance(opt.arg, ast.String):
            language = sval(opt.arg, "LANGUAGE").lower()
        elif isinstance(opt, ast.DefElem) and opt.defname == "as":
            arg = opt.arg[0] if isinstance(opt.arg, tuple) and opt.arg else opt.arg
            body = arg.sval if isinstance(arg, ast.String) else None
    if language != "sql" or body is None:
        return None
    try:
        return [filled(raw.stmt, "RawStmt.stmt") for raw in parse_sql(body)]
    except ParseError:
        return None
