"""The one explicit list of safety rules.  Adding a rule = one module + one line here.

The registry refuses a duplicate id or an incomplete rule at import time, so a mistake fails every
test instead of silently shadowing a rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from validator.safety.rule import Rule
from validator.safety.rules import (
    adding_field_with_default,
    adding_foreign_key_constraint,
    adding_not_nullable_field,
    adding_required_field,
    adding_serial_primary_key_field,
    application_rollback_compatibility,
    ban_alter_domain_with_add_constraint,
    ban_char_field,
    ban_concurrent_index_creation_in_transaction,
    ban_create_domain_with_constraint,
    ban_drop_column,
    ban_drop_constraint,
    ban_drop_database,
    ban_drop_default,
    ban_drop_not_null,
    ban_drop_object,
    ban_drop_schema,
    ban_drop_table,
    ban_duplicate_column_assignments,
    ban_truncate_cascade,
    changing_column_type,
    constraint_missing_not_valid,
    data_dependent_change,
    disallowed_unique_constraint,
    enum_value_in_transaction,
    identifier_too_long,
    prefer_bigint,
    prefer_identity,
    prefer_repack,
    prefer_robust_stmts,
    prefer_text_field,
    prefer_timestamptz,
    renaming_column,
    renaming_object,
    renaming_table,
    require_concurrent_index_creation,
    require_concurrent_index_deletion,
    require_concurrent_partition_detach,
    require_concurrent_refresh,
    require_concurrent_reindex,
    require_enum_value_ordering,
    suppression_malformed,
    suppression_missing_reason,
    suppression_unknown_rule,
    suppression_unused,
)


class DuplicateRuleError(ValueError):
    pass


class Registry:
    def __init__(self, rules: Iterable[type[Rule]]) -> None:
        self._rules: dict[str, type[Rule]] = {}
        for rule in rules:
            rule.check_definition()
            if rule.id in self._rules:
                raise DuplicateRuleError(
                    f"safety rule id {rule.id!r} is registered twice "
                    f"({self._rules[rule.id].__module__} and {rule.__module__})"
                )
            self._rules[rule.id] = rule

    def __iter__(self) -> Iterator[type[Rule]]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def __getitem__(self, rule_id: str) -> type[Rule]:
        return self._rules[rule_id]

    @property
    def ids(self) -> list[str]:
        return list(self._rules)


REGISTRY = Registry(
    [
        # locking: statements that hold a strong lock for as long as the table is big
        require_concurrent_index_creation.RequireConcurrentIndexCreation,
        require_concurrent_index_deletion.RequireConcurrentIndexDeletion,
        require_concurrent_reindex.RequireConcurrentReindex,
        require_concurrent_refresh.RequireConcurrentRefresh,
        require_concurrent_partition_detach.RequireConcurrentPartitionDetach,
        ban_concurrent_index_creation_in_transaction.BanConcurrentIndexCreationInTransaction,
        adding_foreign_key_constraint.AddingForeignKeyConstraint,
        constraint_missing_not_valid.ConstraintMissingNotValid,
        disallowed_unique_constraint.DisallowedUniqueConstraint,
        adding_serial_primary_key_field.AddingSerialPrimaryKeyField,
        adding_field_with_default.AddingFieldWithDefault,
        adding_not_nullable_field.AddingNotNullableField,
        changing_column_type.ChangingColumnType,
        ban_alter_domain_with_add_constraint.BanAlterDomainWithAddConstraint,
        prefer_repack.PreferRepack,
        # breaking: the running application or the deployment fails
        adding_required_field.AddingRequiredField,
        renaming_column.RenamingColumn,
        renaming_table.RenamingTable,
        ban_drop_column.BanDropColumn,
        ban_drop_table.BanDropTable,
        ban_drop_database.BanDropDatabase,
        ban_drop_schema.BanDropSchema,
        ban_drop_object.BanDropObject,
        ban_drop_constraint.BanDropConstraint,
        ban_drop_default.BanDropDefault,
        renaming_object.RenamingObject,
        ban_truncate_cascade.BanTruncateCascade,
        ban_drop_not_null.BanDropNotNull,
        enum_value_in_transaction.EnumValueInTransaction,
        identifier_too_long.IdentifierTooLong,
        ban_duplicate_column_assignments.BanDuplicateColumnAssignments,
        data_dependent_change.DataDependentChange,
        application_rollback_compatibility.ApplicationRollbackCompatibility,
        # robustness and style
        prefer_robust_stmts.PreferRobustStmts,
        require_enum_value_ordering.RequireEnumValueOrdering,
        ban_create_domain_with_constraint.BanCreateDomainWithConstraint,
        prefer_bigint.PreferBigint,
        prefer_identity.PreferIdentity,
        prefer_text_field.PreferTextField,
        prefer_timestamptz.PreferTimestamptz,
        ban_char_field.BanCharField,
        # the suppressions themselves
        suppression_missing_reason.SuppressionMissingReason,
        suppression_unknown_rule.SuppressionUnknownRule,
        suppression_malformed.SuppressionMalformed,
        suppression_unused.SuppressionUnused,
    ]
)
