"""renaming-object: RENAME or SET SCHEMA of a view, function, type, sequence, index, constraint, ..."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ObjectType
from pglast.visitors import Ancestor

from validator.safety.nodes import filled, last_name, manual
from validator.safety.objects import name_of, put_back_later
from validator.safety.rule import Example, Rule, RuleDocs

# tables and columns have rules of their own (renaming-table, renaming-column)
_OWN_RULE = {ObjectType.OBJECT_TABLE, ObjectType.OBJECT_COLUMN}


def _label(object_type: ObjectType) -> str:
    return (
        object_type.name.removeprefix("OBJECT_")
        .replace("TABCONSTRAINT", "CONSTRAINT")
        .replace("_", " ")
        .lower()
    )


class RenamingObject(Rule):
    id = "renaming-object"
    category = "breaking"
    severity = "warning"
    squawk = "renaming-object, ban-set-schema"
    summary = (
        "Renaming (or moving to another schema) a view, function, type, enum value, ... breaks its users."
    )
    docs = RuleDocs(
        why="Queries, function calls, casts and ON CONFLICT ON CONSTRAINT clauses of the running application "
        "name the object; after the rename (or ALTER ... SET SCHEMA) they fail.  A renamed enum value "
        "fails every client that still writes the old label.",
        lock="ACCESS EXCLUSIVE on the object (brief).",
        anti_pattern="ALTER VIEW active_users RENAME TO active_accounts;",
        best_practice="-- expand: add the new name beside the old one, move the clients, then drop the "
        "old one\n"
        "CREATE VIEW active_accounts AS SELECT * FROM active_users;\n"
        "-- (a release later) DROP VIEW active_users;",
        manual=manual("sql-alterview"),
    )
    examples = (
        Example("ALTER VIEW active_users RENAME TO active_accounts;", True),
        Example("ALTER TYPE order_status RENAME VALUE 'canceled' TO 'cancelled';", True),
        Example(
            "-- AlterEnum\nBEGIN;\nCREATE TYPE \"Role_new\" AS ENUM ('USER', 'ADMIN');\n"
            'ALTER TABLE "User" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");\n'
            'ALTER TYPE "Role" RENAME TO "Role_old";\nALTER TYPE "Role_new" RENAME TO "Role";\n'
            'DROP TYPE "Role_old";\nCOMMIT;',
            False,
            title="Prisma swaps a new enum in under the old name, in one transaction",
        ),
        Example(
            "CREATE INDEX CONCURRENTLY users_email_idx_new ON users (lower(email));",
            False,
            transactional=False,
        ),
    )
    cases = (
        Example("ALTER FUNCTION invoice_total(bigint) RENAME TO invoice_gross_total;", True),
        Example("ALTER TABLE users RENAME CONSTRAINT users_email_key TO users_email_unique;", True),
        Example("ALTER SEQUENCE invoice_seq RENAME TO invoice_number_seq;", True),
        Example("ALTER TABLE invoices SET SCHEMA billing;", True, title="a table moved to another schema"),
        Example("ALTER FUNCTION set_updated_at() SET SCHEMA util;", True),
        Example("ALTER SCHEMA reporting RENAME TO analytics;", True),
        Example(
            "ALTER INDEX users_email_idx_new RENAME TO users_email_idx;",
            True,
            title="an index (hints and ON CONFLICT ON CONSTRAINT name indexes too)",
        ),
        Example("CREATE VIEW v_tmp AS SELECT 1 AS one;\nALTER VIEW v_tmp RENAME TO v_one;", False),
        Example("ALTER TABLE users RENAME COLUMN name TO full_name;", False, title="see renaming-column"),
        Example("ALTER TABLE customer RENAME TO customers;", False, title="see renaming-table"),
        Example(
            "ALTER VIEW active_users RENAME TO active_users_old;\n"
            "CREATE VIEW active_users AS SELECT id, email FROM users WHERE deleted_at IS NULL;",
            False,
            title="the old name is given to a replacement in the same transaction",
        ),
        Example("ALTER TYPE order_status ADD VALUE 'refunded' AFTER 'paid';", False),
        Example(
            "ALTER TYPE address RENAME ATTRIBUTE zip TO postal_code;",
            True,
            title="a composite type's attribute",
        ),
    )

    def visit_RenameStmt(self, ancestors: Ancestor, node: ast.RenameStmt) -> None:
        if node.renameType in _OWN_RULE:
            return
        if node.renameType == ObjectType.OBJECT_ATTRIBUTE and node.relation is not None:
            if node.relation.relname in self.ctx.catalog.new_types:
                return
            old = f"{node.relation.relname}.{node.subname}"
        elif node.renameType == ObjectType.OBJECT_TABCONSTRAINT and node.relation is not None:
            if self.ctx.is_new_table(node.relation) or self.ctx.catalog.is_new_object(
                node.renameType, f"{node.relation.relname}.{node.subname}"
            ):
                return
            old = node.subname or ""
        else:
            old = node.subname or name_of(node.object if node.object is not None else node.relation)
            if self.ctx.catalog.is_new_object(node.renameType, old) or (
                node.relation is not None and self.ctx.is_new_table(node.relation)
            ):
                return
            if put_back_later(self.ctx.later_statements_in_same_transaction(), node.renameType, old):
                return
        what = _label(filled(node.renameType, "RenameStmt.renameType"))
        self.report(
            node,
            f"Renaming {what} {old} to {node.newname} breaks the running code that still uses the old name.",
            "Expand/contract: create the new name beside the old one (a view, a wrapper function), move the "
            "clients, and remove the old name in a later release.",
        )

    def visit_AlterEnumStmt(self, ancestors: Ancestor, node: ast.AlterEnumStmt) -> None:
        if not node.oldVal:
            return
        enum = last_name(node.typeName, "AlterEnumStmt.typeName")
        if enum in self.ctx.catalog.new_types:
            return
        self.report(
            node,
            f"Renaming value '{node.oldVal}' of enum {enum} to '{node.newVal}' breaks every client that "
            f"still "
            f"writes or compares '{node.oldVal}'.",
            "Add the new value, move the rows and the clients to it, and stop using the old one; enum "
            "values cannot be dropped, so keep it or replace the type in a later release.",
        )

    def visit_AlterObjectSchemaStmt(self, ancestors: Ancestor, node: ast.AlterObjectSchemaStmt) -> None:
        target = node.relation if node.relation is not None else node.object
        name = name_of(target)
        if (
            node.relation is not None and self.ctx.is_new_table(node.relation)
        ) or self.ctx.catalog.is_new_object(node.objectType, name):
            return
        what = _label(filled(node.objectType, "AlterObjectSchemaStmt.objectType"))
        self.report(
            node,
            f"Moving {what} {name} to schema {node.newschema} breaks the running code that names it without "
            "that schema (or with the old one).",
            "Put the new schema on the clients' search_path first, or keep a forwarding object in the old "
            "schema until every client has moved.",
        )
