"""adding-field-with-default: ADD COLUMN whose value must be written into every existing row."""

from __future__ import annotations

from collections.abc import Collection

from pglast import ast
from pglast.enums import ConstrType
from pglast.visitors import Ancestor

from validator.safety.catalog import declared_type_name, type_name
from validator.safety.nodes import (
    altered_table,
    constraints,
    filled,
    is_added_column,
    manual,
    qualified,
    sval,
)
from validator.safety.rule import Example, Rule, RuleDocs
from validator.safety.rules.non_volatile_functions import NON_VOLATILE_FUNCTIONS

_HELP = (
    "Add the column without the default (nullable), SET DEFAULT in a second statement, and "
    "backfill existing rows in batches."
)
SERIAL_TYPES = {"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"}


def non_volatile(expr: object, types: Collection[str] = ()) -> bool:
    """True when ``expr`` is built only from constants, casts, operators and built-in functions that
    are never volatile: PostgreSQL 11+ then evaluates it once and stores it without a rewrite.

    ``types`` are the types the migrations created: ``"MyEnum"('value')`` is a function-style cast
    to one of them (PostgreSQL resolves a one-argument call named like a type, with no such
    function, as a cast), as constant as ``'value'::"MyEnum"``."""

    def walk(e: object) -> bool:
        if e is None or isinstance(e, ast.A_Const | ast.SQLValueFunction | ast.String | ast.Integer):
            return True
        if isinstance(e, ast.TypeCast):
            return walk(e.arg)
        if isinstance(e, ast.FuncCall):
            args = e.args or ()
            funcname = filled(e.funcname, "FuncCall.funcname")
            if len(args) == 1 and sval(funcname[-1]) in types:
                return walk(args[0])
            name = sval(funcname[-1]).lower()
            schema = sval(funcname[0]) if len(funcname) > 1 else "pg_catalog"
            return schema == "pg_catalog" and name in NON_VOLATILE_FUNCTIONS and all(map(walk, args))
        if isinstance(e, ast.A_Expr):
            return walk(e.lexpr) and walk(e.rexpr)
        if isinstance(e, ast.BoolExpr | ast.CoalesceExpr | ast.MinMaxExpr):
            return all(map(walk, e.args or ()))
        if isinstance(e, ast.A_ArrayExpr):
            return all(map(walk, e.elements or ()))
        if isinstance(e, tuple):  # the right-hand list of IN (...)
            return all(map(walk, e))
        if isinstance(e, ast.NullTest | ast.BooleanTest):
            return walk(e.arg)
        return False

    return walk(expr)


def is_null_default(expr: object) -> bool:
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
            "ALTER TABLE orders ADD COLUMN total_cents numeric GENERATED ALWAYS AS (total * 100) VIRTUAL;",
            False,
            target_postgres=18,
            title="a VIRTUAL generated column stores nothing",
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
        Example(
            "-- CreateEnum\nCREATE TYPE \"Priority\" AS ENUM ('LOW', 'NORMAL', 'HIGH');\n\n"
            '-- AlterTable\nALTER TABLE "Order" ADD COLUMN     "priority" "Priority" NOT NULL '
            "DEFAULT 'NORMAL'::\"Priority\";",
            False,
            title="a cast of a constant is a constant",
        ),
        Example(
            "-- CreateEnum\nCREATE TYPE \"Tier\" AS ENUM ('FREE', 'PRO');\n\n"
            '-- AlterTable\nALTER TABLE "User" ADD COLUMN     "tier" "Tier" NOT NULL '
            "DEFAULT \"Tier\"('FREE');",
            False,
            title="a function-style cast to a type of the migrations",
        ),
        Example(
            {
                "V1__score.sql": "CREATE DOMAIN score AS integer CHECK (VALUE BETWEEN 0 AND 100);",
                "V2__user_score.sql": "ALTER TABLE users ADD COLUMN score score;",
            },
            True,
            title="a domain with constraints is checked by rewriting every row",
        ),
    )
    cases = (
        Example("ALTER TABLE api_keys ADD COLUMN secret text NOT NULL DEFAULT md5(random()::text);", True),
        Example(
            'ALTER TABLE "Payment" ADD COLUMN     "reference" TEXT NOT NULL DEFAULT gen_random_uuid()::text;',
            True,
        ),
    )

    def visit_ColumnDef(self, ancestors: Ancestor, node: ast.ColumnDef) -> None:
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
            elif not non_volatile(con.raw_expr, self.ctx.catalog.types):
                self._rewrite(
                    con.raw_expr,
                    where,
                    "the default is volatile (or not known to be stable), "
                    "so it is computed for every existing row",
                )
        domain = declared_type_name(node.typeName)
        if domain in self.ctx.catalog.constrained_domains:
            self._rewrite(
                node.typeName,
                where,
                f"its type {domain} is a domain with constraints, which PostgreSQL checks by rewriting "
                "every row (even when the new value is NULL)",
                help="Add the column with the domain's base type, and its rule as a CHECK constraint "
                "added NOT VALID and validated in a later migration.",
            )
        for con in constraints(node, ConstrType.CONSTR_GENERATED):
            if con.generated_kind == "v":
                continue  # VIRTUAL (PostgreSQL 18+, its default): computed when read, nothing is stored
            self._rewrite(
                con,
                where,
                "a STORED generated column is computed for every existing row",
                help="Add a plain nullable column, fill it in batches, and switch to the generated column "
                "in a maintenance window; on PostgreSQL 18+ a VIRTUAL generated column is added instantly.",
            )
        for con in constraints(node, ConstrType.CONSTR_IDENTITY):
            self._rewrite(
                con,
                where,
                "an identity column draws a sequence value for every existing row",
                help="Add a nullable bigint column, fill it in batches from a sequence, then ADD GENERATED "
                "... AS IDENTITY and SET NOT NULL (with a validated CHECK first).",
            )
        if type_name(node.typeName) in SERIAL_TYPES:
            self._rewrite(
                node.typeName, where, "a serial column draws a sequence value for every existing row"
            )

    def _rewrite(self, node: object | None, where: str, reason: str, *, help: str = _HELP) -> None:
        self.report(
            node, f"Adding {where} rewrites the whole table under an ACCESS EXCLUSIVE lock: {reason}.", help
        )
