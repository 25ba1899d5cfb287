"""ban-drop-database: DROP DATABASE in a migration."""

from __future__ import annotations

from pglast import ast
from pglast.visitors import Ancestor

from validator.safety.nodes import manual
from validator.safety.rule import Example, Rule, RuleDocs


class BanDropDatabase(Rule):
    id = "ban-drop-database"
    category = "breaking"
    destructive = True
    squawk = "ban-drop-database"
    summary = "A migration must not drop a database."
    docs = RuleDocs(
        why="Dropping a database destroys all of its data irrecoverably and terminates (or waits for) every "
        "connection to it; it is never a schema change.",
        lock="exclusive access to the whole database.",
        anti_pattern="DROP DATABASE analytics;",
        best_practice="-- drop databases by hand, with a backup, outside the migration pipeline",
        manual=manual("sql-dropdatabase"),
    )
    examples = (
        Example("DROP DATABASE analytics;", True),
        Example("DROP SCHEMA IF EXISTS scratch;", False),
    )
    cases = (
        Example("DROP DATABASE IF EXISTS analytics;", True, transactional=False),
        Example('DROP DATABASE "staging_copy" WITH (FORCE);', True, transactional=False),
        Example("DROP DATABASE reporting;", True, transactional=False),
        Example("-- clean up the old tenant\nDROP DATABASE tenant_42;", True, transactional=False),
        Example("CREATE DATABASE analytics;", False, transactional=False),
        Example("ALTER DATABASE analytics SET timezone TO 'UTC';", False),
        Example("DROP TABLE analytics_events;", False),
        Example("DROP OWNED BY analytics_reader;", False),
    )

    def visit_DropdbStmt(self, ancestors: Ancestor, node: ast.DropdbStmt) -> None:
        self.report(
            node,
            f"Dropping database {node.dbname} destroys all of its data.",
            "Remove the statement; drop databases by hand, with a backup, outside migrations.",
        )
