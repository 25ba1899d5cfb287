"""ban-alter-domain-with-add-constraint: ALTER DOMAIN ... ADD CONSTRAINT."""

from __future__ import annotations

from pglast import ast
from pglast.visitors import Ancestor

from validator.safety.nodes import last_name, manual
from validator.safety.rule import Example, Rule, RuleDocs


class BanAlterDomainWithAddConstraint(Rule):
    id = "ban-alter-domain-with-add-constraint"
    category = "locking"
    squawk = "ban-alter-domain-with-add-constraint"
    summary = "Adding a constraint to a domain checks every column that uses it, under lock."
    docs = RuleDocs(
        why="ALTER DOMAIN ... ADD CONSTRAINT verifies every value of every column of the domain's type in "
        "every table, blocking writes to all of them for the duration.",
        lock="SHARE on every table that has a column of the domain (writes wait).",
        anti_pattern="ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (VALUE > 0);",
        best_practice="ALTER TABLE invoices ADD CONSTRAINT invoices_amount_positive\n"
        "    CHECK (amount > 0) NOT VALID;\n"
        "-- next migration\nALTER TABLE invoices VALIDATE CONSTRAINT invoices_amount_positive;",
        manual=manual("sql-alterdomain"),
    )
    examples = (
        Example("ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (VALUE > 0);", True),
        Example(
            "ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (VALUE > 0) NOT VALID;",
            False,
            title="NOT VALID skips the check of existing values",
        ),
        Example(
            "CREATE DOMAIN amount AS numeric;\n"
            "ALTER DOMAIN amount ADD CONSTRAINT amount_positive CHECK (VALUE > 0);",
            False,
            title="a domain created in the same file is not used by any table yet",
        ),
    )
    cases = (
        Example("ALTER DOMAIN email_address ADD CONSTRAINT email_has_at CHECK (VALUE LIKE '%@%');", True),
        Example("ALTER DOMAIN public.positive_int ADD CHECK (VALUE > 0);", True),
        Example("ALTER DOMAIN country_code ADD CONSTRAINT country_code_len CHECK (length(VALUE) = 2);", True),
        Example("ALTER DOMAIN us_postal_code ADD CONSTRAINT zip_format CHECK (VALUE ~ '^\\d{5}$');", True),
        Example("ALTER DOMAIN email_address VALIDATE CONSTRAINT email_has_at;", False),
        Example("ALTER DOMAIN email_address DROP CONSTRAINT email_has_at;", False),
        Example("ALTER DOMAIN email_address SET DEFAULT 'unknown@example.com';", False),
    )

    def visit_AlterDomainStmt(self, ancestors: Ancestor, node: ast.AlterDomainStmt) -> None:
        if node.subtype != "C" or not isinstance(node.def_, ast.Constraint) or node.def_.skip_validation:
            return
        domain = last_name(node.typeName, "AlterDomainStmt.typeName")
        if domain in self.ctx.catalog.new_types:
            return
        self.report(
            node.def_,
            f"Adding a constraint to domain {domain} checks every column using "
            "it while blocking writes to those tables.",
            "Add the constraint with NOT VALID and VALIDATE it later, or put the CHECK on the table "
            "columns instead.",
        )
