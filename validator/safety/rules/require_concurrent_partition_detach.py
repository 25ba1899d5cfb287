"""require-concurrent-partition-detach: ALTER TABLE ... DETACH PARTITION without CONCURRENTLY."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType
from pglast.visitors import Ancestor

from validator.safety.nodes import altered_table, manual, qualified
from validator.safety.rule import Example, Rule, RuleDocs


class RequireConcurrentPartitionDetach(Rule):
    id = "require-concurrent-partition-detach"
    category = "locking"
    squawk = "require-concurrent-partition-detach"
    summary = "Detach partitions with DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+)."
    docs = RuleDocs(
        why="A plain DETACH PARTITION takes an ACCESS EXCLUSIVE lock on the partitioned parent, so every "
        "query on any partition waits (and queues behind running queries) while it detaches.",
        lock="ACCESS EXCLUSIVE on the parent table (SHARE UPDATE EXCLUSIVE with CONCURRENTLY).",
        anti_pattern="ALTER TABLE events DETACH PARTITION events_2019;",
        best_practice="-- in its own non-transactional migration (PostgreSQL 14+)\n"
        "ALTER TABLE events DETACH PARTITION events_2019 CONCURRENTLY;",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-DETACH-PARTITION"),
    )
    examples = (
        Example("ALTER TABLE events DETACH PARTITION events_2019;", True),
        Example("ALTER TABLE events DETACH PARTITION events_2019 CONCURRENTLY;", False),
        Example(
            "ALTER TABLE events DETACH PARTITION events_2019;",
            True,
            target_postgres=13,
            title="PostgreSQL 13 has no CONCURRENTLY: still reported, with different advice",
        ),
    )
    cases = (
        Example("ALTER TABLE measurements DETACH PARTITION measurements_y2020m01;", True),
        Example("ALTER TABLE public.events DETACH PARTITION public.events_2018;", True),
        Example("ALTER TABLE ONLY events DETACH PARTITION events_default;", True),
        Example(
            "ALTER TABLE events DETACH PARTITION events_2019 FINALIZE;",
            False,
            title="completes a CONCURRENTLY detach",
        ),
        Example(
            "ALTER TABLE events ATTACH PARTITION events_2025 FOR VALUES FROM ('2025-01-01') TO "
            "('2026-01-01');",
            False,
        ),
        Example(
            "CREATE TABLE events (id bigint, at date) PARTITION BY RANGE (at);\n"
            "CREATE TABLE events_2019 PARTITION OF events FOR VALUES FROM ('2019-01-01') TO ('2020-01-01');\n"
            "ALTER TABLE events DETACH PARTITION events_2019;",
            False,
        ),
        Example(
            "ALTER TABLE measurements DETACH PARTITION measurements_y2020m01 CONCURRENTLY;",
            False,
            transactional=False,
        ),
    )

    def visit_AlterTableCmd(self, ancestors: Ancestor, node: ast.AlterTableCmd) -> None:
        if node.subtype != AlterTableType.AT_DetachPartition or not isinstance(node.def_, ast.PartitionCmd):
            return
        parent = altered_table(ancestors)
        if node.def_.concurrent or self.ctx.is_new_table(parent):
            return
        help = (
            "Use DETACH PARTITION ... CONCURRENTLY in a migration of its own."
            if self.ctx.target_postgres >= 14
            else "DETACH ... CONCURRENTLY needs PostgreSQL 14; on older servers schedule the detach "
            "in a quiet window with a short lock_timeout."
        )
        self.report(
            node.def_.name,
            f"Detaching {qualified(node.def_.name)} locks {qualified(parent)} and all "
            "its partitions against reads and writes.",
            help,
        )
