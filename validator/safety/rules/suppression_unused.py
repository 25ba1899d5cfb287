"""suppression-unused: an ignore comment that suppresses nothing."""

from __future__ import annotations

from validator.safety.rule import Example, Rule, RuleDocs


class SuppressionUnused(Rule):
    id = "suppression-unused"
    squawk = "unused-ignore"
    category = "suppressions"
    severity = "warning"
    summary = "An ignore comment that suppresses nothing is reported."
    docs = RuleDocs(
        why="A stale or misplaced ignore (above the wrong statement, or left after the statement changed) "
        "waives nothing today and will silently hide the next real finding that appears there.",
        lock="not applicable.",
        anti_pattern="-- schemagate:ignore ban-drop-column -- unused since release 4.2\n"
        "ALTER TABLE users ADD COLUMN note text;",
        best_practice="ALTER TABLE users ADD COLUMN note text;",
        manual="https://www.postgresql.org/docs/current/sql-syntax-lexical.html#SQL-SYNTAX-COMMENTS",
    )
    examples = (
        Example(
            "-- schemagate:ignore ban-drop-column -- unused since release 4.2\n"
            "ALTER TABLE users ADD COLUMN note text;",
            True,
        ),
        Example(
            "-- schemagate:ignore-file ban-drop-column -- legacy columns, unused since 4.2\n"
            "ALTER TABLE users ADD COLUMN note text;",
            True,
            title="file-wide ignores are audited too",
        ),
        Example(
            "-- schemagate:ignore ban-drop-column -- unused since release 4.2\n"
            "ALTER TABLE users DROP COLUMN legacy_flag;",
            False,
        ),
    )
    cases = (
        Example(
            "-- schemagate:ignore ban-drop-table -- archived in S3\nDROP VIEW legacy_view;\nDROP TABLE "
            "legacy;",
            True,
            title="not directly above the statement it means",
        ),
        Example(
            "-- schemagate:ignore ban-drop-column, ban-drop-table -- cleanup\nALTER TABLE users DROP "
            "COLUMN legacy_flag;",
            True,
            title="one of two rules suppresses nothing",
        ),
        Example(
            "SELECT 1;\n-- schemagate:ignore ban-drop-table -- cleanup", True, title="no statement follows"
        ),
        Example(
            "-- schemagate:ignore-file ban-drop-table -- cleanup\nDROP TABLE legacy_a;\nDROP TABLE legacy_b;",
            False,
        ),
        Example(
            "ALTER TABLE users DROP COLUMN legacy_flag;  -- schemagate:ignore ban-drop-column -- unused "
            "since 4.2",
            False,
        ),
        Example(
            "-- schemagate:ignore ban-drop-column, ban-drop-table -- cleanup\n"
            "ALTER TABLE users DROP COLUMN legacy_flag;\n"
            "-- schemagate:ignore ban-drop-table -- archived in S3\nDROP TABLE legacy;",
            True,
        ),
        Example("-- schemagate:ignore ban-drop-table -- archived in S3\nDROP TABLE legacy;", False),
        Example("-- schemagate:ignore prefer-bigint -- partner ids\nCREATE TABLE t (id int);", False),
    )
