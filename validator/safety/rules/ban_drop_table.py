"""ban-drop-table: DROP TABLE breaks the running application and loses data."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ObjectType
from pglast.visitors import Ancestor

from validator.safety.nodes import manual
from validator.safety.rule import Example, Rule, RuleDocs


class BanDropTable(Rule):
    id = "ban-drop-table"
    category = "breaking"
    destructive = True
    squawk = "ban-drop-table"
    summary = "Dropping a table breaks running clients and destroys its data."
    docs = RuleDocs(
        why="Running code that still uses the table fails, and the data is gone: a rollback of the "
        "application cannot bring it back.",
        lock="ACCESS EXCLUSIVE on the table (and on tables referencing it with CASCADE).",
        anti_pattern="DROP TABLE legacy_sessions;",
        best_practice="-- after a release that no longer uses it, with a backup:\n"
        "-- schemagate:ignore ban-drop-table -- unused since release 4.2, archived to S3\n"
        "DROP TABLE legacy_sessions;",
        manual=manual("sql-droptable"),
    )
    examples = (
        Example("DROP TABLE legacy_sessions;", True),
        Example(
            "CREATE TABLE tmp_import (line text);\nDROP TABLE tmp_import;",
            False,
            title="a table created in the same file",
        ),
    )
    cases = (
        Example('DROP TABLE "_prisma_migrations_backup";', True),
        Example("DROP TABLE IF EXISTS public.legacy_sessions CASCADE;", True),
        Example("DROP TABLE import_rows, import_batches;", True),
        Example(
            "CREATE TABLE tmp_a (id bigint);\nDROP TABLE tmp_a, legacy_sessions;",
            True,
            title="one of the tables is old",
        ),
        Example("DROP VIEW legacy_sessions_view;", False, title="see ban-drop-object"),
        Example("TRUNCATE import_rows;", False),
        Example(
            "CREATE TEMP TABLE batch_ids AS SELECT id FROM orders WHERE total IS NULL;\n"
            "UPDATE orders SET total = 0 WHERE id IN (SELECT id FROM batch_ids);\nDROP TABLE batch_ids;",
            False,
        ),
        Example(
            "DROP TABLE IF EXISTS pg_temp.batch_ids;", True, title="schemagate does not know it is temporary"
        ),
        Example("CREATE UNLOGGED TABLE tmp_rows (line text);\nDROP TABLE IF EXISTS tmp_rows;", False),
    )

    def visit_DropStmt(self, ancestors: Ancestor, node: ast.DropStmt) -> None:
        if node.removeType != ObjectType.OBJECT_TABLE:
            return
        names = [".".join(p.sval for p in obj) for obj in node.objects or ()]
        old = [
            n
            for n, obj in zip(names, node.objects or (), strict=True)
            if not self.ctx.is_new_table(obj[-1].sval)
        ]
        if old:
            self.report(
                node,
                f"Dropping table {', '.join(old)} breaks running code that uses it and destroys its data.",
                "Expand/contract: release code that no longer uses the table first, then drop it with a "
                "suppression "
                "giving the release (and where the data was archived).",
            )
