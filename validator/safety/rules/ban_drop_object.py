"""ban-drop-object: DROP VIEW / FUNCTION / TYPE / DOMAIN / SEQUENCE / EXTENSION that running code uses."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ObjectType
from pglast.visitors import Ancestor

from validator.safety.nodes import manual
from validator.safety.objects import name_of, put_back_later
from validator.safety.rule import Example, Rule, RuleDocs

DROPPED = {
    ObjectType.OBJECT_VIEW: "view",
    ObjectType.OBJECT_MATVIEW: "materialized view",
    ObjectType.OBJECT_FUNCTION: "function",
    ObjectType.OBJECT_PROCEDURE: "procedure",
    ObjectType.OBJECT_ROUTINE: "routine",
    ObjectType.OBJECT_TYPE: "type",
    ObjectType.OBJECT_DOMAIN: "domain",
    ObjectType.OBJECT_SEQUENCE: "sequence",
    ObjectType.OBJECT_EXTENSION: "extension",
}


def _takes_internal(obj: object) -> bool:
    """A function with an ``internal`` argument (GiST/GIN support functions) is not callable from SQL."""
    args = getattr(obj, "objargs", None) or ()
    return any(isinstance(a, ast.TypeName) and a.names and a.names[-1].sval == "internal" for a in args)


class BanDropObject(Rule):
    id = "ban-drop-object"
    category = "breaking"
    squawk = (
        "ban-drop-view, ban-drop-function, ban-drop-type, ban-drop-domain, ban-drop-sequence, "
        "ban-drop-extension"
    )
    summary = "Dropping a view, function, type, domain, sequence or extension breaks the code still using it."
    docs = RuleDocs(
        why="The application version that is still running (and the one a rollback returns to) queries "
        "the view, calls the function, casts to the type, draws from the sequence: from the moment the "
        "DROP commits those statements fail.  Backward-incompatible changes go in two releases "
        "(expand/contract): first release code that no longer uses the object, then drop it.",
        lock="ACCESS EXCLUSIVE on the object (and on what depends on it with CASCADE).",
        anti_pattern="DROP VIEW active_subscriptions;",
        best_practice="-- release N stops using the view; release N+1:\n"
        "-- schemagate:ignore ban-drop-object -- unused since release 4.2 (grep: no reference)\n"
        "DROP VIEW IF EXISTS active_subscriptions;",
        manual=manual("sql-dropview"),
    )
    examples = (
        Example("DROP VIEW active_subscriptions;", True),
        Example(
            "DROP FUNCTION IF EXISTS invoice_total(bigint);", True, title="IF EXISTS does not make it safe"
        ),
        Example(
            "DROP VIEW invoice_totals;\n"
            "CREATE VIEW invoice_totals AS\n"
            "    SELECT invoice_id, sum(amount) AS total, count(*) AS lines FROM invoice_lines GROUP BY "
            "invoice_id;",
            False,
            title="dropped and created again in the same transaction (a view whose columns change)",
        ),
        Example(
            "-- AlterEnum\nBEGIN;\nCREATE TYPE \"Role_new\" AS ENUM ('USER', 'ADMIN');\n"
            'ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");\n'
            'ALTER TYPE "Role" RENAME TO "Role_old";\nALTER TYPE "Role_new" RENAME TO "Role";\n'
            'DROP TYPE "Role_old";\nCOMMIT;',
            False,
            title="Prisma replacing an enum: the old type is renamed aside, then dropped",
        ),
    )
    cases = (
        Example("DROP TYPE order_status;", True),
        Example("DROP MATERIALIZED VIEW IF EXISTS monthly_revenue;", True),
        Example("DROP SEQUENCE invoice_number_seq;", True),
        Example("DROP DOMAIN email_address CASCADE;", True),
        Example('DROP EXTENSION IF EXISTS "uuid-ossp";', True),
        Example("DROP PROCEDURE archive_old_events(interval);", True),
        Example(
            "DROP VIEW active_subscriptions;\nCREATE VIEW active_subscriptions AS SELECT 1;",
            True,
            transactional=False,
            title="outside a transaction clients see the view missing in between",
        ),
        Example(
            "CREATE FUNCTION tmp_backfill() RETURNS void LANGUAGE sql AS $$ UPDATE users SET locale = "
            "'en' $$;\n"
            "SELECT tmp_backfill();\nDROP FUNCTION tmp_backfill();",
            False,
            title="a helper created and dropped by the same migration",
        ),
        Example(
            "DROP FUNCTION IF EXISTS set_updated_at() CASCADE;\n"
            "CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN NEW.updated_at = now(); RETURN NEW; END $$;",
            False,
        ),
        Example("DROP TABLE legacy_sessions;", False, title="tables: see ban-drop-table"),
        Example("DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;", False, transactional=False),
        Example(
            "CREATE TYPE export_format AS ENUM ('csv', 'json');\nDROP TYPE export_format;",
            False,
        ),
        Example(
            "ALTER OPERATOR FAMILY gist_cube_ops USING gist DROP FUNCTION 3 (cube);\n"
            "DROP FUNCTION g_cube_compress(pg_catalog.internal);",
            False,
            title="a GiST support function (PostgreSQL's cube 1.3 -> 1.4): not callable from SQL",
        ),
    )

    def visit_DropStmt(self, ancestors: Ancestor, node: ast.DropStmt) -> None:
        what = DROPPED.get(node.removeType) if node.removeType is not None else None
        if what is None:
            return
        for obj in node.objects or ():
            name = name_of(obj)
            if _takes_internal(obj):
                continue  # an index support function: no SQL client can call it
            if self.ctx.catalog.is_new_object(node.removeType, name) or put_back_later(
                self.ctx.later_statements_in_same_transaction(), node.removeType, name
            ):
                continue
            self.report(
                node,
                f"Dropping {what} {name} breaks the running code (and a rolled-back release) that still "
                f"uses it.",
                f"Release code that no longer uses the {what} first (expand/contract); then drop it with a "
                "suppression giving that release.",
            )
