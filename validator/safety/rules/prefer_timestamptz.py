"""prefer-timestamptz: timestamp without time zone."""

from __future__ import annotations

from pglast import ast
from pglast.visitors import Ancestor

from validator.safety.catalog import type_name
from validator.safety.nodes import column_name, manual, table_column_context
from validator.safety.rule import Example, Rule, RuleDocs


class PreferTimestamptz(Rule):
    id = "prefer-timestamptz"
    category = "style"
    squawk = "prefer-timestamptz"
    severity = "warning"
    summary = "Use timestamptz instead of timestamp without time zone."
    docs = RuleDocs(
        why="timestamp stores a wall-clock time without a zone: values written by servers or sessions in "
        "different time zones (or across a DST change) silently mean different instants, and "
        "converting the column later rewrites the table.",
        lock="none now; converting later takes ACCESS EXCLUSIVE (a rewrite unless the zone is UTC, 12+).",
        anti_pattern="CREATE TABLE events (happened_at timestamp NOT NULL);",
        best_practice="CREATE TABLE events (happened_at timestamptz NOT NULL);",
        manual=manual("datatype-datetime"),
    )
    examples = (
        Example("CREATE TABLE events (happened_at timestamp NOT NULL);", True),
        Example("ALTER TABLE events ADD COLUMN seen_at timestamp(3) without time zone;", True),
        Example("CREATE TABLE events (happened_at timestamptz NOT NULL);", False),
    )
    cases = (
        Example(
            'CREATE TABLE "Post" ("id" TEXT NOT NULL, "createdAt" TIMESTAMP(3) NOT NULL DEFAULT '
            "CURRENT_TIMESTAMP);",
            True,
        ),
        Example("CREATE TABLE schema_changes (applied_at timestamp without time zone DEFAULT now());", True),
        Example("ALTER TABLE users ALTER COLUMN last_login_at TYPE timestamp;", True),
        Example("CREATE TABLE events (id bigint, occurred_at timestamptz NOT NULL, day date);", False),
        Example("CREATE TABLE t (at timestamp with time zone);", False),
        Example("CREATE TABLE shifts (starts time, ends time);", False),
        Example("SELECT now()::timestamp;", False),
    )

    def visit_ColumnDef(self, ancestors: Ancestor, node: ast.ColumnDef) -> None:
        if table_column_context(ancestors) is None or node.typeName is None:
            return
        if type_name(node.typeName) == "timestamp":
            self.report(
                node.typeName,
                f"Column {column_name(ancestors, node)} is timestamp without time zone: "
                "its values do not say which instant they mean.",
                "Use timestamptz.",
            )
