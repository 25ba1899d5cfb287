"""The engine, registry, configuration, docs and version awareness of the safety rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from executor.errors import ConfigurationError
from validator.config import ValidatorConfig
from validator.safety import REGISTRY, check_safety, check_sql, sqlfluff_overlap
from validator.safety import docs as rules_docs
from validator.safety.registry import DuplicateRuleError, Registry
from validator.safety.rule import Rule
from validator.safety.rules.ban_drop_column import BanDropColumn
from validator.safety.source import SqlParseError, source_file


def config(**kw: Any) -> ValidatorConfig:
    return ValidatorConfig(project_root=Path("."), migrations=Path("migrations"), **kw)


def rules_of(result) -> list[str]:
    return [f.rule for f in result.findings]


# ---- registry and docs ---------------------------------------------------------------------
def test_registry_rejects_duplicate_ids() -> None:
    class Again(BanDropColumn):
        pass

    with pytest.raises(DuplicateRuleError, match="ban-drop-column"):
        Registry([BanDropColumn, Again])


def test_registry_rejects_a_rule_without_both_kinds_of_example() -> None:
    class OnlyBad(Rule):  # ban-drop-column's definition with its triggering example only
        id = "only-bad"
        category = BanDropColumn.category
        summary = BanDropColumn.summary
        docs = BanDropColumn.docs
        examples = tuple(e for e in BanDropColumn.examples if e.triggers)

    with pytest.raises(ValueError, match="non-triggering"):
        Registry([OnlyBad])


def test_docs_rules_md_is_current() -> None:
    assert rules_docs.DOCS_PATH.read_text(encoding="utf-8") == rules_docs.render(), (
        "docs/rules.md is out of date: run `python -m validator.safety.docs`"
    )


def test_every_rule_has_a_section_in_the_docs() -> None:
    text = rules_docs.render()
    for rule in REGISTRY:
        assert f"\n## {rule.id}\n" in text and f"](#{rule.id})" in text


# ---- configuration -------------------------------------------------------------------------
def test_rules_can_be_switched_off_and_their_severity_changed() -> None:
    sql = "ALTER TABLE users DROP COLUMN x;\nCREATE INDEX i ON users (a);"
    result = check_sql(
        sql, config=config(rules={"ban-drop-column": "off", "require-concurrent-index-creation": "warning"})
    )
    assert [(f.rule, f.severity) for f in result.findings] == [
        ("require-concurrent-index-creation", "warning")
    ]


def test_unknown_rule_in_configuration_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError) as exc:
        check_sql("SELECT 1;", config=config(rules={"ban-drop-colum": "off"}))
    assert (
        exc.value.remedy is not None
        and "ban-drop-colum" in str(exc.value)
        and "ban-drop-column" in exc.value.remedy
    )
    assert exc.value.exit_code == 2


def test_default_severities_errors_for_dangers_warnings_for_style() -> None:
    sql = (
        "CREATE TABLE t (id serial PRIMARY KEY, at timestamp, name varchar(20));\n"
        "ALTER TABLE u DROP COLUMN c;"
    )
    sev = {f.rule: f.severity for f in check_sql(sql).findings}
    assert sev == {
        "prefer-identity": "warning",
        "prefer-bigint": "warning",
        "prefer-timestamptz": "warning",
        "prefer-text-field": "warning",
        "ban-drop-column": "error",
    }


def test_sqlfluff_overlap_follows_enabled_rules() -> None:
    assert sqlfluff_overlap(config()) == {"PG01", "PG02"}
    off = {"adding-foreign-key-constraint": "off"}
    assert sqlfluff_overlap(config(rules=off)) == {"PG01"}


# ---- version awareness ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sql", "rule", "reported_on", "quiet_on"),
    [
        ("ALTER TABLE t ADD COLUMN c text DEFAULT 'x';", "adding-field-with-default", 10, 11),
        ("ALTER TABLE events DETACH PARTITION e2019;", "require-concurrent-partition-detach", 14, 14),
        ("ALTER TYPE s ADD VALUE 'x' AFTER 'y';", "enum-value-in-transaction", 11, 12),
    ],
)
def test_version_differences(sql: str, rule: str, reported_on: int, quiet_on: int) -> None:
    assert rule in rules_of(check_sql(sql, config=config(target_postgres=reported_on)))
    if quiet_on != reported_on:
        assert rule not in rules_of(check_sql(sql, config=config(target_postgres=quiet_on)))


def test_detach_partition_advice_depends_on_version() -> None:
    sql = "ALTER TABLE events DETACH PARTITION e2019;"
    [old] = check_sql(sql, config=config(target_postgres=13)).findings
    [new] = check_sql(sql, config=config(target_postgres=14)).findings
    assert "needs PostgreSQL 14" in old.help and "CONCURRENTLY in a migration" in new.help


def test_set_not_null_uses_a_check_validated_in_an_earlier_file_only_from_pg12() -> None:
    files = {
        "V1__c.sql": "ALTER TABLE o ADD CONSTRAINT o_c_nn CHECK (c IS NOT NULL) NOT VALID;",
        "V2__v.sql": "ALTER TABLE o VALIDATE CONSTRAINT o_c_nn;",
        "V3__n.sql": "ALTER TABLE o ALTER COLUMN c SET NOT NULL;",
    }

    def not_null_findings(target: int) -> list[str]:
        found = rules_of(check_sql(files, config=config(target_postgres=target)))
        return [r for r in found if r == "adding-not-nullable-field"]

    assert not_null_findings(12) == []
    assert not_null_findings(11) == ["adding-not-nullable-field"]
    same_tx = {"V1__all.sql": "\n".join(files.values())}
    assert "adding-not-nullable-field" in rules_of(check_sql(same_tx))


# ---- same-file exemption and location ------------------------------------------------------
def test_tables_created_in_the_same_file_are_exempt_from_lock_rules() -> None:
    sql = """CREATE TABLE invoices (id bigint PRIMARY KEY, total numeric, c text);
CREATE INDEX invoices_total_idx ON invoices (total);
ALTER TABLE invoices ADD CONSTRAINT invoices_total_positive CHECK (total >= 0);
ALTER TABLE invoices ADD COLUMN token uuid DEFAULT gen_random_uuid();
ALTER TABLE invoices ALTER COLUMN c SET NOT NULL;
ALTER TABLE invoices ALTER COLUMN total TYPE numeric(12, 2);
ALTER TABLE invoices ADD CONSTRAINT invoices_c_key UNIQUE (c);
"""
    assert rules_of(check_sql(sql)) == []
    # the same statements against a table of an earlier migration are all reported
    later = check_sql({"V1__t.sql": sql.split("\n", 1)[0], "V2__x.sql": sql.split("\n", 1)[1]})
    assert set(rules_of(later)) == {
        "require-concurrent-index-creation",
        "constraint-missing-not-valid",
        "adding-field-with-default",
        "adding-not-nullable-field",
        "changing-column-type",
        "disallowed-unique-constraint",
        "data-dependent-change",  # the CHECK, SET NOT NULL and UNIQUE can fail on existing rows
    }


def test_findings_point_at_the_node() -> None:
    sql = "SELECT 1;\n\nALTER TABLE users\n    ADD COLUMN token uuid DEFAULT gen_random_uuid();\n"
    [f] = check_sql(sql).findings
    assert (f.file, f.line, f.column) == ("V1__test.sql", 4, 35)


def test_check_safety_takes_parsed_files_in_apply_order() -> None:
    files = [
        source_file("CREATE TABLE a (id bigint, n varchar(10));", file="V1__a.sql"),
        source_file("ALTER TABLE a ALTER COLUMN n TYPE text;", file="V2__b.sql"),
    ]
    result = check_safety(files, config())
    assert [(f.rule, f.file) for f in result.findings] == [("prefer-text-field", "V1__a.sql")]


def test_alter_foreign_table_is_not_a_table_with_rows() -> None:
    sql = "ALTER FOREIGN TABLE remote_users ADD COLUMN region text NOT NULL;"
    assert rules_of(check_sql(sql)) == []
    assert rules_of(check_sql(sql.replace("FOREIGN TABLE", "TABLE"))) == ["adding-required-field"]


def test_registry_rejects_a_visitor_for_a_node_class_pglast_does_not_have() -> None:
    class Typo(BanDropColumn):
        id = "typo-rule"

        def visit_AlterTableCommand(self, ancestors: object, node: object) -> None:  # AlterTableCmd
            pass

    with pytest.raises(ValueError, match="visit_AlterTableCommand"):
        Registry([Typo])


def test_check_sql_refuses_sql_that_does_not_parse() -> None:
    with pytest.raises(SqlParseError, match=r"V1__test\.sql:1"):
        check_sql("ALTER TABLE users DROP COLUMN;")


# ---- DDL inside DO blocks ----------------------------------------------------------------------
GUARDED = """-- idempotent, the way hand-written Flyway migrations guard their DDL
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_indexes WHERE indexname = 'orders_status_idx') THEN
        CREATE INDEX orders_status_idx ON orders (status);
    END IF;
    EXECUTE 'ALTER TABLE orders DROP COLUMN legacy_status';
    EXECUTE format('ALTER TABLE %I DROP COLUMN %I', 'orders', 'legacy_flag');
    ALTER TABLE orders ADD CONSTRAINT orders_customer_fk FOREIGN KEY (customer_id) REFERENCES customers (id);
EXCEPTION WHEN duplicate_object THEN
    RAISE NOTICE 'already there';
END
$$;
"""


def test_ddl_a_do_block_runs_is_judged_where_it_stands() -> None:
    found = [(f.rule, f.line, f.column) for f in check_sql(GUARDED).findings]
    assert found == [
        ("require-concurrent-index-creation", 5, 43),
        ("ban-drop-column", 7, 26),  # EXECUTE of a literal
        ("adding-foreign-key-constraint", 9, 28),
        ("data-dependent-change", 9, 28),
    ]  # EXECUTE format(...) is computed at run time: not judged


def test_objects_a_do_block_creates_count_as_new_and_function_bodies_are_not_run() -> None:
    sql = (
        "DO $$ BEGIN\n"
        "    CREATE TABLE IF NOT EXISTS audit_log (id bigint PRIMARY KEY, at timestamptz);\n"
        "EXCEPTION WHEN duplicate_table THEN NULL;\nEND $$;\n"
        "CREATE INDEX audit_log_at_idx ON audit_log (at);\n"
        "CREATE FUNCTION purge() RETURNS void LANGUAGE plpgsql AS $$\n"
        "BEGIN EXECUTE 'DROP TABLE audit_log'; END $$;\n"
    )
    assert rules_of(check_sql(sql)) == []


def test_an_ignore_above_a_do_block_covers_what_it_runs() -> None:
    sql = "-- schemagate:ignore ban-drop-column -- unused since 4.2\n" + GUARDED.split("\n", 1)[1]
    result = check_sql(sql)
    assert "ban-drop-column" not in rules_of(result)
    assert [s.used for s in result.suppressions] == [True]
