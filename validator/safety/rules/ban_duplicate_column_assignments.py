"""ban-duplicate-column-assignments: a column declared, listed or assigned twice in one statement."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pglast import ast
from pglast.enums import AlterTableType
from pglast.visitors import Ancestor

from validator.safety.nodes import filled, manual, sval
from validator.safety.rule import Example, Rule, RuleDocs


def _duplicates(named: Iterable[tuple[str, object]]) -> list[tuple[str, object]]:
    """The second (third, ...) occurrence of each name, with its node."""
    seen: set[str] = set()
    out: list[tuple[str, object]] = []
    for name, node in named:
        if name in seen:
            out.append((name, node))
        seen.add(name)
    return out


class BanDuplicateColumnAssignments(Rule):
    id = "ban-duplicate-column-assignments"
    category = "breaking"
    squawk = "ban-duplicate-column-assignments"
    summary = "A column declared or assigned twice in one statement makes PostgreSQL refuse the migration."
    docs = RuleDocs(
        why="PostgreSQL refuses a CREATE TABLE that declares a column twice ('column specified more than "
        "once'), a view whose column list repeats a name, and an UPDATE or INSERT that assigns a column "
        "twice ('multiple assignments to same column'): the deployment fails.  The mistake usually comes "
        "from a merge of two branches that both added the column, or from copy and paste in a backfill.",
        lock="none: the statement fails.",
        anti_pattern="UPDATE invoices SET status = 'paid', paid_at = now(), status = 'settled' WHERE id "
        "= 42;",
        best_practice="UPDATE invoices SET status = 'settled', paid_at = now() WHERE id = 42;",
        manual=manual("sql-update"),
    )
    examples = (
        Example(
            "CREATE TABLE invoices (\n    id bigint PRIMARY KEY,\n    status text NOT NULL,\n"
            "    total numeric(12, 2),\n    status text\n);",
            True,
            title="a column added by two merged branches",
        ),
        Example(
            "UPDATE invoices SET status = 'paid', paid_at = now(), status = 'settled' WHERE id = 42;", True
        ),
        Example("UPDATE invoices SET status = 'settled', paid_at = now() WHERE id = 42;", False),
        Example(
            "UPDATE order_lines SET amounts[1] = 0, amounts[2] = 0 WHERE order_id = 7;",
            False,
            title="different elements of one array column",
        ),
    )
    cases = (
        Example("INSERT INTO tags (name, slug, name) VALUES ('Billing', 'billing', 'billing');", True),
        Example(
            "CREATE VIEW invoice_totals (invoice_id, total, total) AS\n"
            "SELECT invoice_id, sum(amount), sum(amount) FROM invoice_lines GROUP BY invoice_id;",
            True,
        ),
        Example("UPDATE accounts SET (plan, seats) = ('pro', 10), plan = 'team' WHERE id = 1;", True),
        Example(
            "ALTER TABLE users ADD COLUMN locale text, ADD COLUMN timezone text, ADD COLUMN locale text;",
            True,
        ),
        Example(
            "INSERT INTO settings (account_id, key, value) VALUES (1, 'theme', 'dark')\n"
            "ON CONFLICT (account_id, key) DO UPDATE SET value = excluded.value, value = 'light';",
            True,
            title="ON CONFLICT DO UPDATE assigns twice",
        ),
        Example("INSERT INTO tags (name, slug) VALUES ('Billing', 'billing');", False),
        Example(
            "CREATE VIEW invoice_totals (invoice_id, total) AS\n"
            "SELECT invoice_id, sum(amount) FROM invoice_lines GROUP BY invoice_id;",
            False,
        ),
        Example("UPDATE accounts SET (plan, seats) = ('pro', 10) WHERE id = 1;", False),
        Example(
            "UPDATE shipments SET address.city = 'Lyon', address.zip = '69001' WHERE id = 3;",
            False,
            title="different fields of one composite column",
        ),
        Example(
            "CREATE TABLE a (id bigint PRIMARY KEY, name text);\nCREATE TABLE b (id bigint, name text);",
            False,
        ),
    )

    def _report(self, duplicates: list[tuple[str, object]], what: str, refusal: str) -> None:
        for name, node in duplicates:
            self.report(
                node,
                f"Column {name} is {what} twice in this statement: PostgreSQL refuses it ({refusal}).",
                f"Remove the duplicate {name}.",
            )

    def visit_CreateStmt(self, ancestors: Ancestor, node: ast.CreateStmt) -> None:
        cols = [(e.colname, e) for e in node.tableElts or () if isinstance(e, ast.ColumnDef) and e.colname]
        self._report(_duplicates(cols), "declared", "'column specified more than once'")

    def visit_ViewStmt(self, ancestors: Ancestor, node: ast.ViewStmt) -> None:
        names = [
            (sval(a, "ViewStmt.aliases"), node.view) for a in node.aliases or () if isinstance(a, ast.String)
        ]
        self._report(_duplicates(names), "listed", "'column specified more than once'")

    def visit_AlterTableStmt(self, ancestors: Ancestor, node: ast.AlterTableStmt) -> None:
        added = [
            (filled(c.def_.colname, "ColumnDef.colname"), c.def_)
            for c in node.cmds or ()
            if c.subtype == AlterTableType.AT_AddColumn and isinstance(c.def_, ast.ColumnDef)
        ]
        self._report(_duplicates(added), "added", "'column specified more than once'")

    def _assignments(self, targets: tuple[Any, ...] | None) -> None:
        plain = [
            (t.name, t)
            for t in targets or ()
            if isinstance(t, ast.ResTarget) and t.name and not t.indirection
        ]
        self._report(_duplicates(plain), "assigned", "'multiple assignments to same column'")

    def visit_UpdateStmt(self, ancestors: Ancestor, node: ast.UpdateStmt) -> None:
        self._assignments(node.targetList)

    def visit_OnConflictClause(self, ancestors: Ancestor, node: ast.OnConflictClause) -> None:
        self._assignments(node.targetList)

    def visit_InsertStmt(self, ancestors: Ancestor, node: ast.InsertStmt) -> None:
        cols = [
            (c.name, c)
            for c in node.cols or ()
            if isinstance(c, ast.ResTarget) and c.name and not c.indirection
        ]
        self._report(_duplicates(cols), "listed", "'column specified more than once'")
