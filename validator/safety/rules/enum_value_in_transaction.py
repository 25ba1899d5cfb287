"""enum-value-in-transaction: ALTER TYPE ... ADD VALUE where the transaction cannot use it."""

from __future__ import annotations

from typing import Any

from validator.safety.nodes import manual
from validator.safety.rule import Example, Rule, RuleDocs


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class EnumValueInTransaction(Rule):
    id = "enum-value-in-transaction"
    category = "breaking"
    summary = (
        "A new enum value cannot be used in the transaction that adds it (nor added in one before PG 12)."
    )
    docs = RuleDocs(
        why="Before PostgreSQL 12, ALTER TYPE ... ADD VALUE refuses to run inside a transaction block.  "
        "From 12 it may, but the new value cannot be used until the transaction commits: a later "
        "statement of the same migration that inserts or compares with it fails with "
        "'unsafe use of new value'.",
        lock="none beyond the statement: the migration fails.",
        anti_pattern="ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'paid';\n"
        "UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;",
        best_practice="-- V10: add the value\n"
        "ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded' AFTER 'paid';\n"
        "-- V11: use it\nUPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;",
        manual=manual("sql-altertype"),
    )
    examples = (
        Example(
            "ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'paid';\n"
            "UPDATE orders SET status = 'refunded' WHERE refunded_at IS NOT NULL;",
            True,
        ),
        Example("ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'paid';", False),
        Example(
            "ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'paid';",
            True,
            target_postgres=11,
            title="before PostgreSQL 12 ADD VALUE cannot run in a transaction at all",
        ),
        Example(
            "CREATE TYPE order_status AS ENUM ('new', 'paid');\n"
            "ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'paid';",
            False,
            title="a type created in the same transaction",
        ),
    )

    def visit_AlterEnumStmt(self, ancestors: Any, node: Any) -> None:
        if node.oldVal or not node.newVal or not self.ctx.in_transaction:
            return  # RENAME VALUE, or autocommit
        if node.typeName[-1].sval in self.ctx.catalog.new_types:
            return  # PostgreSQL allows using values of a type created in the same transaction
        if self.ctx.target_postgres < 12:
            self.report(
                node,
                f"ALTER TYPE ... ADD VALUE {_literal(node.newVal)} cannot run inside a transaction "
                "block before PostgreSQL 12: the migration fails.",
                "Put the statement in a migration of its own outside a transaction (no BEGIN; "
                "schemagate runs it with autocommit).",
            )
            return
        needle = _literal(node.newVal)
        for later in self.ctx.later_statements_in_same_transaction():
            if needle in later.text:
                self.report(
                    node,
                    f"The new enum value {needle} is used later in the same transaction "
                    f"(line {later.line}), which fails with 'unsafe use of new value'.",
                    "Move the statements that use the new value to the next migration.",
                )
                return
