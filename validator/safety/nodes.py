"""Questions about pglast nodes that several rules ask (compared with pglast.enums, not strings)."""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

MANUAL = "https://www.postgresql.org/docs/current/"


def manual(page: str, anchor: str = "") -> str:
    return f"{MANUAL}{page}.html" + (f"#{anchor}" if anchor else "")


def altered_table(ancestors: Any) -> Any | None:
    """The RangeVar of the ALTER TABLE around this node, if any.  ALTER INDEX / VIEW / FOREIGN
    TABLE ... share the node but store no rows, so they are not "a table" for the rules."""
    found = ancestors.find_nearest(ast.AlterTableStmt)
    if found is None or found.node.objtype != ObjectType.OBJECT_TABLE:
        return None
    return found.node.relation


def enclosing_cmd(ancestors: Any) -> Any | None:
    found = ancestors.find_nearest(ast.AlterTableCmd)
    return found.node if found is not None else None


def constraints(coldef: Any, *types: ConstrType) -> list[Any]:
    return [c for c in coldef.constraints or () if isinstance(c, ast.Constraint) and c.contype in types]


def is_added_column(ancestors: Any) -> bool:
    """A ColumnDef that ALTER TABLE ... ADD COLUMN adds."""
    cmd = enclosing_cmd(ancestors)
    return cmd is not None and cmd.subtype == AlterTableType.AT_AddColumn


def table_column_context(ancestors: Any) -> str | None:
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


def column_name(ancestors: Any, coldef: Any) -> str:
    if coldef.colname:
        return coldef.colname
    cmd = enclosing_cmd(ancestors)
    return (cmd.name if cmd is not None else None) or "?"


def qualified(relation: Any) -> str:
    if relation is None:
        return "?"
    return f"{relation.schemaname}.{relation.relname}" if relation.schemaname else relation.relname


def has_reindex_concurrently(node: Any) -> bool:
    return any(isinstance(p, ast.DefElem) and p.defname == "concurrently" for p in node.params or ())


PRIMARY_OR_UNIQUE = (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE)


def table_gaining_indexed_constraint(ctx: Any, ancestors: Any, node: Any, contype: ConstrType) -> Any | None:
    """The existing table an ``ALTER TABLE ... ADD [COLUMN ...] <contype>`` constraint builds an index
    on while holding ACCESS EXCLUSIVE, or None (another constraint type, ``USING INDEX``, not an
    ALTER TABLE, or a table created earlier in the same file)."""
    if node.contype != contype or node.indexname:
        return None
    cmd = enclosing_cmd(ancestors)
    table = altered_table(ancestors)
    if cmd is None or table is None or ctx.is_new_table(table):
        return None
    if cmd.subtype not in (AlterTableType.AT_AddConstraint, AlterTableType.AT_AddColumn):
        return None
    return table
