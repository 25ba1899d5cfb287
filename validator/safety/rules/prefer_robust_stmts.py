"""prefer-robust-stmts: statements that cannot be re-run after a non-transactional file fails part-way."""

from __future__ import annotations

from typing import Any

from pglast.enums import AlterTableType, ObjectType

from validator.safety.nodes import altered_table, manual
from validator.safety.rule import Example, Rule, RuleDocs

_DROPPABLE = {
    ObjectType.OBJECT_TABLE: "TABLE",
    ObjectType.OBJECT_INDEX: "INDEX",
    ObjectType.OBJECT_TYPE: "TYPE",
    ObjectType.OBJECT_VIEW: "VIEW",
    ObjectType.OBJECT_SEQUENCE: "SEQUENCE",
}
_HELP = (
    "A file that runs outside a transaction is not rolled back when it fails: make each statement "
    "safe to run again."
)


class PreferRobustStmts(Rule):
    id = "prefer-robust-stmts"
    category = "robustness"
    squawk = "prefer-robust-stmts"
    severity = "warning"
    summary = "In a non-transactional migration, use IF [NOT] EXISTS so a failed run can be retried."
    docs = RuleDocs(
        why="schemagate wraps a migration in a transaction unless it contains a statement that cannot run "
        "in one (CREATE INDEX CONCURRENTLY, ...).  Such a file that fails half-way leaves the first "
        "statements applied; after `schemagate repair` the retry fails on them ('already exists') "
        "unless they are written to be re-runnable.",
        lock="depends on the statement.",
        anti_pattern="CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);",
        best_practice="CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);\n"
        "-- note: a failed CONCURRENTLY build leaves an INVALID index that IF NOT EXISTS keeps;\n"
        "-- drop it (DROP INDEX CONCURRENTLY IF EXISTS) before retrying",
        manual=manual("sql-createindex", "SQL-CREATEINDEX-CONCURRENTLY"),
    )
    examples = (
        Example("CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);", True),
        Example("CREATE TABLE audit_log (id bigint);", True, transactional=False),
        Example(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);", False
        ),
        Example("CREATE TABLE audit_log (id bigint);", False, title="a transactional file is all or nothing"),
    )

    def _flag(self, node: Any, missing: str, what: str) -> None:
        self.report(
            node,
            f"{what} without {missing} fails when the migration is retried after a partial failure.",
            f"Write {missing}. {_HELP}",
        )

    def visit_CreateStmt(self, ancestors: Any, node: Any) -> None:
        if not self.ctx.in_transaction and not node.if_not_exists and node.relation.relpersistence != "t":
            self._flag(node.relation, "IF NOT EXISTS", "CREATE TABLE")

    def visit_IndexStmt(self, ancestors: Any, node: Any) -> None:
        if not self.ctx.in_transaction and not node.if_not_exists and node.idxname:
            self._flag(node.relation, "IF NOT EXISTS", "CREATE INDEX")

    def visit_DropStmt(self, ancestors: Any, node: Any) -> None:
        what = _DROPPABLE.get(node.removeType)
        if what and not self.ctx.in_transaction and not node.missing_ok:
            self._flag(node, "IF EXISTS", f"DROP {what}")

    def visit_AlterTableCmd(self, ancestors: Any, node: Any) -> None:
        if self.ctx.in_transaction or node.missing_ok or altered_table(ancestors) is None:
            return
        if node.subtype == AlterTableType.AT_AddColumn:
            self._flag(node.def_, "IF NOT EXISTS", "ADD COLUMN")
        elif node.subtype == AlterTableType.AT_DropColumn:
            self._flag(altered_table(ancestors), "IF EXISTS", "DROP COLUMN")
        elif node.subtype == AlterTableType.AT_DropConstraint:
            self._flag(altered_table(ancestors), "IF EXISTS", "DROP CONSTRAINT")
