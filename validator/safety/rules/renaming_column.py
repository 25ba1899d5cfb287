"""renaming-column: RENAME COLUMN breaks the running application."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ObjectType
from pglast.visitors import Ancestor

from validator.safety.nodes import manual, qualified
from validator.safety.rule import Example, Rule, RuleDocs

# a view's columns are read by clients exactly like a table's
_RELATIONS = (
    ObjectType.OBJECT_TABLE,
    ObjectType.OBJECT_VIEW,
    ObjectType.OBJECT_MATVIEW,
    ObjectType.OBJECT_FOREIGN_TABLE,
)


class RenamingColumn(Rule):
    id = "renaming-column"
    category = "breaking"
    squawk = "renaming-column"
    summary = "Renaming a column breaks every running client that uses the old name."
    docs = RuleDocs(
        why="The application version that is running while the migration is applied still uses the old "
        "name; its queries fail from the moment the rename commits until the new version is deployed.",
        lock="ACCESS EXCLUSIVE on the table (brief).",
        anti_pattern="ALTER TABLE users RENAME COLUMN mail TO email;",
        best_practice="-- expand/contract: add the new column, write both, backfill, switch reads,\n"
        "-- and drop the old column in a later release\n"
        "ALTER TABLE users ADD COLUMN email text;",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-DESC-RENAME"),
    )
    examples = (
        Example("ALTER TABLE users RENAME COLUMN mail TO email;", True),
        Example("ALTER TABLE users ADD COLUMN email text;", False),
        Example("CREATE TABLE users (mail text);\nALTER TABLE users RENAME COLUMN mail TO email;", False),
    )
    cases = (
        Example('ALTER TABLE "User" RENAME COLUMN "name" TO "fullName";', True),
        Example("ALTER TABLE ONLY public.orders RENAME COLUMN total TO total_cents;", True),
        Example("ALTER TABLE IF EXISTS invoices RENAME number TO invoice_number;", True),
        Example("ALTER TABLE events RENAME COLUMN type TO kind;", True),
        Example("ALTER VIEW active_users RENAME COLUMN mail TO email;", True, title="a view's column"),
        Example(
            "ALTER TYPE address RENAME ATTRIBUTE zip TO postal_code;", False, title="see renaming-object"
        ),
        Example("ALTER TABLE users RENAME TO accounts;", False, title="see renaming-table"),
        Example("ALTER TABLE users ADD COLUMN full_name text;\nUPDATE users SET full_name = name;", False),
    )

    def visit_RenameStmt(self, ancestors: Ancestor, node: ast.RenameStmt) -> None:
        if node.renameType != ObjectType.OBJECT_COLUMN or node.relationType not in _RELATIONS:
            return
        if self.ctx.is_new_table(node.relation):
            return
        self.report(
            node.relation,
            f"Renaming {qualified(node.relation)}.{node.subname} to {node.newname} breaks "
            "every running query that uses the old name.",
            "Add a new column and migrate in steps (expand/contract), or deploy code that handles "
            "both names first.",
        )
