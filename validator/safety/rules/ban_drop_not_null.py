"""ban-drop-not-null: DROP NOT NULL lets NULLs reach code that assumes there are none."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType
from pglast.visitors import Ancestor

from validator.safety.nodes import altered_table, manual, qualified
from validator.safety.rule import Example, Rule, RuleDocs


class BanDropNotNull(Rule):
    id = "ban-drop-not-null"
    category = "breaking"
    squawk = "ban-drop-not-null"
    severity = "warning"
    summary = "Dropping NOT NULL lets NULLs reach readers that assume a value."
    docs = RuleDocs(
        why="Code (and reports, and other services) written against a NOT NULL column does not expect NULL; "
        "once new writers store NULLs, those readers fail.  It is a contract change, so it is a warning "
        "for the reviewer to confirm.",
        lock="ACCESS EXCLUSIVE on the table (brief, no scan).",
        anti_pattern="ALTER TABLE orders ALTER COLUMN currency DROP NOT NULL;",
        best_practice="-- confirm every reader handles NULL, then say so:\n"
        "-- schemagate:ignore ban-drop-not-null -- readers handle NULL since release 4.2\n"
        "ALTER TABLE orders ALTER COLUMN currency DROP NOT NULL;",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-DESC-SET-DROP-NOT-NULL"),
    )
    examples = (
        Example("ALTER TABLE orders ALTER COLUMN currency DROP NOT NULL;", True),
        Example("ALTER TABLE orders ALTER COLUMN currency SET DEFAULT 'EUR';", False),
    )
    cases = (
        Example('ALTER TABLE "User" ALTER COLUMN "name" DROP NOT NULL;', True),
        Example("ALTER TABLE ONLY public.orders ALTER COLUMN placed_at DROP NOT NULL;", True),
        Example("ALTER TABLE invoices ALTER number DROP NOT NULL, ALTER due_at DROP NOT NULL;", True),
        Example("ALTER TABLE IF EXISTS payments ALTER COLUMN reference DROP NOT NULL;", True),
        Example("ALTER TABLE orders ALTER COLUMN placed_at SET NOT NULL;", False),
        Example(
            "CREATE TABLE drafts (id bigint PRIMARY KEY, body text NOT NULL);\nALTER TABLE drafts ALTER "
            "COLUMN body DROP NOT NULL;",
            False,
        ),
        Example("ALTER DOMAIN email_address DROP NOT NULL;", True, title="every column of the domain"),
        Example("ALTER DOMAIN email_address SET NOT NULL;", False),
        Example(
            "ALTER TABLE orders ALTER COLUMN currency DROP DEFAULT;", False, title="see ban-drop-default"
        ),
    )

    def visit_AlterTableCmd(self, ancestors: Ancestor, node: ast.AlterTableCmd) -> None:
        if node.subtype != AlterTableType.AT_DropNotNull:
            return
        table = altered_table(ancestors)
        if table is None or self.ctx.is_new_table(table):
            return
        self.report(
            table,
            f"Dropping NOT NULL on {qualified(table)}.{node.name} lets NULLs reach code that "
            "assumes a value.",
            "Make sure every reader handles NULL before dropping the constraint.",
        )

    def visit_AlterDomainStmt(self, ancestors: Ancestor, node: ast.AlterDomainStmt) -> None:
        if node.subtype != "N" or not node.typeName:  # ALTER DOMAIN ... DROP NOT NULL
            return
        domain = node.typeName[-1].sval
        if domain in self.ctx.catalog.new_types:
            return
        self.report(
            node,
            f"Dropping NOT NULL on domain {domain} lets NULLs into every column of that type, reaching code "
            "that assumes a value.",
            "Make sure every reader handles NULL before dropping the constraint.",
        )
