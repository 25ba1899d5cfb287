"""require-concurrent-refresh: REFRESH MATERIALIZED VIEW without CONCURRENTLY."""

from __future__ import annotations

from pglast import ast
from pglast.visitors import Ancestor

from validator.safety.nodes import manual, qualified
from validator.safety.rule import Example, Rule, RuleDocs


class RequireConcurrentRefresh(Rule):
    id = "require-concurrent-refresh"
    category = "locking"
    summary = "Refresh populated materialized views with REFRESH MATERIALIZED VIEW CONCURRENTLY."
    docs = RuleDocs(
        why="A plain REFRESH MATERIALIZED VIEW holds an ACCESS EXCLUSIVE lock on the view while its query "
        "runs again, so every SELECT from the view waits for the whole refresh.  CONCURRENTLY (it needs "
        "a unique index on the view) lets reads continue and swaps in the new rows at the end.",
        lock="ACCESS EXCLUSIVE on the materialized view (EXCLUSIVE with CONCURRENTLY: reads continue).",
        anti_pattern="REFRESH MATERIALIZED VIEW invoice_totals;",
        best_practice="CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS invoice_totals_key\n"
        "    ON invoice_totals (invoice_id);\n"
        "-- next migration\nREFRESH MATERIALIZED VIEW CONCURRENTLY invoice_totals;",
        manual=manual("sql-refreshmaterializedview"),
    )
    examples = (
        Example("REFRESH MATERIALIZED VIEW invoice_totals;", True),
        Example("REFRESH MATERIALIZED VIEW CONCURRENTLY invoice_totals;", False),
        Example(
            "CREATE MATERIALIZED VIEW invoice_totals AS SELECT 1 AS n WITH NO DATA;\n"
            "REFRESH MATERIALIZED VIEW invoice_totals;",
            False,
            title="a view created in the same file: nobody reads it yet",
        ),
    )
    cases = (
        Example("REFRESH MATERIALIZED VIEW reporting.monthly_revenue;", True),
        Example("REFRESH MATERIALIZED VIEW monthly_revenue WITH DATA;", True),
        Example("-- pick up the new columns\nREFRESH MATERIALIZED VIEW search_index;", True),
        Example("REFRESH MATERIALIZED VIEW CONCURRENTLY reporting.monthly_revenue;", False),
        Example(
            "REFRESH MATERIALIZED VIEW monthly_revenue WITH NO DATA;", False, title="empties it instantly"
        ),
        Example(
            "CREATE MATERIALIZED VIEW search_index AS SELECT id, title FROM documents;\n"
            "CREATE UNIQUE INDEX search_index_id ON search_index (id);\n"
            "REFRESH MATERIALIZED VIEW search_index;",
            False,
        ),
        Example("REFRESH MATERIALIZED VIEW public.search_index WITH DATA;", True),
    )

    def visit_RefreshMatViewStmt(self, ancestors: Ancestor, node: ast.RefreshMatViewStmt) -> None:
        if node.concurrent or node.skipData or self.ctx.is_new_table(node.relation):
            return
        self.report(
            node.relation,
            f"Refreshing {qualified(node.relation)} blocks every read of it until the "
            "view's query has run again.",
            "Use REFRESH MATERIALIZED VIEW CONCURRENTLY (add a unique index on the view first).",
        )
