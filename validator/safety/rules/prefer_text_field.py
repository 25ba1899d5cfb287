"""prefer-text-field: varchar(n) instead of text with a check constraint."""

from __future__ import annotations

from pglast import ast
from pglast.visitors import Ancestor

from validator.safety.catalog import type_mods, type_name
from validator.safety.nodes import column_name, manual, table_column_context
from validator.safety.rule import Example, Rule, RuleDocs


class PreferTextField(Rule):
    id = "prefer-text-field"
    category = "style"
    squawk = "prefer-text-field"
    severity = "warning"
    summary = "Use text (with a CHECK on length if needed) instead of varchar(n)."
    docs = RuleDocs(
        why="Raising a varchar(n) limit is cheap, but lowering it, or changing it where the old type is "
        "not known, rewrites the table under an ACCESS EXCLUSIVE lock.  A CHECK (length(col) <= n) "
        "constraint can be replaced with NOT VALID + VALIDATE without blocking.  text and varchar "
        "perform the same.",
        lock="none now; a later length change may take ACCESS EXCLUSIVE.",
        anti_pattern="CREATE TABLE users (email varchar(255));",
        best_practice="CREATE TABLE users (\n"
        "    email text CONSTRAINT users_email_length CHECK (length(email) <= 255)\n);",
        manual=manual("datatype-character"),
    )
    examples = (
        Example("CREATE TABLE users (email varchar(255));", True),
        Example("CREATE TABLE users (email text CHECK (length(email) <= 255));", False),
        Example("CREATE TABLE users (email varchar);", False, title="varchar without a limit is text"),
    )
    cases = (
        Example(
            'CREATE TABLE "blog_entry" ("id" bigint, "title" varchar(200) NOT NULL);',
            True,
            title="Django's CharField",
        ),
        Example("ALTER TABLE users ADD COLUMN email character varying(254);", True),
        Example("ALTER TABLE users ALTER COLUMN name TYPE varchar(100);", True),
        Example("CREATE TABLE tags (id bigint PRIMARY KEY, slugs varchar(50)[]);", True),
        Example("CREATE TABLE users (email text NOT NULL);", False),
        Example(
            "CREATE FUNCTION slug(title varchar(200)) RETURNS text LANGUAGE sql AS $$ SELECT "
            "lower(title) $$;",
            False,
        ),
        Example("SELECT name::varchar(20) FROM users;", False),
    )

    def visit_ColumnDef(self, ancestors: Ancestor, node: ast.ColumnDef) -> None:
        if table_column_context(ancestors) is None or node.typeName is None:
            return
        if type_name(node.typeName) == "varchar" and (mods := type_mods(node.typeName)):
            self.report(
                node.typeName,
                f"Column {column_name(ancestors, node)} is varchar({mods[0]}); "
                "changing that limit later can rewrite the table under an exclusive lock.",
                "Use text with a CHECK (length(col) <= n) constraint.",
            )
