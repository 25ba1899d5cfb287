"""ban-truncate-cascade: TRUNCATE ... CASCADE empties every referencing table too."""

from __future__ import annotations

from pglast import ast
from pglast.enums import DropBehavior
from pglast.visitors import Ancestor

from validator.safety.nodes import manual, qualified
from validator.safety.rule import Example, Rule, RuleDocs


class BanTruncateCascade(Rule):
    id = "ban-truncate-cascade"
    category = "breaking"
    destructive = True
    squawk = "ban-truncate-cascade"
    summary = "TRUNCATE ... CASCADE silently empties every table that references the truncated ones."
    docs = RuleDocs(
        why="CASCADE truncates all tables with foreign keys to the named tables, and their referencing "
        "tables in turn, so one statement can empty much of the database.",
        lock="ACCESS EXCLUSIVE on every truncated table.",
        anti_pattern="TRUNCATE import_batches CASCADE;",
        best_practice="-- name every table to empty, so the reviewer sees them\n"
        "TRUNCATE import_rows, import_batches;",
        manual=manual("sql-truncate"),
    )
    examples = (
        Example("TRUNCATE import_batches CASCADE;", True),
        Example("TRUNCATE import_rows, import_batches;", False),
    )
    cases = (
        Example("TRUNCATE TABLE public.accounts CASCADE;", True),
        Example("TRUNCATE ONLY staging_orders RESTART IDENTITY CASCADE;", True),
        Example("TRUNCATE import_rows, import_batches CASCADE;", True),
        Example('TRUNCATE "User" CASCADE;', True),
        Example("TRUNCATE import_rows RESTART IDENTITY;", False),
        Example("TRUNCATE TABLE import_rows RESTRICT;", False),
        Example("DELETE FROM import_rows WHERE batch_id = 7;", False),
        Example("DROP TABLE import_rows CASCADE;", False, title="see ban-drop-table"),
    )

    def visit_TruncateStmt(self, ancestors: Ancestor, node: ast.TruncateStmt) -> None:
        if node.behavior == DropBehavior.DROP_CASCADE:
            tables = ", ".join(qualified(r) for r in node.relations or ())
            self.report(
                node,
                f"TRUNCATE {tables} CASCADE also empties every table that references them.",
                "List every table to empty explicitly and drop CASCADE.",
            )
