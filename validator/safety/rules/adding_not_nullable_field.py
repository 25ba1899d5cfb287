"""adding-not-nullable-field: SET NOT NULL scans the table under an ACCESS EXCLUSIVE lock."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType
from pglast.visitors import Ancestor

from validator.safety.nodes import altered_table, cmd_name, manual, qualified, relname
from validator.safety.rule import Example, Rule, RuleDocs

CHECK_FIRST = {
    "V1__check.sql": "ALTER TABLE orders ADD CONSTRAINT orders_currency_not_null "
    "CHECK (currency IS NOT NULL) NOT VALID;",
    "V2__validate.sql": "ALTER TABLE orders VALIDATE CONSTRAINT orders_currency_not_null;",
    "V3__not_null.sql": "ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;",
}


class AddingNotNullableField(Rule):
    id = "adding-not-nullable-field"
    category = "locking"
    squawk = "adding-not-nullable-field"
    summary = (
        "SET NOT NULL on an existing column needs a validated CHECK (col IS NOT NULL) first (PostgreSQL 12+)."
    )
    docs = RuleDocs(
        why="ALTER COLUMN ... SET NOT NULL reads every row to prove there is no NULL, holding an ACCESS "
        "EXCLUSIVE lock for the whole scan.  From PostgreSQL 12 the scan is skipped when a valid CHECK "
        "(col IS NOT NULL) constraint already proves it; that constraint can be added NOT VALID and "
        "validated without blocking.  schemagate looks for it in the earlier migrations.",
        lock="ACCESS EXCLUSIVE on the table for the scan.",
        anti_pattern="ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;",
        best_practice="ALTER TABLE orders ADD CONSTRAINT orders_currency_not_null\n"
        "    CHECK (currency IS NOT NULL) NOT VALID;\n"
        "-- next migration\nALTER TABLE orders VALIDATE CONSTRAINT orders_currency_not_null;\n"
        "-- next migration (PostgreSQL 12+: no scan)\n"
        "ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;\n"
        "ALTER TABLE orders DROP CONSTRAINT orders_currency_not_null;",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-DESC-SET-DROP-NOT-NULL"),
    )
    examples = (
        Example("ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;", True),
        Example(CHECK_FIRST, False, title="a CHECK validated by an earlier migration (PostgreSQL 12+)"),
        Example(CHECK_FIRST, True, target_postgres=11, title="PostgreSQL 11 scans anyway"),
        Example(
            "CREATE TABLE orders (currency text);\nALTER TABLE orders ALTER COLUMN currency SET NOT NULL;",
            False,
        ),
    )
    cases = (
        Example('ALTER TABLE "User" ALTER COLUMN "name" SET NOT NULL;', True),
        Example("ALTER TABLE ONLY public.orders ALTER COLUMN placed_at SET NOT NULL;", True),
        Example(
            "UPDATE orders SET currency = 'EUR' WHERE currency IS NULL;\nALTER TABLE orders ALTER COLUMN "
            "currency SET NOT NULL;",
            True,
            title="a backfill does not avoid the scan",
        ),
        Example(
            {
                "V1__check.sql": "ALTER TABLE orders ADD CONSTRAINT orders_currency_nn CHECK (currency "
                "IS NOT NULL) NOT VALID;",
                "V2__all.sql": "ALTER TABLE orders VALIDATE CONSTRAINT orders_currency_nn;\n"
                "ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;",
            },
            True,
            title="validated in the same transaction: SET NOT NULL still scans under the lock",
        ),
        Example("ALTER TABLE orders ALTER COLUMN currency DROP NOT NULL;", False),
        Example("ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR';", False),
        Example(
            "CREATE TABLE payments (id bigint PRIMARY KEY, currency text);\n"
            "ALTER TABLE payments ALTER COLUMN currency SET NOT NULL;",
            False,
        ),
    )

    def visit_AlterTableCmd(self, ancestors: Ancestor, node: ast.AlterTableCmd) -> None:
        if node.subtype != AlterTableType.AT_SetNotNull:
            return
        table = altered_table(ancestors)
        if table is None or self.ctx.is_new_table(table):
            return
        if self.ctx.target_postgres >= 12 and self.ctx.catalog.validated_not_null_check(
            relname(table), cmd_name(node), self.ctx.tx
        ):
            return
        help = (
            "Add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later migration, then SET NOT NULL "
            "(no scan on PostgreSQL 12+) and drop the check."
            if self.ctx.target_postgres >= 12
            else "Before PostgreSQL 12 SET NOT NULL always scans; keep a validated CHECK (col IS NOT NULL) "
            "constraint instead, or run it in a maintenance window."
        )
        self.report(
            table,
            f"SET NOT NULL on {qualified(table)}.{node.name} scans the whole table while blocking "
            "its reads and writes.",
            help,
        )
