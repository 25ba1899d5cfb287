"""require-concurrent-index-deletion: DROP INDEX without CONCURRENTLY."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ObjectType
from pglast.visitors import Ancestor

from validator.safety.nodes import manual
from validator.safety.rule import Example, Rule, RuleDocs


class RequireConcurrentIndexDeletion(Rule):
    id = "require-concurrent-index-deletion"
    category = "locking"
    squawk = "require-concurrent-index-deletion"
    summary = "Drop indexes with DROP INDEX CONCURRENTLY."
    docs = RuleDocs(
        why="DROP INDEX takes an ACCESS EXCLUSIVE lock on the index's table; it waits behind every "
        "running query and, while waiting, blocks all new reads and writes of the table.",
        lock="ACCESS EXCLUSIVE on the table.",
        anti_pattern="DROP INDEX orders_customer_idx;",
        best_practice="-- in its own non-transactional migration\n"
        "DROP INDEX CONCURRENTLY IF EXISTS orders_customer_idx;",
        manual=manual("sql-dropindex"),
    )
    examples = (
        Example("DROP INDEX orders_customer_idx;", True),
        Example("DROP INDEX CONCURRENTLY IF EXISTS orders_customer_idx;", False),
        Example(
            "CREATE TABLE t (a bigint);\nCREATE INDEX t_a_idx ON t (a);\nDROP INDEX t_a_idx;",
            False,
            title="an index created in the same file",
        ),
    )
    cases = (
        Example('DROP INDEX "User_email_key";', True),
        Example("DROP INDEX IF EXISTS index_orders_on_customer_id;", True),
        Example("DROP INDEX public.orders_open_idx, public.orders_closed_idx;", True),
        Example("DROP INDEX orders_customer_idx CASCADE;", True),
        Example(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);", False
        ),
        Example("DROP INDEX CONCURRENTLY orders_customer_idx;", False, transactional=False),
        Example("ALTER TABLE orders DROP CONSTRAINT orders_customer_fk;", False),
    )

    def visit_DropStmt(self, ancestors: Ancestor, node: ast.DropStmt) -> None:
        if node.removeType != ObjectType.OBJECT_INDEX or node.concurrent:
            return
        names = [obj[-1].sval for obj in node.objects or ()]
        old = [n for n in names if n not in self.ctx.catalog.new_indexes]
        if old:
            self.report(
                node,
                f"Dropping index {', '.join(old)} locks its table against reads and writes "
                "while it waits for running queries.",
                "Use DROP INDEX CONCURRENTLY (one index per statement, outside a transaction).",
            )
