"""ban-char-field: char(n) pads with spaces."""

from __future__ import annotations

from pglast import ast
from pglast.visitors import Ancestor

from validator.safety.catalog import type_name
from validator.safety.nodes import column_name, manual, table_column_context
from validator.safety.rule import Example, Rule, RuleDocs


class BanCharField(Rule):
    id = "ban-char-field"
    category = "style"
    squawk = "ban-char-field"
    severity = "warning"
    summary = "Use text (with a CHECK if needed) instead of char(n)."
    docs = RuleDocs(
        why="char(n) pads values with spaces, which are ignored in some comparisons and not in others "
        "(LIKE, concatenation, client code), is not faster than text, and changing n later can "
        "rewrite the table.",
        lock="none now; a later length change may take ACCESS EXCLUSIVE.",
        anti_pattern="CREATE TABLE countries (code char(2) PRIMARY KEY);",
        best_practice="CREATE TABLE countries (code text PRIMARY KEY CHECK (length(code) = 2));",
        manual=manual("datatype-character"),
    )
    examples = (
        Example("CREATE TABLE countries (code char(2) PRIMARY KEY);", True),
        Example("CREATE TABLE countries (code text PRIMARY KEY CHECK (length(code) = 2));", False),
    )
    cases = (
        Example("CREATE TABLE currencies (code character(3) PRIMARY KEY);", True),
        Example("CREATE TABLE flags (value character);", True, title="character without a length is char(1)"),
        Example("ALTER TABLE addresses ADD COLUMN country_code char(2);", True),
        Example("ALTER TABLE addresses ALTER COLUMN country_code TYPE bpchar(2);", True),
        Example("CREATE TABLE t (codes char(2)[], legacy nchar(10));", True),
        Example("CREATE TABLE currencies (code text PRIMARY KEY CHECK (code ~ '^[A-Z]{3}$'));", False),
        Example(
            'CREATE TABLE t (kind "char");', False, title='"char" is the one-byte internal type, not char(n)'
        ),
        Example("CREATE TABLE t (code varchar(3));", False),
        Example("SELECT 'x'::char(1);", False),
    )

    def visit_ColumnDef(self, ancestors: Ancestor, node: ast.ColumnDef) -> None:
        if table_column_context(ancestors) is None or node.typeName is None:
            return
        if type_name(node.typeName) == "bpchar":
            self.report(
                node.typeName,
                f"Column {column_name(ancestors, node)} is char(n), which pads values with "
                "spaces that some comparisons ignore and others do not.",
                "Use text, with CHECK (length(col) = n) if the length matters.",
            )
