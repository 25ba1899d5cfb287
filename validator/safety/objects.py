"""Which named objects a statement creates, drops or renames, as (ObjectType, unqualified name).

The rules about dropping and renaming exempt what the same file created (it is new: no running
code uses it yet) and what the same transaction puts back under the name (Prisma's enum change:
``CREATE TYPE "Role_new" ...; ALTER TYPE "Role" RENAME TO "Role_old"; ALTER TYPE "Role_new" RENAME TO
"Role"; DROP TYPE "Role_old"`` replaces the type atomically).  The catalog records what this module
reports; the rules ask the catalog and look ahead with ``names_taken``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from pglast import ast
from pglast.enums import ObjectType

from validator.safety.nodes import filled, last_name, relname, sval

if TYPE_CHECKING:  # pragma: no cover
    from validator.parsed import Statement

# objects that share one namespace for these purposes (a domain is a type)
_SAME = {
    ObjectType.OBJECT_DOMAIN: ObjectType.OBJECT_TYPE,
    ObjectType.OBJECT_PROCEDURE: ObjectType.OBJECT_FUNCTION,
    ObjectType.OBJECT_ROUTINE: ObjectType.OBJECT_FUNCTION,
    ObjectType.OBJECT_AGGREGATE: ObjectType.OBJECT_FUNCTION,
}


def kind(object_type: ObjectType | None) -> ObjectType | None:
    return _SAME.get(object_type, object_type) if object_type is not None else None


def name_of(obj: object) -> str:
    """The unqualified name of a DROP/RENAME/ALTER target, whatever shape pglast gives it."""
    if isinstance(obj, ast.String):
        return sval(obj)
    if isinstance(obj, ast.TypeName):
        return sval(obj.names[-1], "TypeName.names") if obj.names else ""
    if isinstance(obj, ast.ObjectWithArgs):
        return sval(obj.objname[-1], "ObjectWithArgs.objname") if obj.objname else ""
    if isinstance(obj, ast.RangeVar):
        return relname(obj)
    if isinstance(obj, tuple) and obj:
        return name_of(obj[-1])
    return ""


def created(node: object) -> Iterator[tuple[ObjectType | None, str]]:
    """(kind, name) of what ``node`` creates (or gives a name to, for RENAME)."""
    if isinstance(node, ast.CreateStmt) and node.relation is not None:
        yield kind(ObjectType.OBJECT_TABLE), relname(node.relation)
    elif isinstance(node, ast.ViewStmt) and node.view is not None:
        yield kind(ObjectType.OBJECT_VIEW), relname(node.view)
    elif isinstance(node, ast.CreateTableAsStmt) and node.into is not None and node.into.rel is not None:
        yield kind(node.objtype), relname(node.into.rel)
    elif isinstance(node, ast.CreateFunctionStmt) and node.funcname:
        yield kind(ObjectType.OBJECT_FUNCTION), last_name(node.funcname, "CreateFunctionStmt.funcname")
    elif isinstance(node, ast.CreateSeqStmt) and node.sequence is not None:
        yield kind(ObjectType.OBJECT_SEQUENCE), relname(node.sequence)
    elif isinstance(node, ast.CreateSchemaStmt):
        if node.schemaname:
            yield kind(ObjectType.OBJECT_SCHEMA), node.schemaname
        for element in node.schemaElts or ():  # CREATE SCHEMA s CREATE TABLE ... CREATE VIEW ...
            yield from created(element)
    elif isinstance(node, ast.CreateExtensionStmt):
        yield kind(ObjectType.OBJECT_EXTENSION), filled(node.extname, "CreateExtensionStmt.extname")
    elif isinstance(node, ast.CreateTrigStmt):
        yield kind(ObjectType.OBJECT_TRIGGER), filled(node.trigname, "CreateTrigStmt.trigname")
    elif isinstance(node, ast.CreatePolicyStmt):
        yield kind(ObjectType.OBJECT_POLICY), filled(node.policy_name, "CreatePolicyStmt.policy_name")
    elif isinstance(node, ast.CreateEnumStmt | ast.CreateRangeStmt):
        yield kind(ObjectType.OBJECT_TYPE), last_name(node.typeName, f"{type(node).__name__}.typeName")
    elif isinstance(node, ast.CompositeTypeStmt) and node.typevar is not None:
        yield kind(ObjectType.OBJECT_TYPE), relname(node.typevar)
    elif isinstance(node, ast.CreateDomainStmt):
        yield kind(ObjectType.OBJECT_TYPE), last_name(node.domainname, "CreateDomainStmt.domainname")
    elif isinstance(node, ast.CreateRoleStmt):
        yield kind(ObjectType.OBJECT_ROLE), filled(node.role, "CreateRoleStmt.role")
    elif isinstance(node, ast.IndexStmt) and node.idxname:
        yield kind(ObjectType.OBJECT_INDEX), node.idxname
    elif isinstance(node, ast.RenameStmt) and node.newname:
        if node.renameType in (ObjectType.OBJECT_COLUMN, ObjectType.OBJECT_ATTRIBUTE):
            return
        if node.renameType == ObjectType.OBJECT_TABCONSTRAINT and node.relation is not None:
            yield ObjectType.OBJECT_TABCONSTRAINT, f"{relname(node.relation)}.{node.newname}"
            return
        yield kind(node.renameType), node.newname


def names_taken(statements: Iterable[Statement]) -> set[tuple[ObjectType | None, str]]:
    """Every (kind, name) the statements create or rename something to."""
    return {pair for stmt in statements if stmt.node is not None for pair in created(stmt.node)}


def put_back_later(later: Iterable[Statement], object_type: ObjectType | None, name: str) -> bool:
    """True when a ``later`` statement of the same transaction (``FileContext.
    later_statements_in_same_transaction``) creates (or renames) something to this name: clients
    never see the name missing, the object is replaced, not removed."""
    return (kind(object_type), name) in names_taken(later)
