"""Which named objects a statement creates, drops or renames, as (ObjectType, unqualified name).

The rules about dropping and renaming exempt what the same file created (it is new: no running
code uses it yet) and what the same transaction puts back under the name (Prisma's enum change:
``CREATE TYPE "Role_new" ...; ALTER TYPE "Role" RENAME TO "Role_old"; ALTER TYPE "Role_new" RENAME TO
"Role"; DROP TYPE "Role_old"`` replaces the type atomically).  The catalog records what this module
reports; the rules ask the catalog and look ahead with ``names_taken``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pglast import ast
from pglast.enums import ObjectType

# objects that share one namespace for these purposes (a domain is a type)
_SAME = {
    ObjectType.OBJECT_DOMAIN: ObjectType.OBJECT_TYPE,
    ObjectType.OBJECT_PROCEDURE: ObjectType.OBJECT_FUNCTION,
    ObjectType.OBJECT_ROUTINE: ObjectType.OBJECT_FUNCTION,
    ObjectType.OBJECT_AGGREGATE: ObjectType.OBJECT_FUNCTION,
}


def kind(object_type: Any) -> Any:
    return _SAME.get(object_type, object_type)


def name_of(obj: Any) -> str:
    """The unqualified name of a DROP/RENAME/ALTER target, whatever shape pglast gives it."""
    if isinstance(obj, ast.String):
        return obj.sval
    if isinstance(obj, ast.TypeName):
        return obj.names[-1].sval if obj.names else ""
    if isinstance(obj, ast.ObjectWithArgs):
        return obj.objname[-1].sval if obj.objname else ""
    if isinstance(obj, ast.RangeVar):
        return obj.relname
    if isinstance(obj, tuple) and obj:
        return name_of(obj[-1])
    return ""


def created(node: Any) -> Iterator[tuple[Any, str]]:
    """(kind, name) of what ``node`` creates (or gives a name to, for RENAME)."""
    if isinstance(node, ast.CreateStmt) and node.relation is not None:
        yield kind(ObjectType.OBJECT_TABLE), node.relation.relname
    elif isinstance(node, ast.ViewStmt) and node.view is not None:
        yield kind(ObjectType.OBJECT_VIEW), node.view.relname
    elif isinstance(node, ast.CreateTableAsStmt) and node.into is not None and node.into.rel is not None:
        yield kind(node.objtype), node.into.rel.relname
    elif isinstance(node, ast.CreateFunctionStmt) and node.funcname:
        yield kind(ObjectType.OBJECT_FUNCTION), node.funcname[-1].sval
    elif isinstance(node, ast.CreateSeqStmt) and node.sequence is not None:
        yield kind(ObjectType.OBJECT_SEQUENCE), node.sequence.relname
    elif isinstance(node, ast.CreateSchemaStmt):
        if node.schemaname:
            yield kind(ObjectType.OBJECT_SCHEMA), node.schemaname
        for element in node.schemaElts or ():  # CREATE SCHEMA s CREATE TABLE ... CREATE VIEW ...
            yield from created(element)
    elif isinstance(node, ast.CreateExtensionStmt):
        yield kind(ObjectType.OBJECT_EXTENSION), node.extname
    elif isinstance(node, ast.CreateTrigStmt):
        yield kind(ObjectType.OBJECT_TRIGGER), node.trigname
    elif isinstance(node, ast.CreatePolicyStmt):
        yield kind(ObjectType.OBJECT_POLICY), node.policy_name
    elif isinstance(node, ast.CreateEnumStmt | ast.CreateRangeStmt):
        yield kind(ObjectType.OBJECT_TYPE), node.typeName[-1].sval
    elif isinstance(node, ast.CompositeTypeStmt) and node.typevar is not None:
        yield kind(ObjectType.OBJECT_TYPE), node.typevar.relname
    elif isinstance(node, ast.CreateDomainStmt):
        yield kind(ObjectType.OBJECT_TYPE), node.domainname[-1].sval
    elif isinstance(node, ast.CreateRoleStmt):
        yield kind(ObjectType.OBJECT_ROLE), node.role
    elif isinstance(node, ast.IndexStmt) and node.idxname:
        yield kind(ObjectType.OBJECT_INDEX), node.idxname
    elif isinstance(node, ast.RenameStmt) and node.newname:
        if node.renameType in (ObjectType.OBJECT_COLUMN, ObjectType.OBJECT_ATTRIBUTE):
            return
        if node.renameType == ObjectType.OBJECT_TABCONSTRAINT and node.relation is not None:
            yield ObjectType.OBJECT_TABCONSTRAINT, f"{node.relation.relname}.{node.newname}"
            return
        yield kind(node.renameType), node.newname


def names_taken(statements: Iterable[Any]) -> set[tuple[Any, str]]:
    """Every (kind, name) the statements create or rename something to."""
    return {pair for stmt in statements if stmt.node is not None for pair in created(stmt.node)}


def put_back_later(ctx: Any, object_type: Any, name: str) -> bool:
    """True when a later statement of the same transaction creates (or renames) something to this
    name: clients never see the name missing, the object is replaced, not removed."""
    return (kind(object_type), name) in names_taken(ctx.later_statements_in_same_transaction())
