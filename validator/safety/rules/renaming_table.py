"""renaming-table: RENAME TO on a table breaks the running application."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ObjectType
from pglast.visitors import Ancestor

from validator.safety.nodes import manual, qualified
from validator.safety.rule import Example, Rule, RuleDocs


class RenamingTable(Rule):
    id = "renaming-table"
    category = "breaking"
    squawk = "renaming-table"
    summary = "Renaming a table breaks every running client that uses the old name."
    docs = RuleDocs(
        why="Queries of the application version still running use the old name and fail from the moment "
        "the rename commits.",
        lock="ACCESS EXCLUSIVE on the table (brief).",
        anti_pattern="ALTER TABLE customer RENAME TO customers;",
        best_practice="-- rename, and keep the old name working until no client uses it\n"
        "ALTER TABLE customer RENAME TO customers;\n"
        "CREATE VIEW customer AS SELECT * FROM customers;",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-DESC-RENAME"),
    )
    examples = (
        Example("ALTER TABLE customer RENAME TO customers;", True),
        Example("CREATE TABLE customer (id bigint);\nALTER TABLE customer RENAME TO customers;", False),
    )
    cases = (
        Example('ALTER TABLE "Post" RENAME TO "Article";', True),
        Example("ALTER TABLE IF EXISTS public.customer RENAME TO customers;", True),
        Example("ALTER TABLE blog_entry RENAME TO blog_post;", True),
        Example("ALTER TABLE events_2019 RENAME TO events_2019_archived;", True),
        Example("ALTER TABLE users RENAME COLUMN mail TO email;", False),
        Example("ALTER INDEX users_mail_idx RENAME TO users_email_idx;", False, title="see renaming-object"),
        Example(
            "CREATE TABLE tmp_import (line text);\nALTER TABLE tmp_import RENAME TO imports;",
            False,
        ),
        Example("ALTER VIEW active_users RENAME TO active_accounts;", False),
    )

    def visit_RenameStmt(self, ancestors: Ancestor, node: ast.RenameStmt) -> None:
        if node.renameType != ObjectType.OBJECT_TABLE or self.ctx.is_new_table(node.relation):
            return
        self.report(
            node.relation,
            f"Renaming {qualified(node.relation)} to {node.newname} breaks every running "
            "query that uses the old name.",
            "Expand/contract: keep the old name working (an updatable view with the old name) until "
            "every client "
            "uses the new one, or suppress this with the reason why no client uses the table.",
        )
