"""require-concurrent-index-creation: CREATE INDEX on an existing table without CONCURRENTLY."""

from __future__ import annotations

from typing import Any

from validator.safety.nodes import manual, qualified
from validator.safety.rule import Example, Rule, RuleDocs


class RequireConcurrentIndexCreation(Rule):
    id = "require-concurrent-index-creation"
    category = "locking"
    squawk = "require-concurrent-index-creation"
    summary = "Build indexes on existing tables with CREATE INDEX CONCURRENTLY."
    docs = RuleDocs(
        why="A plain CREATE INDEX blocks every INSERT, UPDATE and DELETE on the table until the whole "
        "index is built, which on a large table is minutes to hours of failed writes.",
        lock="SHARE on the table (reads continue, all writes wait).",
        anti_pattern="CREATE INDEX orders_customer_idx ON orders (customer_id);",
        best_practice="-- in its own non-transactional migration\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);",
        manual=manual("sql-createindex", "SQL-CREATEINDEX-CONCURRENTLY"),
    )
    examples = (
        Example("CREATE INDEX orders_customer_idx ON orders (customer_id);", True),
        Example(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);", False
        ),
        Example(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint);\n"
            "CREATE INDEX orders_customer_idx ON orders (customer_id);",
            False,
            title="a table created earlier in the same file is new and empty",
        ),
    )

    def visit_IndexStmt(self, ancestors: Any, node: Any) -> None:
        if node.concurrent or self.ctx.is_new_table(node.relation):
            return
        self.report(
            node.relation,
            f"Building index {node.idxname or '(unnamed)'} on {qualified(node.relation)} "
            "blocks all writes to the table until the index is complete.",
            "Use CREATE INDEX CONCURRENTLY in a migration of its own (it cannot run in a "
            "transaction); on a partitioned table create it ON ONLY the parent, build each "
            "partition's index concurrently and ATTACH it.",
        )
