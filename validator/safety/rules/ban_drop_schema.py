"""ban-drop-schema: DROP SCHEMA breaks everything that uses its objects, and with CASCADE loses data."""

from __future__ import annotations

from pglast import ast
from pglast.enums import DropBehavior, ObjectType
from pglast.visitors import Ancestor

from validator.safety.nodes import manual
from validator.safety.objects import name_of
from validator.safety.rule import Example, Rule, RuleDocs


class BanDropSchema(Rule):
    id = "ban-drop-schema"
    category = "breaking"
    destructive = True
    squawk = "ban-drop-schema"
    summary = "Dropping a schema removes every object in it; running code that uses them fails."
    docs = RuleDocs(
        why="DROP SCHEMA ... CASCADE drops every table, view, function and type in the schema, with their "
        "data; without CASCADE it fails as soon as the schema is not empty, which a development database "
        "may not show.  Either way the code using those objects breaks.",
        lock="ACCESS EXCLUSIVE on every object dropped.",
        anti_pattern="DROP SCHEMA reporting CASCADE;",
        best_practice="-- move what is still used, release code that no longer uses the rest, back it up:\n"
        "-- schemagate:ignore ban-drop-schema -- reporting moved to the warehouse in 4.2, dump in S3\n"
        "DROP SCHEMA reporting CASCADE;",
        manual=manual("sql-dropschema"),
    )
    examples = (
        Example("DROP SCHEMA reporting CASCADE;", True),
        Example("DROP SCHEMA IF EXISTS legacy;", True),
        Example(
            "CREATE SCHEMA staging;\nCREATE TABLE staging.rows (line text);\nDROP SCHEMA staging CASCADE;",
            False,
        ),
        Example("DROP TABLE reporting.daily_totals;", False, title="a table: see ban-drop-table"),
    )
    cases = (
        Example("DROP SCHEMA analytics, reporting CASCADE;", True),
        Example('DROP SCHEMA "tenant_acme" CASCADE;', True),
        Example("-- tenants are one schema each\nDROP SCHEMA tenant_42 RESTRICT;", True),
        Example("DROP SCHEMA IF EXISTS archive_2019 CASCADE;", True, transactional=False),
        Example("CREATE SCHEMA tmp_import;\nDROP SCHEMA tmp_import;", False),
        Example("ALTER SCHEMA reporting RENAME TO analytics;", False, title="a rename: see renaming-object"),
        Example("CREATE SCHEMA IF NOT EXISTS reporting;", False),
        Example("DROP OWNED BY report_reader;", True, title="every object the role owns, data included"),
        Example("REASSIGN OWNED BY report_reader TO reporting_owner;", False),
    )

    def visit_DropStmt(self, ancestors: Ancestor, node: ast.DropStmt) -> None:
        if node.removeType != ObjectType.OBJECT_SCHEMA:
            return
        old = [
            n
            for n in map(name_of, node.objects or ())
            if not self.ctx.catalog.is_new_object(node.removeType, n)
        ]
        if not old:
            return
        cascade = node.behavior == DropBehavior.DROP_CASCADE
        self.report(
            node,
            f"Dropping schema {', '.join(old)} "
            + ("drops every object in it, with its data," if cascade else "fails if it is not empty, and")
            + " breaks the code that uses them.",
            "Release code that no longer uses the schema, keep a dump, then drop it with a suppression "
            "saying so.",
        )

    def visit_DropOwnedStmt(self, ancestors: Ancestor, node: ast.DropOwnedStmt) -> None:
        names = [getattr(r, "rolename", None) or "?" for r in node.roles or ()]
        if all(self.ctx.catalog.is_new_object(ObjectType.OBJECT_ROLE, n) for n in names):
            return  # roles created by this file own only what this file created
        roles = ", ".join(names)
        self.report(
            node,
            f"DROP OWNED BY {roles} drops every object the role owns in this database, tables and their "
            "data included, and breaks the code that uses them.",
            "Hand the objects to another role first (REASSIGN OWNED BY ... TO ...), then DROP OWNED only "
            "revokes the role's privileges.",
        )
