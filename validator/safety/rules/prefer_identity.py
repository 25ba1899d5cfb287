"""prefer-identity: serial columns instead of identity columns."""

from __future__ import annotations

from typing import Any

from validator.safety.catalog import type_name
from validator.safety.nodes import column_name, manual, table_column_context
from validator.safety.rule import Example, Rule, RuleDocs

SERIALS = {
    "serial": "integer",
    "serial4": "integer",
    "bigserial": "bigint",
    "serial8": "bigint",
    "smallserial": "smallint",
    "serial2": "smallint",
}


class PreferIdentity(Rule):
    id = "prefer-identity"
    category = "style"
    squawk = "prefer-identity"
    severity = "warning"
    summary = "Use GENERATED ... AS IDENTITY instead of serial."
    docs = RuleDocs(
        why="A serial column's sequence is a separate object with its own owner and grants: permissions, "
        "copies (CREATE TABLE ... LIKE) and dumps get it wrong, and nothing stops writes that bypass "
        "it.  Identity columns (SQL standard, PostgreSQL 10+) keep the sequence part of the column.",
        lock="none.",
        anti_pattern="CREATE TABLE orders (id bigserial PRIMARY KEY);",
        best_practice="CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);",
        manual=manual("sql-createtable", "SQL-CREATETABLE-PARMS-GENERATED-IDENTITY"),
    )
    examples = (
        Example("CREATE TABLE orders (id bigserial PRIMARY KEY);", True),
        Example("CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);", False),
    )

    def visit_ColumnDef(self, ancestors: Any, node: Any) -> None:
        if table_column_context(ancestors) is None or node.typeName is None:
            return
        base = SERIALS.get(type_name(node.typeName))
        if base is not None:
            self.report(
                node.typeName,
                f"Column {column_name(ancestors, node)} is {type_name(node.typeName)}, whose "
                "sequence is a separate object with its own grants and ownership.",
                f"Use {base if base != 'integer' else 'bigint'} GENERATED ALWAYS AS IDENTITY.",
            )
