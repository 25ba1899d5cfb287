"""suppression-malformed: a schemagate: comment that is not a well-formed ignore."""

from __future__ import annotations

from validator.safety.rule import Example, Rule, RuleDocs

_OK = (
    "-- schemagate:ignore ban-drop-column -- unused since release 4.2\n"
    "ALTER TABLE users DROP COLUMN legacy_flag;"
)


class SuppressionMalformed(Rule):
    id = "suppression-malformed"
    category = "suppressions"
    summary = "A `-- schemagate:` comment must be `ignore` or `ignore-file` followed by rule ids."
    docs = RuleDocs(
        why="A misspelt directive (`schemagate:ignor`) or one without rule ids suppresses nothing; there is "
        "deliberately no blanket ignore-everything form.",
        lock="not applicable.",
        anti_pattern="-- schemagate:ignor ban-drop-column -- unused since release 4.2\n"
        "ALTER TABLE users DROP COLUMN legacy_flag;",
        best_practice=_OK + "\n-- or, for the whole file:\n"
        "-- schemagate:ignore-file prefer-robust-stmts -- one-off repair script",
        manual="https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-COMMENTS",
    )
    examples = (
        Example(
            "-- schemagate:ignor ban-drop-column -- unused since release 4.2\n"
            "ALTER TABLE users DROP COLUMN legacy_flag;",
            True,
        ),
        Example(
            "-- schemagate:ignore -- everything is fine\nALTER TABLE users DROP COLUMN legacy_flag;",
            True,
            title="no rule named",
        ),
        Example(_OK, False),
    )
    cases = (
        Example("-- schemagate:ignored ban-drop-table -- cleanup\nDROP TABLE legacy;", True),
        Example("-- schemagate:disable ban-drop-table -- cleanup\nDROP TABLE legacy;", True),
        Example("-- schemagate:ignore-all -- cleanup\nDROP TABLE legacy;", True),
        Example("-- schemagate:ignore-file -- generated\nSELECT 1;", True),
        Example("-- schemagate:ignore ban-drop-table -- archived in S3\nDROP TABLE legacy;", False),
        Example("-- schemagate:set statement_timeout=1h\nREFRESH MATERIALIZED VIEW CONCURRENTLY v;", False),
        Example("/* schemagate is great */\nSELECT 1;", False),
        Example("-- see docs/schemagate.md\nSELECT 1;", False),
    )
