"""ban-create-domain-with-constraint: CHECK constraints on domains."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ConstrType
from pglast.visitors import Ancestor

from validator.safety.nodes import last_name, manual
from validator.safety.rule import Example, Rule, RuleDocs


class BanCreateDomainWithConstraint(Rule):
    id = "ban-create-domain-with-constraint"
    category = "robustness"
    squawk = "ban-create-domain-with-constraint"
    severity = "warning"
    summary = "Put CHECK constraints on table columns, not on domains."
    docs = RuleDocs(
        why="A domain's CHECK applies invisibly to every table that uses the domain and is hard to change "
        "later: replacing it means ALTER DOMAIN ... ADD CONSTRAINT, which checks every column of every "
        "table using the domain under lock unless done NOT VALID + VALIDATE.  Creating the domain locks "
        "nothing, so this is a warning about the migrations that will follow.",
        lock="none for CREATE DOMAIN; later changes scan every table that uses the domain.",
        anti_pattern="CREATE DOMAIN positive_amount AS numeric CHECK (VALUE > 0);",
        best_practice="CREATE DOMAIN amount AS numeric;\n"
        "ALTER TABLE invoices ADD CONSTRAINT invoices_amount_positive CHECK (amount > 0) NOT VALID;",
        manual=manual("sql-createdomain"),
    )
    examples = (
        Example("CREATE DOMAIN positive_amount AS numeric CHECK (VALUE > 0);", True),
        Example(
            "CREATE DOMAIN amount AS numeric NOT NULL;", False, title="NOT NULL is not a CHECK constraint"
        ),
        Example("CREATE DOMAIN amount AS numeric;", False),
    )
    cases = (
        Example("CREATE DOMAIN email_address AS citext CHECK (VALUE ~ '^[^@]+@[^@]+$');", True),
        Example(
            "CREATE DOMAIN us_postal_code AS text CONSTRAINT zip_format CHECK (VALUE ~ '^\\d{5}$');", True
        ),
        Example("CREATE DOMAIN percentage AS numeric(5, 2) NOT NULL CHECK (VALUE BETWEEN 0 AND 100);", True),
        Example('CREATE DOMAIN "Score" AS INTEGER CHECK (VALUE >= 0) CHECK (VALUE <= 100);', True),
        Example("CREATE DOMAIN amount AS numeric(12, 2) DEFAULT 0;", False),
        Example("CREATE TABLE t (score integer CHECK (score BETWEEN 0 AND 100));", False),
        Example("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');", False),
    )

    def visit_CreateDomainStmt(self, ancestors: Ancestor, node: ast.CreateDomainStmt) -> None:
        domain = last_name(node.domainname, "CreateDomainStmt.domainname")
        for con in node.constraints or ():
            if isinstance(con, ast.Constraint) and con.contype == ConstrType.CONSTR_CHECK:
                self.report(
                    con,
                    f"Domain {domain} has a CHECK constraint, which cannot later be "
                    "changed without scanning every table that uses the domain under lock.",
                    "Use a plain domain (or type) and put the CHECK on the table columns.",
                )
                return
