"""ban-drop-column: DROP COLUMN breaks the running application."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType, ObjectType
from pglast.visitors import Ancestor

from validator.safety.nodes import altered_table, cmd_name, manual, qualified
from validator.safety.rule import Example, Rule, RuleDocs


class BanDropColumn(Rule):
    id = "ban-drop-column"
    category = "breaking"
    destructive = True
    squawk = "ban-drop-column"
    summary = "Dropping a column breaks running clients that still select or insert it."
    docs = RuleDocs(
        why="The application version running during the deploy may still read or write the column "
        "(including `SELECT *` mapped by an ORM); its queries fail once the drop commits.  The data "
        "is gone, so rolling back the application does not help.",
        lock="ACCESS EXCLUSIVE on the table (brief; the space is reclaimed later).",
        anti_pattern="ALTER TABLE users DROP COLUMN legacy_flag;",
        best_practice="-- 1. release code that no longer uses the column; 2. then drop it, saying so:\n"
        "-- schemagate:ignore ban-drop-column -- unused since release 4.2\n"
        "ALTER TABLE users DROP COLUMN legacy_flag;",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-DESC-DROP-COLUMN"),
    )
    examples = (
        Example("ALTER TABLE users DROP COLUMN legacy_flag;", True),
        Example(
            "-- schemagate:ignore ban-drop-column -- unused since release 4.2\n"
            "ALTER TABLE users DROP COLUMN legacy_flag;",
            False,
            title="a reasoned suppression",
        ),
        Example(
            "CREATE TABLE users (id bigint, legacy_flag boolean);\n"
            "ALTER TABLE users DROP COLUMN legacy_flag;",
            False,
        ),
    )
    cases = (
        Example('ALTER TABLE "User" DROP COLUMN "legacyId";', True),
        Example("ALTER TABLE ONLY public.orders DROP COLUMN IF EXISTS legacy_status;", True),
        Example("ALTER TABLE invoices DROP COLUMN pdf_blob, DROP COLUMN pdf_generated_at;", True),
        Example("ALTER TABLE users DROP COLUMN old_email CASCADE;", True),
        Example("ALTER TYPE address DROP ATTRIBUTE zip;", True, title="a composite type's attribute"),
        Example("ALTER TABLE users DROP CONSTRAINT users_old_email_key;", False),
        Example("ALTER TABLE users ADD COLUMN IF NOT EXISTS locale text;", False),
        Example("ALTER TABLE users ALTER COLUMN legacy_flag SET DEFAULT false;", False),
        Example(
            "DO $$ BEGIN\n    EXECUTE 'ALTER TABLE users DROP COLUMN legacy_flag';\nEND $$;",
            True,
            title="EXECUTE of a literal",
        ),
        Example(
            "DO $$ BEGIN\n    EXECUTE format('ALTER TABLE %I DROP COLUMN legacy_flag', "
            "current_setting('app.table'));\n"
            "END $$;",
            False,
            title="EXECUTE of a computed string: not known before run time",
        ),
    )

    def visit_AlterTableCmd(self, ancestors: Ancestor, node: ast.AlterTableCmd) -> None:
        if node.subtype != AlterTableType.AT_DropColumn:
            return
        alter = ancestors.find_nearest(ast.AlterTableStmt)
        if alter is not None and alter.node.objtype == ObjectType.OBJECT_TYPE:
            self._attribute(alter.node.relation, cmd_name(node))
            return
        table = altered_table(ancestors)
        if table is None or self.ctx.is_new_table(table):
            return
        self.report(
            table,
            f"Dropping {qualified(table)}.{node.name} breaks running code that still reads or "
            "writes it, and the data cannot be restored by a rollback.",
            "Expand/contract: release code that no longer uses the column first, then drop it with a "
            "suppression "
            "that names the release.",
        )

    def _attribute(self, type_name: ast.RangeVar | None, attribute: str) -> None:
        if type_name is None or type_name.relname in self.ctx.catalog.new_types:
            return
        self.report(
            type_name,
            f"Dropping attribute {attribute} of type {qualified(type_name)} breaks running code that "
            f"reads or "
            "writes it, and its values in every column of that type are lost.",
            "Release code that no longer uses the attribute first, then drop it with a suppression "
            "that names the release.",
        )
