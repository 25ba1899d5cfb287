"""What the migrations already did, as far as the safety rules need to know.

The engine feeds every statement of every file, in apply order, into one ``Catalog`` after the
rules have looked at it.  Rules then ask questions the pipeline can answer and a single-file
linter cannot: was this table created earlier in the same file (new and empty, so exempt from
lock rules)?  Which type did this column have (so widening ``varchar(50)`` to ``text`` is known not
to rewrite)?  Is there a validated ``CHECK (col IS NOT NULL)`` from an earlier migration (so
``SET NOT NULL`` skips its scan on PostgreSQL 12+)?
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, NullTestType, ObjectType

from validator.safety.nodes import cmd_name, filled, last_name, relname, sval
from validator.safety.objects import created, kind


def type_name(tn: ast.TypeName | None) -> str:
    """The last part of a TypeName, lower case: ``int4``, ``varchar``, ``timestamptz``, ``serial``."""
    return declared_type_name(tn).lower()


def declared_type_name(tn: ast.TypeName | None) -> str:
    """The last part of a TypeName as PostgreSQL stores it (``"OrderStatus"`` keeps its case,
    unquoted names are already folded to lower case by the parser)."""
    if tn is None or not tn.names:
        return ""
    return sval(tn.names[-1], "TypeName.names")


def _last(names: object) -> str:
    """The last part of a qualified name given as a tuple of String nodes."""
    parts = [sval(n) for n in names if isinstance(n, ast.String)] if isinstance(names, tuple) else []
    return parts[-1] if parts else ""


def type_mods(tn: ast.TypeName | None) -> tuple[int, ...] | None:
    """Integer type modifiers (``varchar(20)`` -> ``(20,)``); None when there are none or not literal."""
    if tn is None or not tn.typmods:
        return None
    mods: list[int] = []
    for m in tn.typmods:
        val = getattr(m, "val", None)
        if not isinstance(val, ast.Integer):
            return None
        mods.append(filled(val.ival, "Integer.ival"))
    return tuple(mods)


def not_null_column(expr: object) -> str | None:
    """``col IS NOT NULL`` -> ``col``; anything else -> None."""
    if (
        isinstance(expr, ast.NullTest)
        and expr.nulltesttype == NullTestType.IS_NOT_NULL
        and isinstance(expr.arg, ast.ColumnRef)
        and expr.arg.fields is not None
        and len(expr.arg.fields) == 1
        and isinstance(expr.arg.fields[0], ast.String)
    ):
        return sval(expr.arg.fields[0], "ColumnRef.fields")
    return None


@dataclass
class CheckConstraint:
    """A CHECK or FOREIGN KEY constraint: both can be added NOT VALID and validated later."""

    table: str
    name: str
    not_null_column: str | None
    validated: bool
    tx: object  # the transaction it was added in (None: its own)


@dataclass
class Catalog:
    # table -> column -> its declared type (as pglast serializes it, a dict, when the catalog came
    # from validator.safety.catalog_cache: built on first use, ``column_type``)
    columns: dict[str, dict[str, ast.TypeName | dict[str, Any] | None]] = field(default_factory=dict)
    checks: dict[tuple[str, str], CheckConstraint] = field(default_factory=dict)
    # types the migrations created (unqualified name -> "enum", "domain", "composite", "range"), and
    # the domains among them with a CHECK or NOT NULL constraint
    types: dict[str, str] = field(default_factory=dict)
    constrained_domains: set[str] = field(default_factory=set)
    not_null: set[tuple[str, str]] = field(default_factory=set)
    partitioned: set[str] = field(
        default_factory=set
    )  # tables created with PARTITION BY  # (table, column) declared NOT NULL
    # per file (reset by start_file)
    new_tables: set[str] = field(default_factory=set)
    new_indexes: set[str] = field(default_factory=set)
    new_types: set[str] = field(default_factory=set)
    # (objects.kind(ObjectType), name) created or renamed to in this file; constraints as
    # (OBJECT_TABCONSTRAINT, "table.name")
    new_objects: set[tuple[ObjectType | None, str]] = field(default_factory=set)

    def start_file(self) -> None:
        self.new_tables = set()
        self.new_indexes = set()
        self.new_types = set()
        self.new_objects = set()

    def is_new_object(self, object_type: ObjectType | None, name: str) -> bool:
        return (kind(object_type), name) in self.new_objects

    # ---- questions -------------------------------------------------------------------------
    def is_new_table(self, relation: ast.RangeVar | str | None) -> bool:
        """True when ``relation`` (a RangeVar or a name) was created earlier in the current file."""
        name = relation if isinstance(relation, str) else getattr(relation, "relname", None)
        return name is not None and name in self.new_tables

    def column_type(self, table: str, column: str) -> ast.TypeName | None:
        declared = self.columns.get(table, {}).get(column)
        if isinstance(declared, dict):
            declared = self.columns[table][column] = ast.TypeName(declared)
        return declared

    def validated_not_null_check(self, table: str, column: str, tx: object) -> CheckConstraint | None:
        """A CHECK (column IS NOT NULL) validated in an earlier transaction than ``tx``."""
        for check in self.checks.values():
            if (
                check.table == table
                and check.not_null_column == column
                and check.validated
                and (tx is None or check.tx != tx)
            ):
                return check
        return None

    # ---- recording -------------------------------------------------------------------------
    def record(self, node: ast.Node | None, tx: object) -> None:
        self.new_objects.update(created(node))
        if isinstance(node, ast.CreateStmt):
            self._record_create(node, tx)
        elif isinstance(node, ast.CreateTableAsStmt) and node.into and node.into.rel:
            # CREATE TABLE AS, SELECT INTO and CREATE MATERIALIZED VIEW
            self.new_tables.add(relname(node.into.rel))
        elif isinstance(node, ast.IndexStmt) and node.idxname:
            self.new_indexes.add(node.idxname)
        elif isinstance(node, ast.CreateEnumStmt):
            self._record_type(last_name(node.typeName, "CreateEnumStmt.typeName"), "enum")
        elif isinstance(node, ast.CreateDomainStmt):
            name = last_name(node.domainname, "CreateDomainStmt.domainname")
            self._record_type(name, "domain")
            if any(
                c.contype in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_NOTNULL)
                for c in node.constraints or ()
            ):
                self.constrained_domains.add(name)
        elif isinstance(node, ast.AlterDomainStmt) and node.subtype in ("C", "O") and node.typeName:
            # ADD CONSTRAINT, SET NOT NULL
            self.constrained_domains.add(last_name(node.typeName, "AlterDomainStmt.typeName"))
        elif isinstance(node, ast.CompositeTypeStmt) and node.typevar:
            self._record_type(relname(node.typevar), "composite")
        elif isinstance(node, ast.CreateRangeStmt):
            self._record_type(last_name(node.typeName, "CreateRangeStmt.typeName"), "range")
        elif (
            isinstance(node, ast.RenameStmt)
            and node.renameType in (ObjectType.OBJECT_TYPE, ObjectType.OBJECT_DOMAIN)
            and node.object
        ):
            self._rename_type(_last(node.object), filled(node.newname, "RenameStmt.newname"))
        elif isinstance(node, ast.DropStmt) and node.removeType in (
            ObjectType.OBJECT_TYPE,
            ObjectType.OBJECT_DOMAIN,
        ):
            for obj in node.objects or ():
                name = declared_type_name(obj) if isinstance(obj, ast.TypeName) else _last(obj)
                self.types.pop(name, None)
                self.constrained_domains.discard(name)
        elif isinstance(node, ast.AlterTableStmt) and node.relation is not None:
            self._record_alter(node, tx)
        elif (
            isinstance(node, ast.RenameStmt) and node.renameType == ObjectType.OBJECT_TABLE and node.relation
        ):
            old, new = relname(node.relation), filled(node.newname, "RenameStmt.newname")
            if old in self.new_tables:
                self.new_tables.add(new)
            if old in self.columns:
                self.columns[new] = self.columns.pop(old)
        elif (
            isinstance(node, ast.RenameStmt) and node.renameType == ObjectType.OBJECT_COLUMN and node.relation
        ):
            cols = self.columns.get(relname(node.relation), {})
            if node.subname is not None and node.subname in cols:
                cols[filled(node.newname, "RenameStmt.newname")] = cols.pop(node.subname)
        elif isinstance(node, ast.DropStmt) and node.removeType == ObjectType.OBJECT_TABLE:
            for obj in node.objects or ():
                self.columns.pop(sval(obj[-1], "DropStmt.objects"), None)

    def _record_type(self, name: str, kind: str) -> None:
        self.new_types.add(name)
        self.types[name] = kind

    def _rename_type(self, old: str, new: str) -> None:
        if old in self.types:
            self.types[new] = self.types.pop(old)
        if old in self.new_types:
            self.new_types.add(new)
        if old in self.constrained_domains:
            self.constrained_domains.discard(old)
            self.constrained_domains.add(new)

    def _record_create(self, node: ast.CreateStmt, tx: object) -> None:
        table = relname(filled(node.relation, "CreateStmt.relation"))
        self.new_tables.add(table)
        if node.partspec is not None:
            self.partitioned.add(table)
        cols: dict[str, ast.TypeName | dict[str, Any] | None] = {}
        for elt in node.tableElts or ():
            if isinstance(elt, ast.ColumnDef) and elt.colname:
                cols[elt.colname] = elt.typeName
                self._record_column_constraints(table, elt)
            elif isinstance(elt, ast.Constraint):
                self._record_constraint(table, elt, tx, validated=True)
        self.columns[table] = cols

    def _record_alter(self, node: ast.AlterTableStmt, tx: object) -> None:
        table = relname(filled(node.relation, "AlterTableStmt.relation"))
        cols = self.columns.setdefault(table, {})
        for cmd in node.cmds or ():
            if not isinstance(cmd, ast.AlterTableCmd):
                continue
            if cmd.subtype == AlterTableType.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
                cols[filled(cmd.def_.colname, "ColumnDef.colname")] = cmd.def_.typeName
                self._record_column_constraints(table, cmd.def_)
            elif cmd.subtype == AlterTableType.AT_SetNotNull:
                self.not_null.add((table, cmd_name(cmd)))
            elif cmd.subtype == AlterTableType.AT_DropNotNull:
                self.not_null.discard((table, cmd_name(cmd)))
            elif cmd.subtype == AlterTableType.AT_AlterColumnType and isinstance(cmd.def_, ast.ColumnDef):
                cols[cmd_name(cmd)] = cmd.def_.typeName
            elif cmd.subtype == AlterTableType.AT_DropColumn:
                cols.pop(cmd_name(cmd), None)
            elif cmd.subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
                self._record_constraint(table, cmd.def_, tx, validated=not cmd.def_.skip_validation)
            elif cmd.subtype == AlterTableType.AT_ValidateConstraint:
                check = self.checks.get((table, cmd_name(cmd)))
                if check is not None:
                    check.validated = True
                    check.tx = tx
            elif cmd.subtype == AlterTableType.AT_DropConstraint:
                self.checks.pop((table, cmd_name(cmd)), None)

    def _record_column_constraints(self, table: str, coldef: ast.ColumnDef) -> None:
        for con in coldef.constraints or ():
            if isinstance(con, ast.Constraint):
                if con.contype in (ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY):
                    self.not_null.add((table, filled(coldef.colname, "ColumnDef.colname")))
                if con.conname:
                    self.new_objects.add((ObjectType.OBJECT_TABCONSTRAINT, f"{table}.{con.conname}"))

    def _record_constraint(self, table: str, con: ast.Constraint, tx: object, *, validated: bool) -> None:
        if con.conname:
            self.new_objects.add((ObjectType.OBJECT_TABCONSTRAINT, f"{table}.{con.conname}"))
        if con.contype == ConstrType.CONSTR_PRIMARY:
            self.not_null.update((table, sval(k, "Constraint.keys")) for k in con.keys or ())
        # the constraints that can be added NOT VALID and validated later
        if con.contype in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_FOREIGN) and con.conname:
            column = not_null_column(con.raw_expr) if con.contype == ConstrType.CONSTR_CHECK else None
            self.checks[(table, con.conname)] = CheckConstraint(table, con.conname, column, validated, tx)
