"""enum-value-in-transaction: ALTER TYPE ... ADD VALUE where the transaction cannot use it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pglast import ast
from pglast.visitors import Ancestor

from executor.headers import line_and_column
from validator.safety.literals import sql_function_body, string_literals
from validator.safety.nodes import last_name, manual
from validator.safety.rule import Example, Rule, RuleDocs

if TYPE_CHECKING:  # pragma: no cover
    from validator.parsed import Statement


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
        Example(
            "-- AlterEnum\nALTER TYPE \"OrderStatus\" ADD VALUE 'CANCELLED';\n\n"
            "-- AlterEnum\nALTER TYPE \"PaymentStatus\" ADD VALUE 'CANCELLED';",
            False,
            title="another enum type gets the same label (Prisma writes one ALTER TYPE per enum)",
        ),
        Example(
            "ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'shipped';\n"
            "ALTER TYPE order_status ADD VALUE 'partially_refunded' BEFORE 'refunded';",
            False,
            title="placing a value next to one added just before is not a use",
        ),
        Example(
            {
                "V1__payments.sql": "CREATE TYPE payment_status AS ENUM ('pending', 'settled');\n"
                "CREATE TABLE payments (id bigint PRIMARY KEY, status payment_status, note text);",
                "V2__disputes.sql": "ALTER TYPE payment_status ADD VALUE 'disputed' AFTER 'settled';\n"
                "UPDATE payments SET note = 'disputed' WHERE note = 'chargeback requested';",
            },
            False,
            title="the same word in a text column",
        ),
        Example(
            "ALTER TYPE order_status ADD VALUE 'archived';\n"
            "CREATE INDEX orders_archived_idx ON orders (created_at)\n"
            "    WHERE status = 'archived'::order_status;",
            True,
            title="a partial index compares with the new value",
        ),
        Example(
            "ALTER TYPE order_status ADD VALUE 'archived';\n"
            "CREATE FUNCTION archived_status() RETURNS order_status LANGUAGE sql\n"
            "    AS $$ SELECT 'archived'::order_status $$;",
            True,
            title="a LANGUAGE sql body is checked when the function is created",
        ),
    )
    cases = (
        Example(
            "ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded' AFTER 'paid';\n"
            "INSERT INTO order_status_labels (status, label) VALUES ('refunded', 'Refunded');",
            True,
            title="a label table filled in the same migration (its column type is not known: assumed the "
            "enum)",
        ),
    )

    def visit_AlterEnumStmt(self, ancestors: Ancestor, node: ast.AlterEnumStmt) -> None:
        if node.oldVal or not node.newVal or not self.ctx.in_transaction:
            return  # RENAME VALUE, or autocommit
        enum = last_name(node.typeName, "AlterEnumStmt.typeName")
        if enum in self.ctx.catalog.new_types:
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
        for later in self.ctx.later_statements_in_same_transaction():
            line = self._use_in(later, enum, node.newVal)
            if line is not None:
                self.report(
                    node,
                    f"The new value {_literal(node.newVal)} of enum {enum} is used later in the same "
                    f"transaction (line {line}), which fails with 'unsafe use of new value'.",
                    "Move the statements that use the new value to the next migration.",
                )
                return

    def _use_in(self, stmt: Statement, enum: str, label: str) -> int | None:
        """The line where ``stmt`` uses ``label`` as a value of ``enum`` (or might: a literal whose
        type cannot be told counts), else None.  The same label given to another enum type, a
        literal cast to another type or compared with a column of another type, and the neighbour
        of a later ``ADD VALUE ... AFTER`` are not uses."""
        catalog = self.ctx.catalog
        for use in string_literals(stmt.node, label, catalog):
            if not use.types or enum in use.types:
                return self._line(use.location, stmt)
        body = sql_function_body(stmt.node)
        if body is not None:  # checked when created (check_function_bodies): its values are used now
            for inner in body:
                if any(not u.types or enum in u.types for u in string_literals(inner, label, catalog)):
                    return stmt.line
        if isinstance(stmt.node, ast.DoStmt) and _literal(label) in stmt.text:
            return stmt.line  # a DO block runs at once
        return None

    def _line(self, location: int | None, stmt: Statement) -> int:
        if location is None or location < stmt.start:
            return stmt.line
        return line_and_column(self.ctx.file.text, location)[0]
