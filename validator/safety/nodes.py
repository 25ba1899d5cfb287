"""Questions about pglast nodes that several rules ask (compared with pglast.enums, not strings)."""

from __future__ import annotations

from typing import Any, TypeVar

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType
from pglast.visitors import Ancestor

MANUAL = "https://www.postgresql.org/docs/current/"

T = TypeVar("T")
N = TypeVar("N", bound=ast.Node)


class NodeShapeError(ValueError):
    """pglast gave a node without a field the grammar always fills: a bug here or in pglast, not in
    the migration."""


def filled(value: T | None, what: str) -> T:
    """A node field pglast types Optional although the grammar always fills it (RangeVar.relname,
    CreateEnumStmt.typeName ...): the value, or NodeShapeError naming the field."""
    if value is None:
        raise NodeShapeError(f"pglast gave no {what}, which the grammar always fills")
    return value


def relname(relation: ast.RangeVar) -> str:
    return filled(relation.relname, "RangeVar.relname")


def sval(node: object, what: str = "name") -> str:
    """The text of a String node (an identifier of a qualified name list)."""
    if not isinstance(node, ast.String):
        raise NodeShapeError(f"pglast gave {type(node).__name__} for {what}, not a String")
    return filled(node.sval, f"{what} (String.sval)")


def last_name(names: tuple[Any, ...] | None, what: str) -> str:
    """The last part of a qualified name list the grammar always fills (``CREATE TYPE s.mood``:
    ``mood``)."""
    parts = filled(names, what)
    if not parts:
        raise NodeShapeError(f"pglast gave an empty {what}")
    return sval(parts[-1], what)


def cmd_name(cmd: ast.AlterTableCmd) -> str:
    """The column or constraint an ALTER TABLE subcommand names (SET NOT NULL, DROP COLUMN, ALTER
    COLUMN TYPE, VALIDATE / DROP CONSTRAINT ...: those that have one)."""
    return filled(cmd.name, f"AlterTableCmd.name of {cmd.subtype!r}")


def nearest(ancestors: Ancestor, cls: type[N]) -> N | None:
    """The nearest enclosing node of class ``cls``, if any (pglast's find_nearest, typed)."""
    found = ancestors.find_nearest(cls)
    return found.node if found is not None and isinstance(found.node, cls) else None


def manual(page: str, anchor: str = "") -> str:
    return f"{MANUAL}{page}.html" + (f"#{anchor}" if anchor else "")


def altered_table(ancestors: Ancestor) -> ast.RangeVar | None:
    """The RangeVar of the ALTER TABLE around this node, if any.  ALTER INDEX / VIEW / FOREIGN
    TABLE ... share the node but store no rows, so they are not "a table" for the rules."""
    found = nearest(ancestors, ast.AlterTableStmt)
    if found is None or found.objtype != ObjectType.OBJECT_TABLE:
        return None
    return found.relation


def enclosing_cmd(ancestors: Ancestor) -> ast.AlterTableCmd | None:
    return nearest(ancestors, ast.AlterTableCmd)


def constraints(coldef: ast.ColumnDef, *types: ConstrType) -> list[ast.Constraint]:
    return [c for c in coldef.constraints or () if isinstance(c, ast.Constraint) and c.contype in types]


def is_added_column(ancestors: Ancestor) -> bool:
    """A ColumnDef that ALTER TABLE ... ADD COLUMN adds."""
    cmd = enclosing_cmd(ancestors)
    return cmd is not None and cmd.subtype == AlterTableType.AT_AddColumn


def table_column_context(ancestors: Ancestor) -> str | None:
    """Where a ColumnDef defines a stored table column: "create", "add" or "alter-type" (else None,
    e.g. a composite type's attribute or a function's return table)."""
    cmd = enclosing_cmd(ancestors)
    if cmd is not None:
        if cmd.subtype == AlterTableType.AT_AddColumn:
            return "add"
        if cmd.subtype == AlterTableType.AT_AlterColumnType:
            return "alter-type"
        return None
    create = ancestors.find_nearest(ast.CreateStmt)
    if create is not None and ancestors.find_nearest(ast.CompositeTypeStmt) is None:
        return "create"
    return None


def column_name(ancestors: Ancestor, coldef: ast.ColumnDef) -> str:
    if coldef.colname:
        return coldef.colname
    cmd = enclosing_cmd(ancestors)
    return (cmd.name if cmd is not None else None) or "?"


def qualified(relation: ast.RangeVar | None) -> str:
    if relation is None:
        return "?"
    return f"{relation.schemaname}.{relname(relation)}" if relation.schemaname else relname(relation)


def has_reindex_concurrently(node: ast.ReindexStmt) -> bool:
    return any(isinstance(p, ast.DefElem) and p.defname == "concurrently" for p in node.params or ())


PRIMARY_OR_UNIQUE = (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE)


def table_gaining_indexed_constraint(
    ancestors: Ancestor, node: ast.Constraint, contype: ConstrType
) -> ast.RangeVar | None:
    """The table an ``ALTER TABLE ... ADD [COLUMN ...] <contype>`` constraint builds an index on
    while holding ACCESS EXCLUSIVE, or None (another constraint type, ``USING INDEX``, not an ALTER
    TABLE).  The caller leaves out a table created earlier in the same file
    (``FileContext.is_new_table``)."""
    if node.contype != contype or node.indexname:
        return None
    cmd = enclosing_cmd(ancestors)
    table = altered_table(ancestors)
    if cmd is None or table is None:
        return None
    if cmd.subtype not in (AlterTableType.AT_AddConstraint, AlterTableType.AT_AddColumn):
        return None
    return table
