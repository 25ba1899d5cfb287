"""require-concurrent-reindex: REINDEX without CONCURRENTLY."""

from __future__ import annotations

from pglast import ast
from pglast.visitors import Ancestor

from validator.safety.nodes import has_reindex_concurrently, manual
from validator.safety.rule import Example, Rule, RuleDocs


class RequireConcurrentReindex(Rule):
    id = "require-concurrent-reindex"
    category = "locking"
    squawk = "require-concurrent-reindex"
    summary = "Rebuild indexes with REINDEX CONCURRENTLY (PostgreSQL 12+)."
    docs = RuleDocs(
        why="A plain REINDEX blocks writes to the table and takes an ACCESS EXCLUSIVE lock on the index, "
        "so every query that would use the index waits until it is rebuilt.",
        lock="SHARE on the table and ACCESS EXCLUSIVE on the index.",
        anti_pattern="REINDEX INDEX orders_customer_idx;",
        best_practice="-- in its own non-transactional migration (PostgreSQL 12+)\n"
        "REINDEX INDEX CONCURRENTLY orders_customer_idx;",
        manual=manual("sql-reindex", "SQL-REINDEX-CONCURRENTLY"),
    )
    examples = (
        Example("REINDEX INDEX orders_customer_idx;", True),
        Example("REINDEX TABLE CONCURRENTLY orders;", False),
    )
    cases = (
        Example("REINDEX TABLE orders;", True),
        Example("REINDEX (VERBOSE) INDEX orders_customer_idx;", True),
        Example("REINDEX SCHEMA billing;", True, transactional=False),
        Example(
            "REINDEX INDEX orders_customer_idx;",
            True,
            target_postgres=11,
            title="before PostgreSQL 12 the advice is a new index built concurrently",
        ),
        Example("REINDEX INDEX CONCURRENTLY orders_customer_idx;", False, transactional=False),
        Example("REINDEX (CONCURRENTLY, VERBOSE) TABLE orders;", False, transactional=False),
        Example("REINDEX SCHEMA CONCURRENTLY billing;", False, transactional=False),
        Example("CREATE INDEX CONCURRENTLY orders_customer_idx_new ON orders (customer_id);", False),
    )

    def visit_ReindexStmt(self, ancestors: Ancestor, node: ast.ReindexStmt) -> None:
        if has_reindex_concurrently(node):
            return
        help = (
            "Use REINDEX ... CONCURRENTLY in a migration of its own."
            if self.ctx.target_postgres >= 12
            else "REINDEX CONCURRENTLY needs PostgreSQL 12; before that, build a new index "
            "concurrently and drop the old one concurrently."
        )
        self.report(
            node,
            "REINDEX blocks writes to the table and queries using the index until the rebuild finishes.",
            help,
        )
