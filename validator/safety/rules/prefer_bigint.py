"""prefer-bigint: integer/smallint identifiers run out."""

from __future__ import annotations

from typing import Any

from pglast import ast
from pglast.enums import ConstrType

from validator.safety.catalog import type_name
from validator.safety.nodes import column_name, constraints, manual, table_column_context
from validator.safety.rule import Example, Rule, RuleDocs

SMALL_INTS = {
    "int2": "smallint",
    "int4": "integer",
    "serial": "serial",
    "serial4": "serial",
    "smallserial": "smallserial",
    "serial2": "smallserial",
}


def _primary_key_columns(ancestors: Any) -> set[str]:
    create = ancestors.find_nearest(ast.CreateStmt)
    if create is None:
        return set()
    return {
        k.sval
        for c in create.node.tableElts or ()
        if isinstance(c, ast.Constraint) and c.contype == ConstrType.CONSTR_PRIMARY
        for k in c.keys or ()
    }


def id_like(ancestors: Any, node: Any, name: str) -> bool:
    return (
        name == "id"
        or name.endswith("_id")
        or bool(
            constraints(
                node, ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_FOREIGN
            )
        )
        or name in _primary_key_columns(ancestors)
    )


class PreferBigint(Rule):
    id = "prefer-bigint"
    category = "style"
    squawk = "prefer-bigint-over-int, prefer-bigint-over-smallint, prefer-big-int"
    severity = "warning"
    summary = "Use bigint for identifiers and the columns that reference them."
    docs = RuleDocs(
        why="An integer id runs out at 2,147,483,647 (smallint at 32,767); inserts then fail and widening "
        "the column later rewrites the table and every referencing table under ACCESS EXCLUSIVE locks.  "
        "bigint costs 4 more bytes per row.  Only id-like columns (primary keys, identity/serial, "
        "foreign keys, `id` and `*_id`) are reported; a `quantity integer` is fine.",
        lock="none now; a later type change takes ACCESS EXCLUSIVE and rewrites.",
        anti_pattern="CREATE TABLE orders (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "customer_id int);",
        best_practice="CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        "customer_id bigint);",
        manual=manual("datatype-numeric", "DATATYPE-INT"),
    )
    examples = (
        Example("CREATE TABLE orders (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY);", True),
        Example("CREATE TABLE orders (id bigint PRIMARY KEY, customer_id smallint);", True),
        Example("CREATE TABLE orders (id bigint PRIMARY KEY, quantity integer NOT NULL);", False),
    )

    def visit_ColumnDef(self, ancestors: Any, node: Any) -> None:
        if table_column_context(ancestors) is None or node.typeName is None:
            return
        kind = SMALL_INTS.get(type_name(node.typeName))
        name = column_name(ancestors, node)
        if kind is None or not id_like(ancestors, node, name):
            return
        self.report(
            node.typeName,
            f"Identifier column {name} is {kind}, which runs out of values; widening it "
            "later rewrites this table and every table referencing it.",
            "Use bigint (bigint GENERATED ... AS IDENTITY for generated keys).",
        )
