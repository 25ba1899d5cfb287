"""Suppressions: each form works, each mistake is itself a finding, and all are listed for the report."""

from __future__ import annotations

from validator.safety import check_sql

DROP = "ALTER TABLE users DROP COLUMN legacy_flag;"


def rules_of(result) -> list[str]:
    return [f.rule for f in result.findings]


def test_next_statement_form_suppresses_only_the_next_statement() -> None:
    sql = f"-- schemagate:ignore ban-drop-column -- unused since release 4.2\n{DROP}\n{DROP}\n"
    result = check_sql(sql)
    assert [(f.rule, f.line) for f in result.findings] == [("ban-drop-column", 3)]
    [s] = result.suppressions
    assert (s.line, s.rules, s.reason, s.scope, s.used) == (
        1,
        ("ban-drop-column",),
        "unused since release 4.2",
        "statement",
        True,
    )


def test_trailing_form_suppresses_its_own_statement() -> None:
    result = check_sql(f"{DROP}  -- schemagate:ignore ban-drop-column -- unused since 4.2\nSELECT 1;\n")
    assert rules_of(result) == [] and result.suppressions[0].used


def test_file_form_suppresses_every_statement_of_the_file() -> None:
    sql = f"-- schemagate:ignore-file ban-drop-column -- legacy columns, unused since 4.2\n{DROP}\n{DROP}\n"
    result = check_sql(sql)
    assert rules_of(result) == []
    assert result.suppressions[0].scope == "file" and result.suppressions[0].used


def test_several_rules_in_one_ignore_and_unused_one_is_reported() -> None:
    sql = "-- schemagate:ignore ban-drop-column, renaming-column -- cleanup after 4.2\n" + DROP
    result = check_sql(sql)
    assert [(f.rule, f.line, f.severity) for f in result.findings] == [("suppression-unused", 1, "warning")]
    assert "renaming-column" in result.findings[0].message


def test_missing_reason_is_reported_and_still_applied() -> None:
    result = check_sql(f"-- schemagate:ignore ban-drop-column\n{DROP}")
    assert rules_of(result) == ["suppression-missing-reason"]
    assert result.findings[0].severity == "error" and result.findings[0].line == 1


def test_unknown_rule_is_reported_and_the_finding_stays() -> None:
    result = check_sql(f"-- schemagate:ignore ban-drop-colum -- typo\n{DROP}")
    assert sorted(rules_of(result)) == ["ban-drop-column", "suppression-unknown-rule"]
    assert "ban-drop-colum`" in next(
        f.message for f in result.findings if f.rule == "suppression-unknown-rule"
    )


def test_malformed_directive_is_reported() -> None:
    result = check_sql(f"-- schemagate:ignroe ban-drop-column -- typo\n{DROP}")
    assert sorted(rules_of(result)) == ["ban-drop-column", "suppression-malformed"]


def test_unused_suppression_is_reported() -> None:
    result = check_sql(
        "-- schemagate:ignore ban-drop-column -- unused since 4.2\nALTER TABLE t ADD COLUMN c text;"
    )
    assert rules_of(result) == ["suppression-unused"] and not result.suppressions[0].used


def test_ignore_after_the_last_statement_is_unused() -> None:
    result = check_sql(f"{DROP}\n-- schemagate:ignore ban-drop-column -- too late\n")
    assert sorted(rules_of(result)) == ["ban-drop-column", "suppression-unused"]


def test_directive_inside_a_string_or_function_body_is_not_a_comment() -> None:
    sql = (
        "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$ SELECT '-- schemagate:ignore x' $$;\n"
        "SELECT '-- schemagate:ignore ban-drop-column -- no';\n" + DROP
    )
    result = check_sql(sql)
    assert rules_of(result) == ["ban-drop-column"] and result.suppressions == []


def test_suppressions_serialise_for_the_report() -> None:
    result = check_sql(
        f"-- schemagate:ignore ban-drop-column -- unused since 4.2\n{DROP}", file="V7__drop.sql"
    )
    assert result.suppressions[0].to_dict() == {
        "file": "V7__drop.sql",
        "line": 1,
        "rules": ["ban-drop-column"],
        "reason": "unused since 4.2",
        "scope": "statement",
        "used": True,
    }


def test_header_settings_are_not_suppressions() -> None:
    sql = "-- schemagate:set lock_timeout=10s\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);"
    result = check_sql(sql)
    assert rules_of(result) == [] and result.suppressions == []
