"""prefer-robust-stmts: statements that cannot be re-run after a non-transactional file fails part-way."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pglast import ast
from pglast.enums import AlterTableType, ObjectType

from validator.safety.nodes import filled, manual, qualified
from validator.safety.rule import Example, Rule, RuleDocs

if TYPE_CHECKING:  # pragma: no cover
    from validator.parsed import Statement

_HELP = (
    "A file that runs outside a transaction is not rolled back when it fails: make each statement "
    "safe to run again."
)
_NO_FORM_HELP = (
    "Move it to a transactional migration of its own, or guard it in a DO block that checks the "
    "catalog first (IF NOT EXISTS (SELECT FROM pg_type WHERE typname = ...) THEN ... END IF)."
)
_CREATE_IF_NOT_EXISTS = {
    ast.CreateSeqStmt: "CREATE SEQUENCE",
    ast.CreateSchemaStmt: "CREATE SCHEMA",
    ast.CreateExtensionStmt: "CREATE EXTENSION",
    ast.CreateStatsStmt: "CREATE STATISTICS",
    ast.CreateTableAsStmt: "CREATE TABLE AS / MATERIALIZED VIEW",
}
_OR_REPLACE = {
    ast.ViewStmt: "CREATE VIEW",
    ast.CreateFunctionStmt: "CREATE FUNCTION",
    ast.CreateTrigStmt: "CREATE TRIGGER",
}
_NO_FORM = {
    ast.CreateEnumStmt: "CREATE TYPE ... AS ENUM",
    ast.CompositeTypeStmt: "CREATE TYPE ... AS (...)",
    ast.CreateRangeStmt: "CREATE TYPE ... AS RANGE",
    ast.CreateDomainStmt: "CREATE DOMAIN",
    ast.CreatePolicyStmt: "CREATE POLICY",
    ast.RenameStmt: "RENAME",
}
_ALTER_IF_EXISTS = {
    AlterTableType.AT_DropColumn: "DROP COLUMN",
    AlterTableType.AT_DropConstraint: "DROP CONSTRAINT",
    AlterTableType.AT_DropIdentity: "DROP IDENTITY",
    AlterTableType.AT_DropExpression: "DROP EXPRESSION",
}
_ALTER_NO_FORM = {
    AlterTableType.AT_AttachPartition: "ATTACH PARTITION",
    AlterTableType.AT_AddInherit: "INHERIT",
    AlterTableType.AT_AddIdentity: "ADD GENERATED ... AS IDENTITY",
}


def _drop_what(node: ast.DropStmt) -> str:
    removed = filled(node.removeType, "DropStmt.removeType")
    return "DROP " + removed.name.removeprefix("OBJECT_").replace("MATVIEW", "MATERIALIZED VIEW")


class PreferRobustStmts(Rule):
    id = "prefer-robust-stmts"
    category = "robustness"
    squawk = "prefer-robust-stmts"
    severity = "warning"
    summary = "In a non-transactional migration, write each statement so that a failed run can be retried."
    docs = RuleDocs(
        why="schemagate runs a migration in one transaction unless a statement in it cannot run in one "
        "(CREATE INDEX CONCURRENTLY, VACUUM, ...).  Such a file commits statement by statement: when one "
        "fails, the ones before it stay applied, the history row says so (success = false), and after "
        "`schemagate repair` the retry fails on them ('already exists') unless each is written to be run "
        "again: IF [NOT] EXISTS, OR REPLACE.  Statements without such a form (CREATE TYPE, ADD CONSTRAINT, "
        "RENAME) belong in a transactional migration.  Files that run in a transaction (the default, or "
        "wrapped in BEGIN ... COMMIT) are all or nothing and are not checked.",
        lock="depends on the statement.",
        anti_pattern="CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);\n"
        "CREATE INDEX CONCURRENTLY orders_created_at_idx ON orders (created_at);",
        best_practice="CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);\n"
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_created_at_idx ON orders (created_at);\n"
        "-- note: a failed CONCURRENTLY build leaves an INVALID index that IF NOT EXISTS keeps;\n"
        "-- drop it (DROP INDEX CONCURRENTLY IF EXISTS) before retrying",
        manual=manual("sql-createindex", "SQL-CREATEINDEX-CONCURRENTLY"),
    )
    examples = (
        Example("CREATE INDEX CONCURRENTLY orders_customer_idx ON orders (customer_id);", True),
        Example(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);\n"
            "DROP INDEX CONCURRENTLY orders_customer_id_idx;",
            True,
        ),
        Example(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_idx ON orders (customer_id);\n"
            "DROP INDEX CONCURRENTLY IF EXISTS orders_customer_id_idx;",
            False,
        ),
        Example(
            "CREATE TABLE audit_log (id bigint);\nALTER TABLE audit_log ADD COLUMN at timestamptz;",
            False,
            title="a transactional file is all or nothing",
        ),
    )
    cases = (
        Example(
            "CREATE TABLE audit_log (id bigint PRIMARY KEY, at timestamptz);\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_log_at_idx ON audit_log (at);",
            True,
            transactional=False,
        ),
        Example(
            "ALTER TABLE orders ADD COLUMN archived_at timestamptz;\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_archived_at_idx ON orders (archived_at);",
            True,
            transactional=False,
        ),
        Example(
            "CREATE TYPE order_priority AS ENUM ('low', 'high');\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_priority_idx ON orders (priority);",
            True,
            transactional=False,
            title="CREATE TYPE has no IF NOT EXISTS form",
        ),
        Example(
            "ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_total_idx ON orders (total);",
            True,
            transactional=False,
        ),
        Example(
            "DROP INDEX CONCURRENTLY IF EXISTS users_email_idx;\n"
            "ALTER TABLE users DROP CONSTRAINT users_email_key;",
            True,
            transactional=False,
        ),
        Example(
            "CREATE VIEW recent_orders AS SELECT * FROM orders WHERE created_at > now() - interval '7 "
            "days';\n"
            "REINDEX INDEX CONCURRENTLY orders_created_at_idx;",
            True,
            transactional=False,
        ),
        Example("DROP INDEX CONCURRENTLY users_email_idx;", True, title="a lone DROP INDEX CONCURRENTLY"),
        Example(
            "CREATE INDEX CONCURRENTLY ON orders (customer_id);",
            False,
            title="an unnamed index cannot collide (squawk passes it too)",
        ),
        Example(
            "ALTER TABLE orders ADD COLUMN IF NOT EXISTS archived_at timestamptz;\n"
            "ALTER TABLE orders DROP COLUMN IF EXISTS archived;\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_archived_at_idx ON orders (archived_at);",
            False,
            transactional=False,
        ),
        Example(
            "ALTER TABLE app_email DROP CONSTRAINT IF EXISTS email_uniq;\n"
            "ALTER TABLE app_email ADD CONSTRAINT email_uniq UNIQUE USING INDEX email_idx;\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS app_email_domain_idx ON app_email (domain);",
            False,
            transactional=False,
            title="dropped IF EXISTS, then added: re-runnable",
        ),
        Example(
            "CREATE OR REPLACE VIEW recent_orders AS SELECT * FROM orders WHERE created_at > now() - "
            "interval '7 days';\n"
            "ALTER TABLE orders ALTER COLUMN note SET NOT NULL;\n"
            "ALTER TABLE orders VALIDATE CONSTRAINT orders_total_positive;\n"
            "REINDEX INDEX CONCURRENTLY orders_created_at_idx;",
            False,
            transactional=False,
            title="statements that succeed when run again",
        ),
        Example(
            "BEGIN;\nCREATE TABLE audit_log (id bigint);\nCREATE TYPE audit_kind AS ENUM ('insert', "
            "'delete');\nCOMMIT;",
            False,
            title="wrapped in BEGIN ... COMMIT",
        ),
        Example(
            "DO $$ BEGIN\n  IF NOT EXISTS (SELECT FROM pg_type WHERE typname = 'audit_kind') THEN\n"
            "    CREATE TYPE audit_kind AS ENUM ('insert', 'delete');\n  END IF;\nEND $$;\n"
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_log_kind_idx ON audit_log (kind);",
            False,
            transactional=False,
            title="guarded in a DO block",
        ),
    )

    def _flag(self, node: object | None, missing: str, what: str) -> None:
        self.report(
            node,
            f"{what} without {missing} fails when the migration is retried after a partial failure.",
            f"Write {missing}. {_HELP}",
        )

    def _no_form(self, node: object | None, what: str) -> None:
        self.report(
            node,
            f"{what} has no IF [NOT] EXISTS form: in a file that runs outside a transaction, a retry after a "
            "partial failure fails on it.",
            _NO_FORM_HELP,
        )

    @property
    def _checked(self) -> bool:
        """Statements other than the concurrent index builds are checked in files of several statements
        that run outside a transaction (a single statement is all or nothing)."""
        return not self.ctx.in_transaction and sum(1 for s in self.ctx.file.statements if s.node) > 1

    def check_statement(self, stmt: Statement) -> None:
        node = stmt.node
        if self.ctx.in_transaction or node is None:
            return
        if isinstance(node, ast.IndexStmt):
            if node.idxname and not node.if_not_exists and (node.concurrent or self._checked):
                self._flag(node.relation, "IF NOT EXISTS", "CREATE INDEX")
            return
        if isinstance(node, ast.DropStmt):
            if not node.missing_ok and (node.concurrent or self._checked):
                self._flag(node, "IF EXISTS", _drop_what(node))
            return
        if not self._checked:
            return
        if isinstance(node, ast.CreateStmt):
            temp_dropped = (
                filled(node.relation, "CreateStmt.relation").relpersistence == "t"
                and filled(node.oncommit, "CreateStmt.oncommit").name == "ONCOMMIT_DROP"
            )
            if not node.if_not_exists and not temp_dropped:
                self._flag(node.relation, "IF NOT EXISTS", "CREATE TABLE")
        elif type(node) in _CREATE_IF_NOT_EXISTS:
            if not node.if_not_exists:
                self._flag(node, "IF NOT EXISTS", _CREATE_IF_NOT_EXISTS[type(node)])
        elif type(node) in _OR_REPLACE:
            if not node.replace:
                self._flag(node, "OR REPLACE", _OR_REPLACE[type(node)])
        elif type(node) in _NO_FORM:
            self._no_form(node, _NO_FORM[type(node)])
        elif isinstance(node, ast.AlterEnumStmt):
            if node.newVal and not node.oldVal and not node.skipIfNewValExists:
                self._flag(node, "IF NOT EXISTS", "ALTER TYPE ... ADD VALUE")
        elif isinstance(node, ast.AlterTableStmt) and node.objtype == ObjectType.OBJECT_TABLE:
            self._alter_table(stmt, node)

    def _alter_table(self, stmt: Statement, node: ast.AlterTableStmt) -> None:
        table = qualified(node.relation)
        for cmd in node.cmds or ():
            if cmd.subtype == AlterTableType.AT_AddColumn and not cmd.missing_ok:
                self._flag(cmd.def_, "IF NOT EXISTS", f"ALTER TABLE {table} ADD COLUMN")
            elif cmd.subtype in _ALTER_IF_EXISTS and not cmd.missing_ok:
                self._flag(cmd, "IF EXISTS", f"ALTER TABLE {table} {_ALTER_IF_EXISTS[cmd.subtype]}")
            elif cmd.subtype == AlterTableType.AT_AddConstraint and not self._dropped_before(stmt, cmd.def_):
                self._no_form(cmd.def_, f"ALTER TABLE {table} ADD CONSTRAINT")
            elif cmd.subtype in _ALTER_NO_FORM:
                self._no_form(cmd, f"ALTER TABLE {table} {_ALTER_NO_FORM[cmd.subtype]}")

    def _dropped_before(self, stmt: Statement, con: object) -> bool:
        """``DROP CONSTRAINT IF EXISTS <name>`` earlier in the file makes ADD CONSTRAINT re-runnable."""
        name = getattr(con, "conname", None)
        for earlier in self.ctx.file.statements[: stmt.index + 1]:
            for cmd in getattr(earlier.node, "cmds", None) or ():
                if cmd.subtype == AlterTableType.AT_DropConstraint and cmd.missing_ok and cmd.name == name:
                    return True
        return False
