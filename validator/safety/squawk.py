"""squawk's rules, and where schemagate covers each one.

schemagate's safety rules started from squawk's (https://squawkhq.com/docs/rules): most have a rule
of the same intent (``Rule.squawk`` names the squawk ids it covers).  The rest are covered by another
part of schemagate, which this module says, so docs/rules.md can list every squawk rule and a test
can check that none is forgotten when squawk adds one.
"""

from __future__ import annotations

SQUAWK_VERSION = "2.70.0"

# every rule of squawk-cli 2.70.0, in squawk's own order: the ids ``squawk --include`` accepts, and
# ``unused-ignore`` (squawk's finding for an ignore comment that suppresses nothing)
SQUAWK_RULES: tuple[str, ...] = (
    "require-concurrent-index-creation",
    "require-concurrent-index-deletion",
    "constraint-missing-not-valid",
    "adding-field-with-default",
    "adding-foreign-key-constraint",
    "changing-column-type",
    "adding-not-nullable-field",
    "adding-serial-primary-key-field",
    "renaming-column",
    "renaming-table",
    "disallowed-unique-constraint",
    "ban-drop-database",
    "prefer-bigint-over-int",
    "prefer-bigint-over-smallint",
    "prefer-identity",
    "prefer-repack",
    "prefer-robust-stmts",
    "prefer-text-field",
    "prefer-timestamptz",
    "ban-char-field",
    "ban-drop-column",
    "ban-drop-table",
    "ban-drop-not-null",
    "transaction-nesting",
    "adding-required-field",
    "ban-concurrent-index-creation-in-transaction",
    "unused-ignore",
    "ban-create-domain-with-constraint",
    "ban-alter-domain-with-add-constraint",
    "ban-truncate-cascade",
    "require-timeout-settings",
    "ban-uncommitted-transaction",
    "require-enum-value-ordering",
    "require-table-schema",
    "identifier-too-long",
    "require-concurrent-partition-detach",
    "require-concurrent-reindex",
    "require-lock-timeout",
    "require-statement-timeout",
    "ban-duplicate-column-assignments",
    "ban-drop-view",
    "ban-drop-function",
    "ban-drop-type",
    "ban-drop-default",
    "ban-drop-trigger",
    "ban-drop-schema",
    "ban-drop-sequence",
    "ban-drop-domain",
    "ban-drop-constraint",
    "ban-drop-generated-expression",
    "renaming-object",
    "ban-set-schema",
    "ban-alter-identity",
    "ban-drop-extension",
    "ban-alter-generated-expression",
    "ban-drop-index",
    "ban-set-default",
    "ban-disable-trigger",
    "ban-replica-identity",
    "ban-drop-policy",
    "ban-revoke",
    "ban-replace-view-function",
    "ban-alter-policy-condition",
    "ban-alter-policy-roles",
    "ban-create-policy",
    "ban-alter-function-options",
    "ban-alter-view-options",
    "ban-alter-role-options",
    "ban-alter-database-options",
    "ban-alter-row-level-security",
    "ban-new-write-restriction",
    "ban-add-enum-value",
    "ban-add-composite-attribute",
    "ban-add-column",
    "ban-detach-inheritance",
    "ban-alter-sequence-values",
    "ban-alter-system-options",
    "ban-alter-extension",
)

# squawk rules that are not a schemagate safety rule: what covers them instead, and why
COVERED_ELSEWHERE: dict[str, str] = {
    "require-lock-timeout": "Moot: the executor sets `lock_timeout` for every migration (5 s by default, "
    "`-- schemagate:set lock_timeout=...` per file) and retries with back-off, so no statement waits for a "
    "lock without bound.",
    "require-statement-timeout": "Moot: the executor sets `statement_timeout` for every migration "
    "(30 min by default, `-- schemagate:set statement_timeout=...` per file).",
    "require-timeout-settings": "Moot: squawk's alias for require-lock-timeout and "
    "require-statement-timeout, "
    "both set by the executor.",
    "transaction-nesting": "The syntax check `explicit-transaction-control`: the executor owns the "
    "transaction of each migration, so BEGIN/COMMIT/SAVEPOINT inside a file are refused (a file wrapped "
    "whole in BEGIN ... COMMIT is run as one transactional migration).",
    "ban-uncommitted-transaction": "The syntax check `explicit-transaction-control`: a BEGIN without its "
    "COMMIT is refused like any transaction control in the middle of a file.",
    "require-table-schema": "Moot when the `search_path` setting is used: the executor runs every migration "
    "with that search_path, so an unqualified name resolves to the same schema in every environment.",
}


def covered_by_rules(registry: object) -> dict[str, str]:
    """squawk rule id -> the schemagate rule id that covers it (from each rule's ``squawk``)."""
    out: dict[str, str] = {}
    for rule in registry:  # type: ignore[attr-defined]
        for squawk_id in (s.strip() for s in (rule.squawk or "").split(",")):
            if squawk_id:
                out[squawk_id] = rule.id
    return out
