"""suppression-missing-reason: an ignore comment without a reason."""

from __future__ import annotations

from validator.safety.rule import Example, Rule, RuleDocs

_OK = (
    "-- schemagate:ignore ban-drop-column -- unused since release 4.2\n"
    "ALTER TABLE users DROP COLUMN legacy_flag;"
)


class SuppressionMissingReason(Rule):
    id = "suppression-missing-reason"
    category = "suppressions"
    summary = "An ignore comment must say why the rule is waived."
    docs = RuleDocs(
        why="The approver sees every suppression in the report; without a reason they cannot tell a "
        "considered waiver from a silenced alarm.  The suppression still applies, but the bundle is "
        "blocked until the reason is written.",
        lock="not applicable.",
        anti_pattern="-- schemagate:ignore ban-drop-column\nALTER TABLE users DROP COLUMN legacy_flag;",
        best_practice=_OK,
        manual="https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-COMMENTS",
    )
    examples = (
        Example("-- schemagate:ignore ban-drop-column\nALTER TABLE users DROP COLUMN legacy_flag;", True),
        Example(_OK, False),
    )
    cases = (
        Example("ALTER TABLE users DROP COLUMN legacy_flag;  -- schemagate:ignore ban-drop-column", True),
        Example("-- schemagate:ignore-file prefer-robust-stmts\nCREATE INDEX CONCURRENTLY i ON t (a);", True),
        Example(
            "-- schemagate:ignore ban-drop-column --\nALTER TABLE users DROP COLUMN legacy_flag;",
            True,
            title="an empty reason",
        ),
        Example("-- schemagate:ignore ban-drop-column, ban-drop-table\nDROP TABLE legacy;", True),
        Example(
            "ALTER TABLE users DROP COLUMN legacy_flag;  -- schemagate:ignore ban-drop-column -- unused "
            "since 4.2",
            False,
        ),
        Example(
            "-- schemagate:ignore-file prefer-robust-stmts -- one-off repair, run by hand before\n"
            "CREATE INDEX CONCURRENTLY i ON t (a);",
            False,
        ),
        Example("-- a comment that only mentions schemagate\nSELECT 1;", False),
        Example("-- schemagate:set lock_timeout=5s\nALTER TABLE users ADD COLUMN note text;", False),
    )
