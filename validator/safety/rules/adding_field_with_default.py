"""adding-field-with-default: ADD COLUMN whose value must be written into every existing row."""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums import ConstrType

from validator.safety.nodes import altered_table, constraints, is_added_column, manual, qualified
from validator.safety.rule import Example, Rule, RuleDocs
from validator.safety.rules.non_volatile_functions import NON_VOLATILE_FUNCTIONS

SERIAL_TYPES = {"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"}


def non_volatile(expr: Any) -> bool:
    """True when ``expr`` is built only from constants, casts, operators and built-in functions that
    are never volatile: PostgreSQL 11+ then evaluates it once and stores it without a rewrite."""
    if expr is None or isinstance(expr, ast.A_Const | ast.SQLValueFunction | ast.String | ast.Integer):
        return True
    if isinstance(expr, ast.TypeCast):
        return non_volatile(expr.arg)
    if isinstance(expr, ast.FuncCall):
        name = expr.funcname[-1].sval.lower()
        schema = expr.funcname[0].sval if len(expr.funcname) > 1 else "pg_catalog"
        return (
            schema == "pg_catalog"
            and name in NON_VOLATILE_FUNCTIONS
            and all(non_volatile(a) for a in expr.args or ())
        )
    if isinstance(expr, ast.A_Expr):
        return non_volatile(expr.lexpr) and non_volatile(expr.rexpr)
    if isinstance(expr, ast.BoolExpr | ast.CoalesceExpr | ast.MinMaxExpr):
        return all(non_volatile(a) for a in expr.args or ())
    if isinstance(expr, ast.A_ArrayExpr):
        return all(non_volatile(a) for a in expr.elements or ())
    if isinstance(expr, ast.NullTest | ast.BooleanTest):
        return non_volatile(expr.arg)
    return False


def is_null_default(expr: Any) -> bool:
    if isinstance(expr, ast.TypeCast):
        return is_null_default(expr.arg)
    return isinstance(expr, ast.A_Const) and bool(expr.isnull)


class AddingFieldWithDefault(Rule):
    id = "adding-field-with-default"
    category = "locking"
    squawk = "adding-field-with-default"
    summary = "Adding a column whose value is computed per row (any default before PG 11) rewrites the table."
    docs = RuleDocs(
        why="PostgreSQL 11+ adds a column with a constant or stable default instantly, but a volatile "
        "default "
        "(random(), gen_random_uuid(), clock_timestamp(), nextval() via serial), an identity column or a "
        "STORED generated column is computed for every existing row: the whole table and its indexes are "
        "rewritten under an ACCESS EXCLUSIVE lock.  Before PostgreSQL 11 any non-null default rewrites.",
        lock="ACCESS EXCLUSIVE on the table for the whole rewrite.",
        anti_pattern="ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();",
        best_practice="ALTER TABLE orders ADD COLUMN token uuid;\n"
        "ALTER TABLE orders ALTER COLUMN token SET DEFAULT gen_random_uuid();\n"
        "-- backfill existing rows in batches, in later migrations or a job",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-NOTES"),
    )
    examples = (
        Example("ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();", True),
        Example(
            "ALTER TABLE orders ADD COLUMN total_cents numeric GENERATED ALWAYS AS (total * 100) STORED;",
            True,
        ),
        Example(
            "ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new';",
            False,
            title="a constant default is instant on PostgreSQL 11+",
        ),
        Example(
            "ALTER TABLE orders ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();",
            False,
            title="now() is stable: evaluated once",
        ),
        Example(
            "ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new';",
            True,
            target_postgres=10,
            title="any default rewrites the table before PostgreSQL 11",
        ),
        Example(
            "CREATE TABLE orders (id bigint);\n"
            "ALTER TABLE orders ADD COLUMN token uuid DEFAULT gen_random_uuid();",
            False,
        ),
    )

    def visit_ColumnDef(self, ancestors: Any, node: Any) -> None:
        if not is_added_column(ancestors):
            return
        table = altered_table(ancestors)
        if table is None or self.ctx.is_new_table(table):
            return
        where = f"{qualified(table)}.{node.colname}"
        for con in constraints(node, ConstrType.CONSTR_DEFAULT):
            if is_null_default(con.raw_expr):
                continue
            if self.ctx.target_postgres < 11:
                self._rewrite(con, where, "PostgreSQL before 11 writes any default into every row")
            elif not non_volatile(con.raw_expr):
                self._rewrite(
                    con.raw_expr,
                    where,
                    "the default is volatile (or not known to be stable), "
                    "so it is computed for every existing row",
                )
        for con in constraints(node, ConstrType.CONSTR_GENERATED):
            self._rewrite(con, where, "a STORED generated column is computed for every existing row")
        for con in constraints(node, ConstrType.CONSTR_IDENTITY):
            self._rewrite(con, where, "an identity column draws a sequence value for every existing row")
        if node.typeName and node.typeName.names[-1].sval.lower() in SERIAL_TYPES:
            self._rewrite(
                node.typeName, where, "a serial column draws a sequence value for every existing row"
            )

    def _rewrite(self, node: Any, where: str, reason: str) -> None:
        self.report(
            node,
            f"Adding {where} rewrites the whole table under an ACCESS EXCLUSIVE lock: {reason}.",
            "Add the column without the default (nullable), SET DEFAULT in a second statement, and "
            "backfill existing rows in batches.",
        )
