"""adding-serial-primary-key-field: a primary key added to an existing table without USING INDEX."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ConstrType
from pglast.visitors import Ancestor

from validator.safety.nodes import manual, qualified, table_gaining_indexed_constraint
from validator.safety.rule import Example, Rule, RuleDocs


class AddingSerialPrimaryKeyField(Rule):
    id = "adding-serial-primary-key-field"
    category = "locking"
    squawk = "adding-serial-primary-key-field, adding-primary-key-constraint"
    summary = "Add primary keys to existing tables USING INDEX built concurrently beforehand."
    docs = RuleDocs(
        why="ADD PRIMARY KEY (or ADD COLUMN id bigserial PRIMARY KEY) builds the unique index under an "
        "ACCESS EXCLUSIVE lock and, for a new column, first rewrites the table to fill it: the table "
        "is unavailable for the whole time.",
        lock="ACCESS EXCLUSIVE on the table.",
        anti_pattern="ALTER TABLE events ADD COLUMN id bigserial PRIMARY KEY;",
        best_practice="-- migration 1 (non-transactional)\n"
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS events_pkey ON events (id);\n"
        "-- migration 2 (the column is already NOT NULL)\n"
        "ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-DESC-ADD-TABLE-CONSTRAINT-USING-INDEX"),
    )
    examples = (
        Example("ALTER TABLE events ADD COLUMN id bigserial PRIMARY KEY;", True),
        Example("ALTER TABLE events ADD PRIMARY KEY (id);", True),
        Example("ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY USING INDEX events_pkey;", False),
        Example(
            "CREATE TABLE events (payload jsonb);\nALTER TABLE events ADD COLUMN id bigserial PRIMARY KEY;",
            False,
        ),
    )
    cases = (
        Example(
            "ALTER TABLE memberships ADD CONSTRAINT memberships_pkey PRIMARY KEY (team_id, user_id);", True
        ),
        Example('ALTER TABLE "Session" ADD CONSTRAINT "Session_pkey" PRIMARY KEY ("id");', True),
        Example("ALTER TABLE ONLY public.taggings ADD CONSTRAINT taggings_pkey PRIMARY KEY (id);", True),
        Example(
            "ALTER TABLE events ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY;",
            True,
        ),
        Example(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS memberships_pkey_idx ON memberships "
            "(team_id, user_id);",
            False,
            transactional=False,
        ),
        Example(
            "CREATE TABLE memberships (team_id bigint, user_id bigint, PRIMARY KEY (team_id, user_id));",
            False,
        ),
        Example(
            "ALTER TABLE memberships ADD CONSTRAINT memberships_team_fk FOREIGN KEY (team_id) "
            "REFERENCES teams (id) NOT VALID;",
            False,
        ),
    )

    def visit_Constraint(self, ancestors: Ancestor, node: ast.Constraint) -> None:
        table = table_gaining_indexed_constraint(ancestors, node, ConstrType.CONSTR_PRIMARY)
        if table is not None and not self.ctx.is_new_table(table):
            self.report(
                node,
                f"Adding a primary key to {qualified(table)} builds its index while blocking all "
                "reads and writes of the table.",
                "CREATE UNIQUE INDEX CONCURRENTLY on NOT NULL columns first, then ADD CONSTRAINT ... "
                "PRIMARY KEY USING INDEX.",
            )
