"""adding-foreign-key-constraint: a foreign key added to an existing table without NOT VALID."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType, ConstrType
from pglast.visitors import Ancestor

from validator.safety.nodes import altered_table, constraints, enclosing_cmd, manual, qualified
from validator.safety.rule import Example, Rule, RuleDocs


class AddingForeignKeyConstraint(Rule):
    id = "adding-foreign-key-constraint"
    category = "locking"
    squawk = "adding-foreign-key-constraint"
    summary = "Add foreign keys as NOT VALID, then VALIDATE CONSTRAINT in a later migration."
    docs = RuleDocs(
        why="Adding a foreign key checks every existing row while holding a lock that blocks writes to "
        "both the table and the referenced table for the whole scan.",
        lock="SHARE ROW EXCLUSIVE on both tables (writes wait); VALIDATE CONSTRAINT later takes only "
        "SHARE UPDATE EXCLUSIVE, which lets reads and writes continue.",
        anti_pattern="ALTER TABLE orders ADD CONSTRAINT orders_customer_fk\n"
        "    FOREIGN KEY (customer_id) REFERENCES customers (id);",
        best_practice="ALTER TABLE orders ADD CONSTRAINT orders_customer_fk\n"
        "    FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;\n"
        "-- next migration\nALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-NOTES"),
    )
    examples = (
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk\n"
            "    FOREIGN KEY (customer_id) REFERENCES customers (id);",
            True,
        ),
        Example(
            "ALTER TABLE orders ADD COLUMN customer_id bigint REFERENCES customers (id);",
            True,
            title="an inline REFERENCES cannot be NOT VALID",
        ),
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk\n"
            "    FOREIGN KEY (customer_id) REFERENCES customers (id) NOT VALID;",
            False,
        ),
        Example(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint);\n"
            "ALTER TABLE orders ADD CONSTRAINT orders_customer_fk\n"
            "    FOREIGN KEY (customer_id) REFERENCES customers (id);",
            False,
            title="a table created in the same file has no rows to check",
        ),
    )
    cases = (
        Example(
            '-- AddForeignKey\nALTER TABLE "Order" ADD CONSTRAINT "Order_userId_fkey" FOREIGN KEY '
            '("userId")\n'
            '    REFERENCES "User"("id") ON DELETE RESTRICT ON UPDATE CASCADE;',
            True,
            title="Prisma's AddForeignKey on a table of an earlier migration",
        ),
        Example(
            "ALTER TABLE ONLY public.comments\n"
            "    ADD CONSTRAINT fk_rails_03de2dc08c FOREIGN KEY (post_id) REFERENCES public.posts(id);",
            True,
        ),
        Example(
            'ALTER TABLE "blog_entry" ADD CONSTRAINT "blog_entry_author_id_fk" FOREIGN KEY ("author_id")\n'
            '    REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY DEFERRED;',
            True,
            title="Django's deferred foreign key",
        ),
        Example(
            "ALTER TABLE invoices ADD COLUMN customer_id bigint, ADD CONSTRAINT invoices_customer_fk\n"
            "    FOREIGN KEY (customer_id) REFERENCES customers (id);",
            True,
        ),
        Example(
            "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint REFERENCES customers (id));",
            False,
        ),
        Example("ALTER TABLE orders VALIDATE CONSTRAINT orders_customer_fk;", False),
        Example(
            'ALTER TABLE "blog_entry" ADD CONSTRAINT "blog_entry_author_id_fk" FOREIGN KEY ("author_id")\n'
            '    REFERENCES "auth_user" ("id") DEFERRABLE INITIALLY DEFERRED NOT VALID;',
            False,
        ),
        Example(
            "DO $$ BEGIN\n    ALTER TABLE orders ADD CONSTRAINT orders_customer_fk\n"
            "        FOREIGN KEY (customer_id) REFERENCES customers (id);\n"
            "EXCEPTION WHEN duplicate_object THEN NULL;\nEND $$;",
            True,
            title="the re-runnable DO block form",
        ),
    )

    def visit_Constraint(self, ancestors: Ancestor, node: ast.Constraint) -> None:
        if node.contype != ConstrType.CONSTR_FOREIGN or node.skip_validation:
            return
        cmd = enclosing_cmd(ancestors)
        table = altered_table(ancestors)
        if cmd is None or table is None or self.ctx.is_new_table(table):
            return
        if cmd.subtype == AlterTableType.AT_AddConstraint:
            self.report(
                node,
                f"Adding foreign key {node.conname or ''} to {qualified(table)} blocks writes to it "
                f"and to {qualified(node.pktable)} while every existing row is checked.",
                "Add it with NOT VALID, then run ALTER TABLE ... VALIDATE CONSTRAINT in a later migration.",
            )
        elif (
            cmd.subtype == AlterTableType.AT_AddColumn
            and isinstance(cmd.def_, ast.ColumnDef)
            and constraints(cmd.def_, ConstrType.CONSTR_FOREIGN)
        ):
            self.report(
                node,
                f"Adding a column with REFERENCES to {qualified(table)} takes a lock on "
                f"{qualified(node.pktable)} that blocks its writes until the statement commits.",
                "Add the column without REFERENCES, then ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID "
                "and VALIDATE CONSTRAINT in a later migration.",
            )
