"""constraint-missing-not-valid: CHECK added without NOT VALID, or validated in the same transaction."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType, ConstrType
from pglast.visitors import Ancestor

from validator.safety.nodes import altered_table, cmd_name, enclosing_cmd, manual, qualified, relname
from validator.safety.rule import Example, Rule, RuleDocs


class ConstraintMissingNotValid(Rule):
    id = "constraint-missing-not-valid"
    category = "locking"
    squawk = "constraint-missing-not-valid"
    summary = "Add CHECK constraints NOT VALID; validate CHECKs and foreign keys in a later transaction."
    docs = RuleDocs(
        why="ADD CONSTRAINT ... CHECK scans the whole table under an ACCESS EXCLUSIVE lock: no reads or "
        "writes until every row is checked.  Validating a NOT VALID constraint in the same "
        "transaction that added it keeps that lock for the scan, undoing the benefit.",
        lock="ACCESS EXCLUSIVE for ADD CONSTRAINT; SHARE UPDATE EXCLUSIVE for VALIDATE CONSTRAINT.",
        anti_pattern="ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0);",
        best_practice="ALTER TABLE orders ADD CONSTRAINT orders_total_positive\n"
        "    CHECK (total >= 0) NOT VALID;\n"
        "-- next migration (its own transaction)\n"
        "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-NOTES"),
    )
    examples = (
        Example("ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0);", True),
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;\n"
            "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;",
            True,
            title="validated in the same transaction",
        ),
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk\n"
            "    FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\n"
            "ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;",
            True,
            title="a foreign key validated in the same transaction",
        ),
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;", False
        ),
        Example(
            {
                "V1__add_check.sql": "ALTER TABLE orders ADD CONSTRAINT orders_total_positive "
                "CHECK (total >= 0) NOT VALID;",
                "V2__validate_check.sql": "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;",
            },
            False,
            title="validated by the next migration",
        ),
    )
    cases = (
        Example("ALTER TABLE ONLY public.users ADD CONSTRAINT users_age_check CHECK ((age >= 0));", True),
        Example(
            'ALTER TABLE "Product" ADD CONSTRAINT "Product_price_check" CHECK ("price" > 0);',
            True,
        ),
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;\n"
            "UPDATE orders SET total = 0 WHERE total < 0;\n"
            "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;",
            True,
            title="cleaned and validated in the same transaction",
        ),
        Example(
            "CREATE TABLE prices (amount numeric);\nALTER TABLE prices ADD CONSTRAINT "
            "prices_amount_check CHECK (amount > 0);",
            False,
        ),
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;\n"
            "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;",
            False,
            transactional=False,
            title="outside a transaction the validation is a transaction of its own",
        ),
        Example(
            "ALTER TABLE orders ADD COLUMN total numeric CHECK (total >= 0);",
            False,
            title="a new column is all NULL",
        ),
    )

    def visit_AlterTableCmd(self, ancestors: Ancestor, node: ast.AlterTableCmd) -> None:
        table = altered_table(ancestors)
        if table is None or self.ctx.is_new_table(table):
            return
        if node.subtype == AlterTableType.AT_ValidateConstraint:
            check = self.ctx.catalog.checks.get((relname(table), cmd_name(node)))
            if (
                check is not None
                and self.ctx.in_transaction
                and check.tx == self.ctx.tx
                and not check.validated
            ):
                self.report(
                    table,
                    f"Validating {node.name} in the transaction that added it keeps the lock ADD CONSTRAINT "
                    f"took on {qualified(table)} (ACCESS EXCLUSIVE for a CHECK) for the whole scan.",
                    "Move VALIDATE CONSTRAINT to the next migration.",
                )

    def visit_Constraint(self, ancestors: Ancestor, node: ast.Constraint) -> None:
        if node.contype != ConstrType.CONSTR_CHECK or node.skip_validation:
            return
        cmd = enclosing_cmd(ancestors)
        table = altered_table(ancestors)
        if cmd is None or cmd.subtype != AlterTableType.AT_AddConstraint or table is None:
            return
        if self.ctx.is_new_table(table):
            return
        self.report(
            node,
            f"Adding CHECK constraint {node.conname or ''} scans all of {qualified(table)} while "
            "blocking its reads and writes.",
            "Add it with NOT VALID, then VALIDATE CONSTRAINT in a later migration.",
        )
