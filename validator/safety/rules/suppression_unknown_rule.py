"""suppression-unknown-rule: an ignore comment naming a rule that does not exist."""

from __future__ import annotations

from validator.safety.rule import Example, Rule, RuleDocs

_OK = (
    "-- schemagate:ignore ban-drop-column -- unused since release 4.2\n"
    "ALTER TABLE users DROP COLUMN legacy_flag;"
)


class SuppressionUnknownRule(Rule):
    id = "suppression-unknown-rule"
    category = "suppressions"
    summary = "An ignore comment must name existing rule ids."
    docs = RuleDocs(
        why="A misspelt rule id suppresses nothing, so the finding the author meant to waive still blocks "
        "the bundle, or, worse, the author believes a rule is waived that is not.",
        lock="not applicable.",
        anti_pattern="-- schemagate:ignore ban-drop-colum -- unused since release 4.2\n"
        "ALTER TABLE users DROP COLUMN legacy_flag;",
        best_practice=_OK,
        manual="https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-COMMENTS",
    )
    examples = (
        Example(
            "-- schemagate:ignore ban-drop-colum -- unused since release 4.2\n"
            "ALTER TABLE users DROP COLUMN legacy_flag;",
            True,
        ),
        Example(_OK, False),
    )
    cases = (
        Example(
            "-- schemagate:ignore require-concurrent-index -- built off-hours\nCREATE INDEX i ON t (a);", True
        ),
        Example(
            "-- schemagate:ignore PG01 -- sqlfluff code\nCREATE INDEX i ON t (a);",
            True,
            title="a sqlfluff code",
        ),
        Example("-- schemagate:ignore-file prefer-robust-statements -- generated file\nSELECT 1;", True),
        Example("-- schemagate:ignore ban-drop-colum, ban-drop-table -- cleanup\nDROP TABLE legacy;", True),
        Example("-- schemagate:ignore ban-drop-table -- archived in S3\nDROP TABLE legacy;", False),
        Example("-- schemagate:ignore ban-drop-column, ban-drop-table -- cleanup\nDROP TABLE legacy;", False),
        Example(
            "-- schemagate:ignore-file prefer-bigint -- ids come from the partner system\nCREATE "
            "TABLE t (id int);",
            False,
        ),
        Example("SELECT '-- schemagate:ignore not-a-rule';", False, title="inside a string"),
    )
