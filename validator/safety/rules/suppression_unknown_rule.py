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
