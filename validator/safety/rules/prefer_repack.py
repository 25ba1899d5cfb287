"""prefer-repack: VACUUM FULL and CLUSTER rewrite the table under ACCESS EXCLUSIVE."""

from __future__ import annotations

from pglast import ast
from pglast.visitors import Ancestor

from validator.safety.nodes import manual, qualified, sval
from validator.safety.rule import Example, Rule, RuleDocs

REPACK_VERSION = 19  # REPACK (CONCURRENTLY) is built in from PostgreSQL 19


def _full(node: ast.VacuumStmt) -> bool:
    for opt in node.options or ():
        if isinstance(opt, ast.DefElem) and opt.defname == "full":
            arg = opt.arg
            return arg is None or not (
                isinstance(arg, ast.String) and sval(arg, "FULL's value").lower() in ("false", "off", "0")
            )
    return False


class PreferRepack(Rule):
    id = "prefer-repack"
    category = "locking"
    squawk = "prefer-repack"
    summary = (
        "VACUUM FULL and CLUSTER block reads and writes while they rewrite the table; repack it instead."
    )
    docs = RuleDocs(
        why="VACUUM FULL and CLUSTER write a new copy of the table and its indexes while holding an ACCESS "
        "EXCLUSIVE lock: no query reads or writes the table until the copy is done, which on a large "
        "table is minutes to hours.  pg_repack (an extension and its client) rebuilds a table with only "
        "brief locks; PostgreSQL 19 builds this in as REPACK (CONCURRENTLY).",
        lock="ACCESS EXCLUSIVE on the table for the whole rewrite.",
        anti_pattern="VACUUM FULL events;\nCLUSTER events USING events_created_at_idx;",
        best_practice="-- PostgreSQL 19+ (target_postgres = 19), in a non-transactional migration:\n"
        "REPACK (CONCURRENTLY) events;\n"
        "-- before 19: run pg_repack outside the migrations, e.g.\n"
        "-- pg_repack --table=events --order-by=created_at",
        manual=manual("sql-vacuum"),
    )
    examples = (
        Example("VACUUM FULL events;", True, transactional=False),
        Example(
            "CLUSTER events USING events_created_at_idx;",
            True,
            target_postgres=19,
            title="from PostgreSQL 19 the advice is REPACK (CONCURRENTLY)",
        ),
        Example(
            "VACUUM (ANALYZE) events;",
            False,
            transactional=False,
            title="a plain VACUUM takes no strong lock",
        ),
        Example(
            "CREATE TABLE events_2024 (LIKE events INCLUDING ALL);\n"
            "CLUSTER events_2024 USING events_2024_created_at_idx;",
            False,
            title="a table created in the same file is empty",
        ),
    )
    cases = (
        Example("VACUUM (FULL, ANALYZE, VERBOSE) audit_log, sessions;", True, transactional=False),
        Example("VACUUM FULL;", True, transactional=False, title="every table of the database"),
        Example("CLUSTER VERBOSE events_created_at_idx ON events;", True, title="the pre-8.3 spelling"),
        Example("CLUSTER;", True, transactional=False, title="every table clustered before"),
        Example(
            "-- reclaim space after the purge\nVACUUM FULL VERBOSE ANALYZE events;", True, transactional=False
        ),
        Example("VACUUM (FULL false) events;", False, transactional=False),
        Example("VACUUM (FREEZE, ANALYZE) events;", False, transactional=False),
        Example("ANALYZE events;", False),
        Example("ALTER TABLE events CLUSTER ON events_created_at_idx;", False, title="only marks the index"),
        Example("VACUUM FULL pg_temp.import_rows;", False, transactional=False, title="a temporary table"),
    )

    def _report(self, node: object | None, what: str, tables: list[ast.RangeVar]) -> None:
        names = ", ".join(qualified(t) for t in tables) or "every table of the database"
        if self.ctx.target_postgres >= REPACK_VERSION:
            help = "Use REPACK (CONCURRENTLY) in a migration of its own (it cannot run in a transaction)."
        else:
            help = (
                "Rebuild the table with pg_repack outside the migrations (REPACK (CONCURRENTLY) is built in "
                "from PostgreSQL 19), or schedule the statement in a maintenance window."
            )
        self.report(
            node,
            f"{what} rewrites {names} under an ACCESS EXCLUSIVE lock: reads and writes wait until it is "
            f"done.",
            help,
        )

    def _old(self, tables: list[ast.RangeVar]) -> list[ast.RangeVar]:
        return [
            t
            for t in tables
            if not self.ctx.is_new_table(t) and t.relpersistence != "t" and t.schemaname != "pg_temp"
        ]

    def visit_VacuumStmt(self, ancestors: Ancestor, node: ast.VacuumStmt) -> None:
        if not node.is_vacuumcmd or not _full(node):
            return
        tables = [r.relation for r in node.rels or () if isinstance(r, ast.VacuumRelation) and r.relation]
        old = self._old(tables)
        if tables and not old:
            return
        self._report(node, "VACUUM FULL", old)

    def visit_ClusterStmt(self, ancestors: Ancestor, node: ast.ClusterStmt) -> None:
        if node.relation is None:
            self._report(node, "CLUSTER", [])
        elif self._old([node.relation]):
            self._report(node.relation, "CLUSTER", [node.relation])
