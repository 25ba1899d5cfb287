"""ban-drop-constraint: dropping a constraint removes a guarantee running code relies on."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType, ObjectType
from pglast.visitors import Ancestor

from validator.safety.nodes import altered_table, cmd_name, manual, qualified, relname
from validator.safety.objects import names_taken
from validator.safety.rule import Example, Rule, RuleDocs


class BanDropConstraint(Rule):
    id = "ban-drop-constraint"
    category = "breaking"
    severity = "warning"
    squawk = "ban-drop-constraint"
    summary = (
        "Dropping a constraint removes a guarantee (uniqueness, a foreign key, a check) clients rely on."
    )
    docs = RuleDocs(
        why="Code relies on constraints: INSERT ... ON CONFLICT (email) fails without the unique index "
        "behind it, a report that trusts a foreign key starts counting orphans, a CHECK that kept bad "
        "values out lets them in.  Once rows break the rule, putting the constraint back fails.",
        lock="ACCESS EXCLUSIVE on the table (brief).",
        anti_pattern="ALTER TABLE users DROP CONSTRAINT users_email_key;",
        best_practice="-- replace it in the same transaction (drop and add under the same name), or "
        "release code\n"
        "-- that no longer relies on it first and say so:\n"
        "-- schemagate:ignore ban-drop-constraint -- emails are unique per tenant since 4.2 "
        "(users_tenant_email_key)\n"
        "ALTER TABLE users DROP CONSTRAINT users_email_key;",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-DESC-DROP-CONSTRAINT"),
    )
    examples = (
        Example("ALTER TABLE users DROP CONSTRAINT users_email_key;", True),
        Example('ALTER TABLE "Order" DROP CONSTRAINT IF EXISTS "Order_userId_fkey";', True),
        Example(
            'ALTER TABLE "Order" DROP CONSTRAINT "Order_userId_fkey";\n'
            'ALTER TABLE "Order" ADD CONSTRAINT "Order_userId_fkey" FOREIGN KEY ("userId")\n'
            '    REFERENCES "User"("id") ON DELETE CASCADE ON UPDATE CASCADE NOT VALID;',
            False,
            title="dropped and added again under the same name (Prisma changing ON DELETE)",
        ),
        Example(
            {
                "V1__check.sql": "ALTER TABLE orders ADD CONSTRAINT orders_currency_not_null "
                "CHECK (currency IS NOT NULL) NOT VALID;",
                "V2__validate.sql": "ALTER TABLE orders VALIDATE CONSTRAINT orders_currency_not_null;",
                "V3__not_null.sql": "ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;\n"
                "ALTER TABLE orders DROP CONSTRAINT orders_currency_not_null;",
            },
            False,
            title="the NOT NULL check is redundant once the column is NOT NULL",
        ),
    )
    cases = (
        Example("ALTER TABLE invoices DROP CONSTRAINT invoices_total_check;", True),
        Example("ALTER TABLE memberships DROP CONSTRAINT memberships_pkey CASCADE;", True),
        Example(
            "ALTER TABLE accounts DROP CONSTRAINT accounts_plan_check,\n"
            "    ADD CONSTRAINT accounts_plan_check_v2 CHECK (plan IN ('free', 'pro', 'team')) NOT VALID;",
            True,
            title="added back under another name: the old name (ON CONFLICT ON CONSTRAINT) is gone",
        ),
        Example(
            "ALTER TABLE users DROP CONSTRAINT users_email_key;\n"
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (tenant_id, email);",
            True,
            transactional=False,
            title="replaced, but outside a transaction",
        ),
        Example("ALTER TABLE ONLY public.taggings DROP CONSTRAINT taggings_tag_id_fkey;", True),
        Example(
            "CREATE TABLE imports (id bigint PRIMARY KEY, source text CONSTRAINT imports_source_check "
            "CHECK (source <> ''));\n"
            "ALTER TABLE imports DROP CONSTRAINT imports_source_check;",
            False,
        ),
        Example(
            "ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;\n"
            "ALTER TABLE users DROP CONSTRAINT users_age_check;",
            False,
            title="added earlier in the same file",
        ),
        Example(
            "ALTER TABLE accounts DROP CONSTRAINT accounts_plan_check;\n"
            "ALTER TABLE accounts ADD CONSTRAINT accounts_plan_check\n"
            "    CHECK (plan IN ('free', 'pro', 'team', 'enterprise')) NOT VALID;",
            False,
            title="widening a CHECK: same name, same transaction",
        ),
        Example(
            "ALTER TABLE users ALTER COLUMN nickname DROP NOT NULL;", False, title="see ban-drop-not-null"
        ),
        Example("ALTER TABLE users DROP COLUMN legacy_flag;", False, title="see ban-drop-column"),
    )

    def visit_AlterTableCmd(self, ancestors: Ancestor, node: ast.AlterTableCmd) -> None:
        if node.subtype != AlterTableType.AT_DropConstraint or not node.name:
            return
        table = altered_table(ancestors)
        if table is None or self.ctx.is_new_table(table):
            return
        key = f"{table.relname}.{node.name}"
        catalog = self.ctx.catalog
        if catalog.is_new_object(ObjectType.OBJECT_TABCONSTRAINT, key):
            return
        if self._added_back(ancestors, key):
            return
        check = catalog.checks.get((relname(table), cmd_name(node)))
        if (
            check is not None
            and check.not_null_column
            and (table.relname, check.not_null_column) in catalog.not_null
        ):
            return  # CHECK (col IS NOT NULL) made redundant by SET NOT NULL
        self.report(
            table,
            f"Dropping constraint {node.name} from {qualified(table)} removes a guarantee that running code "
            "(ON CONFLICT, joins trusting a foreign key, a CHECK keeping bad values out) may rely on.",
            "Replace it in the same transaction under the same name, or release code that no longer relies "
            "on it first and suppress this with that reason.",
        )

    def _added_back(self, ancestors: Ancestor, key: str) -> bool:
        """Added again under the same name later in this ALTER TABLE or this transaction."""
        if not self.ctx.in_transaction:
            return False
        stmt = self.ctx.statement
        later = [s for s in self.ctx.later_statements_in_same_transaction()]
        table = key.split(".", 1)[0]
        for s in [stmt, *later]:
            for cmd in getattr(s.node, "cmds", None) or ():
                con = getattr(cmd, "def_", None)
                if (
                    getattr(cmd, "subtype", None) == AlterTableType.AT_AddConstraint
                    and getattr(con, "conname", None) == key.split(".", 1)[1]
                    and getattr(getattr(s.node, "relation", None), "relname", None) == table
                ):
                    return True
        return (ObjectType.OBJECT_TABCONSTRAINT, key) in names_taken(later)
