"""adding-required-field: ADD COLUMN ... NOT NULL without a default fails on a table with rows."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ConstrType
from pglast.visitors import Ancestor

from validator.safety.catalog import type_name
from validator.safety.nodes import altered_table, constraints, is_added_column, manual, qualified
from validator.safety.rule import Example, Rule, RuleDocs
from validator.safety.rules.adding_field_with_default import SERIAL_TYPES


class AddingRequiredField(Rule):
    id = "adding-required-field"
    category = "breaking"
    squawk = "adding-required-field"
    summary = "A NOT NULL column added to an existing table needs a default."
    docs = RuleDocs(
        why="Existing rows have no value for the new column, so ADD COLUMN ... NOT NULL without a DEFAULT "
        "fails on any table that has rows: the migration passes on an empty development database and "
        "fails in production.  Application code that inserts without the column breaks too.",
        lock="ACCESS EXCLUSIVE (the statement fails while holding it).",
        anti_pattern="ALTER TABLE orders ADD COLUMN currency text NOT NULL;",
        best_practice="ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR';\n"
        "-- or: add it nullable, backfill, then add a NOT NULL check (see adding-not-nullable-field)",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-DESC-ADD-COLUMN"),
    )
    examples = (
        Example("ALTER TABLE orders ADD COLUMN currency text NOT NULL;", True),
        Example("ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR';", False),
        Example("ALTER TABLE orders ADD COLUMN note text;", False),
    )
    cases = (
        Example(
            'ALTER TABLE "User" ADD COLUMN     "tenantId" INTEGER NOT NULL;',
            True,
            title="Prisma, with its warning comment above",
        ),
        Example("ALTER TABLE ONLY public.orders ADD COLUMN placed_by bigint NOT NULL;", True),
        Example("ALTER TABLE invoices ADD COLUMN number text NOT NULL, ADD COLUMN note text;", True),
        Example("ALTER TABLE accounts ADD COLUMN plan text CONSTRAINT accounts_plan_nn NOT NULL;", True),
        Example("ALTER TABLE invoices ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY NOT NULL;", False),
        Example(
            "ALTER TABLE line_items ADD COLUMN total numeric NOT NULL GENERATED ALWAYS AS (qty * "
            "price) STORED;",
            False,
        ),
        Example(
            "CREATE TABLE invoices (id bigint PRIMARY KEY);\nALTER TABLE invoices ADD COLUMN number text "
            "NOT NULL;",
            False,
        ),
    )

    def visit_ColumnDef(self, ancestors: Ancestor, node: ast.ColumnDef) -> None:
        if not is_added_column(ancestors) or not (
            node.is_not_null or constraints(node, ConstrType.CONSTR_NOTNULL)
        ):
            return
        if constraints(
            node,
            ConstrType.CONSTR_DEFAULT,
            ConstrType.CONSTR_IDENTITY,
            ConstrType.CONSTR_GENERATED,
            ConstrType.CONSTR_PRIMARY,
        ):
            return  # filled for every row (or reported by the rule about primary keys)
        if type_name(node.typeName) in SERIAL_TYPES:
            return
        table = altered_table(ancestors)
        if table is None or self.ctx.is_new_table(table):
            return
        self.report(
            node,
            f"Adding NOT NULL column {qualified(table)}.{node.colname} without a default fails "
            "as soon as the table has a row.",
            "Give it a DEFAULT, or add it nullable, backfill, and make it NOT NULL later.",
        )
