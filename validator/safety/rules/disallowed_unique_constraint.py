"""disallowed-unique-constraint: a UNIQUE constraint that builds its index under lock."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ConstrType
from pglast.visitors import Ancestor

from validator.safety.nodes import manual, qualified, table_gaining_indexed_constraint
from validator.safety.rule import Example, Rule, RuleDocs


class DisallowedUniqueConstraint(Rule):
    id = "disallowed-unique-constraint"
    category = "locking"
    squawk = "disallowed-unique-constraint"
    summary = "Add UNIQUE constraints USING INDEX built concurrently beforehand."
    docs = RuleDocs(
        why="ADD CONSTRAINT ... UNIQUE builds the unique index while holding an ACCESS EXCLUSIVE lock, so "
        "the table is unreadable and unwritable for the whole build.",
        lock="ACCESS EXCLUSIVE on the table for the index build (brief with USING INDEX).",
        anti_pattern="ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
        best_practice="-- migration 1 (non-transactional)\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS users_email_key ON users (email);\n"
        "-- migration 2\n"
        "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-DESC-ADD-TABLE-CONSTRAINT-USING-INDEX"),
    )
    examples = (
        Example("ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);", True),
        Example("ALTER TABLE users ADD COLUMN handle text UNIQUE;", True),
        Example(
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_key;", False
        ),
        Example(
            "CREATE TABLE users (id bigint, email text);\n"
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
            False,
        ),
    )
    cases = (
        Example('ALTER TABLE "User" ADD CONSTRAINT "User_email_key" UNIQUE ("email");', True),
        Example("ALTER TABLE ONLY public.accounts ADD CONSTRAINT accounts_slug_key UNIQUE (slug);", True),
        Example("ALTER TABLE memberships ADD UNIQUE (team_id, user_id);", True),
        Example(
            "ALTER TABLE settings ADD CONSTRAINT settings_key UNIQUE NULLS NOT DISTINCT (account_id, key);",
            True,
        ),
        Example(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS accounts_slug_key ON accounts (slug);",
            False,
            transactional=False,
        ),
        Example("CREATE TABLE accounts (id bigint PRIMARY KEY, slug text UNIQUE);", False),
        Example(
            "ALTER TABLE accounts ADD CONSTRAINT accounts_plan_check CHECK (plan <> '') NOT VALID;", False
        ),
    )

    def visit_Constraint(self, ancestors: Ancestor, node: ast.Constraint) -> None:
        table = table_gaining_indexed_constraint(ancestors, node, ConstrType.CONSTR_UNIQUE)
        if table is not None and not self.ctx.is_new_table(table):
            self.report(
                node,
                f"Adding a UNIQUE constraint to {qualified(table)} builds its index while blocking "
                "all reads and writes of the table.",
                "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... UNIQUE USING INDEX.",
            )
