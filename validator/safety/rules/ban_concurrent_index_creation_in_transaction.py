"""ban-concurrent-index-creation-in-transaction: CONCURRENTLY inside a transaction block."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType
from pglast.visitors import Ancestor

from validator.safety.nodes import has_reindex_concurrently, manual
from validator.safety.rule import Example, Rule, RuleDocs


class BanConcurrentIndexCreationInTransaction(Rule):
    id = "ban-concurrent-index-creation-in-transaction"
    category = "locking"
    squawk = "ban-concurrent-index-creation-in-transaction"
    summary = "CONCURRENTLY operations cannot run inside a transaction block."
    docs = RuleDocs(
        why="CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY and DETACH PARTITION CONCURRENTLY "
        "refuse to run in a transaction block, so the migration fails at deploy time (after the "
        "statements before it may have taken their locks).",
        lock="none taken: the statement errors out.",
        anti_pattern="BEGIN;\n"
        "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);\nCOMMIT;",
        best_practice="-- a migration holding only this statement; schemagate runs it outside a transaction\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);",
        manual=manual("sql-createindex", "SQL-CREATEINDEX-CONCURRENTLY"),
    )
    examples = (
        Example(
            "BEGIN;\nCREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);\nCOMMIT;", True
        ),
        Example(
            "CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);",
            True,
            transactional=True,
            title="a file the executor runs in one transaction",
        ),
        Example(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);", False
        ),
    )
    cases = (
        Example("DROP INDEX CONCURRENTLY orders_customer_idx;", True, transactional=True),
        Example("REINDEX INDEX CONCURRENTLY orders_customer_idx;", True, transactional=True),
        Example(
            "BEGIN;\nALTER TABLE events DETACH PARTITION events_2019 CONCURRENTLY;\nCOMMIT;",
            True,
        ),
        Example(
            "START TRANSACTION;\nCREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);\nCOMMIT;",
            True,
        ),
        Example("DROP INDEX CONCURRENTLY IF EXISTS orders_customer_idx;", False),
        Example("REINDEX INDEX CONCURRENTLY orders_customer_idx;", False),
        Example("CREATE INDEX orders_customer_idx ON orders (customer_id);", False, title="not concurrent"),
        Example(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS a_idx ON a (x);\nCREATE INDEX CONCURRENTLY IF NOT "
            "EXISTS b_idx ON b (x);",
            False,
            transactional=False,
        ),
    )

    def _check(self, node: object | None, what: str) -> None:
        if self.ctx.in_transaction:
            self.report(
                node,
                f"{what} cannot run inside a transaction block: the migration fails when applied.",
                "Put the statement in a migration of its own without BEGIN/COMMIT; schemagate runs "
                "such a file outside a transaction.",
            )

    def visit_IndexStmt(self, ancestors: Ancestor, node: ast.IndexStmt) -> None:
        if node.concurrent:
            self._check(node, "CREATE INDEX CONCURRENTLY")

    def visit_DropStmt(self, ancestors: Ancestor, node: ast.DropStmt) -> None:
        if node.concurrent:
            self._check(node, "DROP INDEX CONCURRENTLY")

    def visit_ReindexStmt(self, ancestors: Ancestor, node: ast.ReindexStmt) -> None:
        if has_reindex_concurrently(node):
            self._check(node, "REINDEX CONCURRENTLY")

    def visit_AlterTableCmd(self, ancestors: Ancestor, node: ast.AlterTableCmd) -> None:
        if (
            node.subtype == AlterTableType.AT_DetachPartition
            and isinstance(node.def_, ast.PartitionCmd)
            and node.def_.concurrent
        ):
            self._check(node.def_.name, "DETACH PARTITION CONCURRENTLY")
