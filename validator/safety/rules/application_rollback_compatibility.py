"""application-rollback-compatibility (opt-in): changes that leave the database fine for the new
release but can break the previous one, which a rollback of the application alone runs again."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType, ObjectType
from pglast.visitors import Ancestor

from validator.safety.nodes import filled, last_name, manual, qualified, relname
from validator.safety.objects import name_of
from validator.safety.rule import Example, Rule, RuleDocs

_TABLE_CMDS = {
    AlterTableType.AT_SetExpression: ("ban-alter-generated-expression", "changing a generation expression"),
    AlterTableType.AT_DisableTrig: ("ban-disable-trigger", "disabling a trigger"),
    AlterTableType.AT_DisableTrigAll: ("ban-disable-trigger", "disabling the triggers"),
    AlterTableType.AT_DisableTrigUser: ("ban-disable-trigger", "disabling the triggers"),
    AlterTableType.AT_EnableTrig: ("ban-disable-trigger", "enabling a trigger"),
    AlterTableType.AT_EnableAlwaysTrig: ("ban-disable-trigger", "enabling a trigger"),
    AlterTableType.AT_EnableReplicaTrig: ("ban-disable-trigger", "enabling a trigger"),
    AlterTableType.AT_EnableTrigAll: ("ban-disable-trigger", "enabling the triggers"),
    AlterTableType.AT_EnableTrigUser: ("ban-disable-trigger", "enabling the triggers"),
    AlterTableType.AT_ReplicaIdentity: ("ban-replica-identity", "changing the replica identity"),
    AlterTableType.AT_EnableRowSecurity: ("ban-alter-row-level-security", "enabling row level security"),
    AlterTableType.AT_DisableRowSecurity: ("ban-alter-row-level-security", "disabling row level security"),
    AlterTableType.AT_ForceRowSecurity: ("ban-alter-row-level-security", "forcing row level security"),
    AlterTableType.AT_NoForceRowSecurity: (
        "ban-alter-row-level-security",
        "no longer forcing row level security",
    ),
    AlterTableType.AT_AddColumn: (
        "ban-add-column",
        "adding a column (SELECT * and positional INSERTs change)",
    ),
    AlterTableType.AT_DropInherit: ("ban-detach-inheritance", "removing an inheritance link"),
    AlterTableType.AT_DetachPartition: ("ban-detach-inheritance", "detaching a partition"),
    AlterTableType.AT_SetNotNull: ("ban-new-write-restriction", "a new NOT NULL"),
    AlterTableType.AT_AddConstraint: ("ban-new-write-restriction", "a new constraint"),
}
_SEQUENCE_VALUES = {"restart", "start", "increment", "minvalue", "maxvalue", "cycle"}
_DROPPED = {
    ObjectType.OBJECT_TRIGGER: ("ban-drop-trigger", "dropping trigger"),
    ObjectType.OBJECT_POLICY: ("ban-drop-policy", "dropping policy"),
    ObjectType.OBJECT_INDEX: ("ban-drop-index", "dropping index"),
}


class ApplicationRollbackCompatibility(Rule):
    id = "application-rollback-compatibility"
    category = "breaking"
    severity = "warning"
    opt_in = True
    squawk = (
        "ban-drop-trigger, ban-drop-policy, ban-drop-index, ban-set-default, ban-alter-generated-expression, "
        "ban-disable-trigger, ban-replica-identity, ban-revoke, ban-replace-view-function, "
        "ban-alter-policy-condition, ban-alter-policy-roles, ban-create-policy, ban-alter-function-options, "
        "ban-alter-view-options, ban-alter-role-options, ban-alter-database-options, "
        "ban-alter-row-level-security, ban-new-write-restriction, ban-add-enum-value, "
        "ban-add-composite-attribute, ban-add-column, ban-detach-inheritance, ban-alter-sequence-values, "
        "ban-alter-system-options, ban-alter-extension"
    )
    summary = "Opt-in: changes the previous application release may not survive if it is rolled back to."
    docs = RuleDocs(
        why="A rollback of the application alone keeps the migrated database and runs the previous release "
        "against it.  Changes that are harmless for the new release can break that one: a new enum value it "
        "cannot decode, a column that shifts its SELECT * or positional INSERT, a new NOT NULL or CHECK "
        "that refuses its writes, a revoked privilege, a policy or a trigger it relied on, a replaced view "
        "or function.  Whether they do depends on the application, so this rule is off unless "
        "[tool.schemagate.rules] turns it on (like squawk's opt-in rules); each finding names the squawk "
        "rule for its form.  Verify an application-only rollback: apply the migration to representative "
        "data, write with the new release, run the old one against the same database with its own role.",
        lock="depends on the statement.",
        anti_pattern="ALTER TYPE order_status ADD VALUE 'on_hold' AFTER 'pending';",
        best_practice="-- release N: make the application accept 'on_hold' (decode, display, ignore)\n"
        "-- release N+1: add the value\nALTER TYPE order_status ADD VALUE IF NOT EXISTS 'on_hold' AFTER "
        "'pending';",
        manual=manual("ddl-alter"),
    )
    examples = (
        Example("ALTER TYPE order_status ADD VALUE 'on_hold' AFTER 'pending';", True),
        Example("REVOKE UPDATE ON invoices FROM app_writer;", True),
        Example(
            "CREATE TABLE coupons (id bigint PRIMARY KEY, code text);\nALTER TABLE coupons ADD COLUMN "
            "note text;",
            False,
        ),
        Example("GRANT SELECT ON invoices TO report_reader;", False, title="granting more breaks nothing"),
    )
    cases = (
        Example("ALTER TABLE users ADD COLUMN locale text;", True),
        Example("ALTER TABLE orders ALTER COLUMN status SET DEFAULT 'new';", True),
        Example(
            "ALTER TABLE invoices ADD CONSTRAINT invoices_total_positive CHECK (total >= 0) NOT VALID;", True
        ),
        Example("DROP TRIGGER IF EXISTS users_set_updated_at ON users;", True),
        Example("DROP POLICY tenant_isolation ON documents;", True),
        Example("DROP INDEX CONCURRENTLY IF EXISTS users_lower_email_idx;", True, transactional=False),
        Example("ALTER TABLE documents ENABLE ROW LEVEL SECURITY;", True),
        Example(
            "CREATE POLICY tenant_isolation ON documents USING (tenant_id = "
            "current_setting('app.tenant')::bigint);",
            True,
        ),
        Example("ALTER POLICY tenant_isolation ON documents TO app_user;", True),
        Example(
            "CREATE OR REPLACE VIEW active_users AS SELECT id, email, locale FROM users WHERE deleted_at "
            "IS NULL;",
            True,
        ),
        Example("ALTER FUNCTION invoice_total(bigint) SECURITY DEFINER;", True),
        Example("ALTER SEQUENCE invoice_number_seq RESTART WITH 100000;", True),
        Example("ALTER TYPE address ADD ATTRIBUTE country_code text;", True),
        Example("ALTER TABLE events DETACH PARTITION events_2019;", True),
        Example("ALTER TABLE orders DISABLE TRIGGER orders_audit;", True),
        Example("ALTER TABLE orders REPLICA IDENTITY FULL;", True),
        Example("ALTER ROLE app_user SET statement_timeout = '5s';", True),
        Example("ALTER DATABASE app SET timezone = 'UTC';", True),
        Example("ALTER SYSTEM SET work_mem = '64MB';", True, transactional=False),
        Example("ALTER EXTENSION postgis UPDATE;", True),
        Example(
            "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);", True, transactional=False
        ),
        Example("ALTER TABLE orders ALTER COLUMN currency SET NOT NULL;", True),
        Example("ALTER TABLE orders ALTER COLUMN total SET EXPRESSION AS (quantity * unit_price);", True),
        Example(
            "CREATE FUNCTION tmp_fix() RETURNS void LANGUAGE sql AS $$ SELECT 1 $$;\n"
            "CREATE OR REPLACE FUNCTION tmp_fix() RETURNS void LANGUAGE sql AS $$ SELECT 2 $$;",
            False,
        ),
        Example("CREATE INDEX CONCURRENTLY users_email_idx ON users (email);", False, transactional=False),
        Example("ALTER SEQUENCE invoice_number_seq OWNED BY invoices.number;", False),
        Example(
            "CREATE TABLE documents (id bigint PRIMARY KEY);\nALTER TABLE documents ENABLE ROW LEVEL "
            "SECURITY;",
            False,
        ),
        Example("COMMENT ON TABLE invoices IS 'one row per issued invoice';", False),
        Example(
            "ALTER TABLE orders ENABLE TRIGGER orders_audit;", True, title="the old release did not expect it"
        ),
        Example("ALTER TABLE orders SET (fillfactor = 90);", False),
    )

    def _flag(self, node: object | None, squawk: str, what: str) -> None:
        self.report(
            node,
            f"{what[0].upper()}{what[1:]} may break the previous application release if it is rolled back to "
            f"(squawk: {squawk}).",
            "Make the previous release cope first (expand/contract), or verify an application-only rollback "
            "against representative data; suppress with what was checked.",
        )

    def visit_AlterTableStmt(self, ancestors: Ancestor, node: ast.AlterTableStmt) -> None:
        if node.relation is None or self.ctx.is_new_table(node.relation):
            return
        rel = qualified(node.relation)
        for cmd in node.cmds or ():
            if node.objtype == ObjectType.OBJECT_TYPE and cmd.subtype == AlterTableType.AT_AddColumn:
                self._flag(cmd, "ban-add-composite-attribute", f"adding an attribute to type {rel}")
            elif node.objtype == ObjectType.OBJECT_VIEW and cmd.subtype == AlterTableType.AT_SetRelOptions:
                self._flag(cmd, "ban-alter-view-options", f"changing the options of view {rel}")
            elif node.objtype != ObjectType.OBJECT_TABLE:
                continue
            elif cmd.subtype == AlterTableType.AT_ColumnDefault and cmd.def_ is not None:
                self._flag(cmd, "ban-set-default", f"a new default for {rel}.{cmd.name}")
            elif cmd.subtype in _TABLE_CMDS:
                squawk, what = _TABLE_CMDS[cmd.subtype]
                self._flag(cmd, squawk, f"{what} on {rel}")

    def visit_IndexStmt(self, ancestors: Ancestor, node: ast.IndexStmt) -> None:
        if node.unique and not self.ctx.is_new_table(node.relation):
            self._flag(node, "ban-new-write-restriction", f"a new unique index on {qualified(node.relation)}")

    def visit_DropStmt(self, ancestors: Ancestor, node: ast.DropStmt) -> None:
        if node.removeType in _DROPPED:
            squawk, what = _DROPPED[node.removeType]
            for obj in node.objects or ():
                if not self.ctx.catalog.is_new_object(node.removeType, name_of(obj)):
                    self._flag(node, squawk, f"{what} {name_of(obj)}")

    def visit_GrantStmt(self, ancestors: Ancestor, node: ast.GrantStmt) -> None:
        if not node.is_grant:
            self._flag(node, "ban-revoke", "revoking a privilege")

    def visit_ViewStmt(self, ancestors: Ancestor, node: ast.ViewStmt) -> None:
        view = relname(filled(node.view, "ViewStmt.view"))
        if node.replace and not self.ctx.catalog.is_new_object(ObjectType.OBJECT_VIEW, view):
            self._flag(node.view, "ban-replace-view-function", f"replacing view {view}")

    def visit_CreateFunctionStmt(self, ancestors: Ancestor, node: ast.CreateFunctionStmt) -> None:
        name = last_name(node.funcname, "CreateFunctionStmt.funcname")
        if node.replace and not self.ctx.catalog.is_new_object(ObjectType.OBJECT_FUNCTION, name):
            self._flag(node, "ban-replace-view-function", f"replacing function {name}")

    def visit_CreatePolicyStmt(self, ancestors: Ancestor, node: ast.CreatePolicyStmt) -> None:
        if not self.ctx.is_new_table(node.table):
            self._flag(node.table, "ban-create-policy", f"a new policy on {qualified(node.table)}")

    def visit_AlterPolicyStmt(self, ancestors: Ancestor, node: ast.AlterPolicyStmt) -> None:
        if node.roles:
            self._flag(
                node.table, "ban-alter-policy-roles", f"changing the roles of policy {node.policy_name}"
            )
        if node.qual is not None or node.with_check is not None:
            self._flag(
                node.table,
                "ban-alter-policy-condition",
                f"changing the condition of policy {node.policy_name}",
            )

    def visit_AlterFunctionStmt(self, ancestors: Ancestor, node: ast.AlterFunctionStmt) -> None:
        self._flag(node, "ban-alter-function-options", f"changing the options of {name_of(node.func)}")

    def visit_AlterRoleStmt(self, ancestors: Ancestor, node: ast.AlterRoleStmt) -> None:
        self._flag(node, "ban-alter-role-options", "changing a role")

    def visit_AlterRoleSetStmt(self, ancestors: Ancestor, node: ast.AlterRoleSetStmt) -> None:
        self._flag(
            node, "ban-alter-role-options", f"changing a setting of role {getattr(node.role, 'rolename', '')}"
        )

    def visit_AlterDatabaseStmt(self, ancestors: Ancestor, node: ast.AlterDatabaseStmt) -> None:
        self._flag(node, "ban-alter-database-options", f"changing database {node.dbname}")

    def visit_AlterDatabaseSetStmt(self, ancestors: Ancestor, node: ast.AlterDatabaseSetStmt) -> None:
        self._flag(node, "ban-alter-database-options", f"changing a setting of database {node.dbname}")

    def visit_AlterSystemStmt(self, ancestors: Ancestor, node: ast.AlterSystemStmt) -> None:
        self._flag(node, "ban-alter-system-options", "changing the server configuration")

    def visit_AlterEnumStmt(self, ancestors: Ancestor, node: ast.AlterEnumStmt) -> None:
        if node.newVal and not node.oldVal:
            enum = last_name(node.typeName, "AlterEnumStmt.typeName")
            if enum not in self.ctx.catalog.new_types:
                self._flag(node, "ban-add-enum-value", f"a new value of enum {enum}")

    def visit_AlterSeqStmt(self, ancestors: Ancestor, node: ast.AlterSeqStmt) -> None:
        if any(isinstance(o, ast.DefElem) and o.defname in _SEQUENCE_VALUES for o in node.options or ()):
            self._flag(
                node.sequence,
                "ban-alter-sequence-values",
                f"changing the values of {qualified(node.sequence)}",
            )

    def visit_AlterExtensionStmt(self, ancestors: Ancestor, node: ast.AlterExtensionStmt) -> None:
        self._flag(node, "ban-alter-extension", f"updating extension {node.extname}")

    def visit_AlterExtensionContentsStmt(
        self, ancestors: Ancestor, node: ast.AlterExtensionContentsStmt
    ) -> None:
        self._flag(node, "ban-alter-extension", f"changing the members of extension {node.extname}")
