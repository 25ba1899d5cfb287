"""require-enum-value-ordering: ADD VALUE without BEFORE/AFTER."""

from __future__ import annotations

from pglast import ast
from pglast.visitors import Ancestor

from validator.safety.nodes import last_name, manual
from validator.safety.rule import Example, Rule, RuleDocs


class RequireEnumValueOrdering(Rule):
    id = "require-enum-value-ordering"
    category = "robustness"
    squawk = "require-enum-value-ordering"
    severity = "warning"
    summary = "Say where a new enum value goes (BEFORE/AFTER); enums sort by position, not by name."
    docs = RuleDocs(
        why="Enum values compare and sort in declaration order: ORDER BY status, status > 'paid' and "
        "min()/max() all use it.  ADD VALUE without BEFORE or AFTER appends the value at the end, which "
        "is often not where it belongs ('refunded' after 'archived'), and queries comparing statuses "
        "then return the wrong rows.",
        lock="a brief lock on the type; no table is scanned or rewritten.",
        anti_pattern="ALTER TYPE order_status ADD VALUE 'refunded';",
        best_practice="ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'refunded' AFTER 'paid';",
        manual=manual("sql-altertype"),
    )
    examples = (
        Example("ALTER TYPE order_status ADD VALUE 'refunded';", True),
        Example("ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'paid';", False),
    )
    cases = (
        Example("ALTER TYPE \"Role\" ADD VALUE 'MODERATOR';", True),
        Example("ALTER TYPE order_status ADD VALUE IF NOT EXISTS 'on_hold';", True),
        Example("ALTER TYPE public.plan ADD VALUE 'enterprise';", True),
        Example("ALTER TYPE priority ADD VALUE 'urgent';", True),
        Example("ALTER TYPE order_status ADD VALUE 'on_hold' BEFORE 'paid';", False),
        Example("ALTER TYPE order_status RENAME VALUE 'canceled' TO 'cancelled';", False),
        Example("CREATE TYPE priority AS ENUM ('low', 'normal', 'high');", False),
        Example("ALTER TYPE priority ADD VALUE IF NOT EXISTS 'urgent' AFTER 'high';", False),
    )

    def visit_AlterEnumStmt(self, ancestors: Ancestor, node: ast.AlterEnumStmt) -> None:
        if node.oldVal or not node.newVal or node.newValNeighbor:
            return
        enum = last_name(node.typeName, "AlterEnumStmt.typeName")
        self.report(
            node,
            f"'{node.newVal}' is appended at the end of {enum}, so it sorts and "
            "compares after every existing value.",
            "Add BEFORE '<value>' or AFTER '<value>' to put it where it belongs (AFTER the current "
            "last value if the end is intended).",
        )
