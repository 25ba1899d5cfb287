"""data-dependent-change: a unique index, NOT NULL, CHECK, foreign key or narrowing type change that
fails or succeeds depending on the rows already in the table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pglast import ast
from pglast.enums import AlterTableType, ConstrType
from pglast.visitors import Ancestor

from validator.safety.catalog import type_mods, type_name
from validator.safety.nodes import altered_table, cmd_name, filled, manual, qualified, relname, sval
from validator.safety.rule import Example, Rule, RuleDocs

_INT_WIDTH = {"int2": 2, "int4": 4, "int8": 8}
_TEXTUAL = {"varchar", "text", "bpchar"}


def cast_can_fail(old: ast.TypeName | None, new: ast.TypeName | None) -> bool:
    """A type change that can fail on some existing value (narrowing); False when the old type is not
    known or the change cannot fail (widening, anything to text)."""
    if old is None or new is None:
        return False
    o, n = type_name(old), type_name(new)
    om, nm = type_mods(old), type_mods(new)
    if n == "text":
        return False
    if o in _INT_WIDTH and n in _INT_WIDTH:
        return _INT_WIDTH[n] < _INT_WIDTH[o]
    if o in _TEXTUAL and n in ("varchar", "bpchar"):
        return nm is not None and (om is None or o == "text" or nm[0] < om[0])
    if o in _TEXTUAL:
        return True  # text -> integer, date, uuid, an enum ...: any value may not parse
    if o == n == "numeric":
        return nm is not None and (om is None or nm[0] - (nm[1:] or (0,))[0] < om[0] - (om[1:] or (0,))[0])
    return False


Kind = Literal["unique", "not-null", "check", "foreign-key", "validate", "type-change"]


@dataclass(frozen=True)
class DataDependentStatement:
    """What the rule found, as data: the statement, its table and columns, and what kind of rows
    break it (the rehearsal's data probe inserts such rows before running it on a copy)."""

    kind: Kind
    statement: int  # index in ParsedFile.statements
    line: int  # the statement's first line
    schema: str | None
    table: str
    # unique: the columns the key reads; not-null and type-change: the column; foreign-key: the
    # referencing columns; check, validate: ()
    columns: tuple[str, ...] = ()
    # unique: each key element as (column, function): ("email", "lower") for lower(email),
    # ("email", None) for the column itself, (None, None) for another expression
    key: tuple[tuple[str | None, str | None], ...] = ()
    partial: bool = False  # unique: the index has a WHERE clause
    constraint: str | None = None  # the constraint's name (validate; add constraint when named)
    check: Any = None  # check: the expression node (pglast)
    ref_schema: str | None = None  # foreign-key: the referenced table and its columns
    ref_table: str | None = None
    ref_columns: tuple[str, ...] = ()
    new_type: str | None = None  # type-change: type_name() of the new type, and its modifiers
    new_type_mods: tuple[int, ...] | None = None
    rows_fixed_earlier: bool = False  # an earlier statement of the file changes the table's rows


def _column_refs(node: object) -> list[str]:
    """The column names an expression reads, in order, once each."""
    out: list[str] = []

    def walk(n: object) -> None:
        if isinstance(n, ast.ColumnRef):
            last = n.fields[-1] if n.fields else None
            if isinstance(last, ast.String) and (name := sval(last, "ColumnRef.fields")) not in out:
                out.append(name)
            return
        if isinstance(n, tuple | list):
            for item in n:
                walk(item)
        elif isinstance(n, ast.Node):
            for name in n:
                walk(getattr(n, name))

    walk(node)
    return out


def _key_part(elem: object) -> tuple[str | None, str | None]:
    name = getattr(elem, "name", None)
    if name:
        return name, None
    expr = getattr(elem, "expr", None)
    if isinstance(expr, ast.FuncCall) and len(expr.args or ()) == 1:
        args = filled(expr.args, "FuncCall.args")
        fn = sval(filled(expr.funcname, "FuncCall.funcname")[-1]).lower()
        refs = _column_refs(args)
        if fn in ("lower", "upper") and isinstance(args[0], ast.ColumnRef) and len(refs) == 1:
            return refs[0], fn
    return None, None


class DataDependentChange(Rule):
    id = "data-dependent-change"
    category = "breaking"
    severity = "warning"
    summary = (
        "A unique index, NOT NULL, CHECK, foreign key or narrowing cast can fail on the rows already there."
    )
    docs = RuleDocs(
        why="These statements succeed or fail depending on the data: CREATE UNIQUE INDEX fails on a "
        "duplicate, SET NOT NULL on a NULL, a CHECK or foreign key (or VALIDATE CONSTRAINT) on one row that "
        "breaks it, a narrowing ALTER COLUMN TYPE on one value that does not fit.  A development or CI "
        "database with few rows passes; production fails at deploy time, after the approval.  "
        "The rehearsal's data probe (rehearsal-data-dependent) runs each such statement on a copy of the "
        "rehearsal database holding a few rows that break it, and shows the failure.",
        lock="that of the statement (see the locking rules); the failure rolls the migration back.",
        anti_pattern="CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (lower(email));",
        best_practice="-- look first (in the PR description):\n"
        "--   SELECT lower(email), count(*) FROM users GROUP BY 1 HAVING count(*) > 1;\n"
        "-- fix the rows in the same migration, before the constraint:\n"
        "UPDATE users SET email = email || '+dup' || id\n"
        "WHERE id NOT IN (SELECT min(id) FROM users GROUP BY lower(email));\n"
        "CREATE UNIQUE INDEX users_email_key ON users (lower(email));",
        manual=manual("ddl-constraints"),
    )
    examples = (
        Example(
            "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (lower(email));",
            True,
            transactional=False,
            title="duplicates make it fail (and leave an INVALID index)",
        ),
        Example(
            "ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;",
            True,
            title="one NULL makes it fail",
        ),
        Example(
            "UPDATE orders SET currency = 'EUR' WHERE currency IS NULL;\n"
            "ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;",
            False,
            title="the migration fixes the rows first",
        ),
        Example(
            "CREATE TABLE coupons (id bigint PRIMARY KEY, code text NOT NULL);\n"
            "CREATE UNIQUE INDEX coupons_code_key ON coupons (code);",
            False,
            title="a table created in the same file has no rows",
        ),
    )
    cases = (
        Example("ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;", True),
        Example('ALTER TABLE "User" ADD CONSTRAINT "User_email_key" UNIQUE ("email");', True),
        Example("ALTER TABLE memberships ADD PRIMARY KEY (team_id, user_id);", True),
        Example("ALTER TABLE invoices ADD CONSTRAINT invoices_total_positive CHECK (total >= 0);", True),
        Example(
            {
                "V1__users.sql": "CREATE TABLE users (id bigint PRIMARY KEY, country text);",
                "V2__country_code.sql": "ALTER TABLE users ALTER COLUMN country TYPE varchar(2);",
            },
            True,
            title="a narrowing type change",
        ),
        Example(
            {
                "V1__events.sql": "CREATE TABLE events (id bigint PRIMARY KEY, payload text);",
                "V2__jsonb.sql": "ALTER TABLE events ALTER COLUMN payload TYPE jsonb USING payload::jsonb;",
            },
            True,
            title="text that may not parse as JSON",
        ),
        Example(
            "ALTER TABLE invoices ADD CONSTRAINT invoices_total_positive CHECK (total >= 0) NOT VALID;",
            False,
            title="NOT VALID: existing rows are not checked (VALIDATE is, later)",
        ),
        Example("CREATE INDEX CONCURRENTLY users_email_idx ON users (email);", False, transactional=False),
        Example(
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key_idx;",
            False,
            title="the unique index was built (and proven) by an earlier migration",
        ),
        Example(
            {
                "V1__users.sql": "CREATE TABLE users (id int PRIMARY KEY, name varchar(50));",
                "V2__wider.sql": "ALTER TABLE users ALTER COLUMN id TYPE bigint;\n"
                "ALTER TABLE users ALTER COLUMN name TYPE text;",
            },
            False,
            title="widening cannot fail",
        ),
        Example(
            "DELETE FROM taggings t USING taggings d\n"
            "WHERE t.tag_id = d.tag_id AND t.item_id = d.item_id AND t.id > d.id;\n"
            "CREATE UNIQUE INDEX taggings_tag_item_key ON taggings (tag_id, item_id);",
            False,
            title="duplicates removed by the same migration",
        ),
    )

    def _rows_fixed_earlier(self, table: ast.RangeVar) -> bool:
        """An earlier statement of this file changes the table's rows (a backfill or a clean-up)."""
        for stmt in self.ctx.file.statements[: self.ctx.statement.index]:
            node = stmt.node
            if (
                isinstance(node, ast.UpdateStmt | ast.DeleteStmt | ast.InsertStmt)
                and node.relation is not None
                and node.relation.relname == table.relname
            ):
                return True
        return False

    def _found(self, found: DataDependentStatement) -> None:
        """Each data-dependent statement on a table that existed before the file, reported or not
        (those the file fixes the rows for first too): nothing here; ``data_dependent_statements``
        collects them."""

    def _describe(self, kind: Kind, table: ast.RangeVar, fixed: bool, **data: Any) -> DataDependentStatement:
        return DataDependentStatement(
            kind=kind,
            statement=self.ctx.statement.index,
            line=self.ctx.statement.line,
            schema=table.schemaname or None,
            table=relname(table),
            rows_fixed_earlier=fixed,
            **data,
        )

    def _report(
        self,
        node: object | None,
        table: ast.RangeVar,
        what: str,
        failure: str,
        check: str,
        found: dict[str, Any] | None = None,
    ) -> None:
        if self.ctx.is_new_table(table):
            return
        fixed = self._rows_fixed_earlier(table)
        if found is not None and not self.ctx.in_do_block:
            self._found(self._describe(table=table, fixed=fixed, **found))
        if fixed:
            return
        self.report(
            node,
            f"{what} fails if {failure} in {qualified(table)}: it passes on a database with few rows and "
            "fails in production, after the approval.",
            f"Check the production data first ({check}) and fix the rows in an earlier migration, or in this "
            "one before the change.",
        )

    def visit_IndexStmt(self, ancestors: Ancestor, node: ast.IndexStmt) -> None:
        if node.unique:
            keys = [_key_part(e) for e in node.indexParams or ()]
            relation = filled(node.relation, "IndexStmt.relation")
            self._report(
                relation,
                relation,
                f"Building unique index {node.idxname or '(unnamed)'}",
                "two rows have the same key",
                "SELECT <key>, count(*) ... GROUP BY <key> HAVING count(*) > 1",
                {
                    "kind": "unique",
                    "columns": tuple(
                        dict.fromkeys(c for c, _ in map(_key_part, node.indexParams or ()) if c)
                    ),
                    "key": tuple(keys),
                    "partial": node.whereClause is not None,
                    "constraint": node.idxname,
                },
            )

    def visit_AlterTableCmd(self, ancestors: Ancestor, node: ast.AlterTableCmd) -> None:
        table = altered_table(ancestors)
        if table is None:
            return
        if node.subtype == AlterTableType.AT_SetNotNull:
            if self.ctx.target_postgres >= 12 and self.ctx.catalog.validated_not_null_check(
                relname(table), cmd_name(node), None
            ):
                return
            self._report(
                table,
                table,
                f"SET NOT NULL on {node.name}",
                "a row has a NULL",
                f"WHERE {node.name} IS NULL",
                {"kind": "not-null", "columns": (node.name,)},
            )
        elif node.subtype == AlterTableType.AT_AddConstraint and isinstance(node.def_, ast.Constraint):
            self._constraint(node.def_, table)
        elif node.subtype == AlterTableType.AT_ValidateConstraint:
            self._report(
                table,
                table,
                f"VALIDATE CONSTRAINT {node.name}",
                "a row breaks the constraint",
                "the constraint's condition negated, or the orphan rows of a foreign key",
                {"kind": "validate", "constraint": node.name},
            )
        elif node.subtype == AlterTableType.AT_AlterColumnType and isinstance(node.def_, ast.ColumnDef):
            old = self.ctx.catalog.column_type(relname(table), cmd_name(node))
            if node.def_.raw_default is not None or cast_can_fail(old, node.def_.typeName):
                self._report(
                    node.def_.typeName,
                    table,
                    f"Changing the type of {node.name}",
                    "a value does not convert",
                    "a query for the values the new type refuses",
                    {
                        "kind": "type-change",
                        "columns": (node.name,),
                        "new_type": type_name(node.def_.typeName),
                        "new_type_mods": type_mods(node.def_.typeName),
                    },
                )

    def _constraint(self, con: ast.Constraint, table: ast.RangeVar) -> None:
        if con.contype in (ConstrType.CONSTR_UNIQUE, ConstrType.CONSTR_PRIMARY) and not con.indexname:
            kind = "primary key" if con.contype == ConstrType.CONSTR_PRIMARY else "unique constraint"
            self._report(
                con,
                table,
                f"Adding {kind} {con.conname or ''}".rstrip(),
                "two rows have the same key"
                + (" or a NULL" if con.contype == ConstrType.CONSTR_PRIMARY else ""),
                "SELECT <key>, count(*) ... GROUP BY <key> HAVING count(*) > 1",
                {
                    "kind": "unique",
                    "columns": tuple(k.sval for k in con.keys or ()),
                    "key": tuple((k.sval, None) for k in con.keys or ()),
                    "constraint": con.conname,
                },
            )
        elif con.contype in (ConstrType.CONSTR_CHECK, ConstrType.CONSTR_FOREIGN) and not con.skip_validation:
            kind = "CHECK" if con.contype == ConstrType.CONSTR_CHECK else "foreign key"
            self._report(
                con,
                table,
                f"Adding {kind} {con.conname or ''}".rstrip(),
                "a row breaks it",
                "the condition negated, or the rows without a match in the referenced table",
                {"kind": "check", "check": con.raw_expr, "constraint": con.conname}
                if con.contype == ConstrType.CONSTR_CHECK
                else {
                    "kind": "foreign-key",
                    "columns": tuple(a.sval for a in con.fk_attrs or ()),
                    "constraint": con.conname,
                    "ref_schema": filled(con.pktable, "Constraint.pktable").schemaname or None,
                    "ref_table": relname(filled(con.pktable, "Constraint.pktable")),
                    "ref_columns": tuple(a.sval for a in con.pk_attrs or ()),
                },
            )
