"""prefer-bigint: integer/smallint identifiers run out."""

from __future__ import annotations

from pglast import ast
from pglast.enums import ConstrType
from pglast.visitors import Ancestor

from validator.safety.catalog import type_name
from validator.safety.nodes import column_name, constraints, manual, nearest, sval, table_column_context
from validator.safety.rule import Example, Rule, RuleDocs

SMALL_INTS = {
    "int2": "smallint",
    "int4": "integer",
    "serial": "serial",
    "serial4": "serial",
    "smallserial": "smallserial",
    "serial2": "smallserial",
}


def _primary_key_columns(ancestors: Ancestor) -> set[str]:
    create = nearest(ancestors, ast.CreateStmt)
    if create is None:
        return set()
    return {
        sval(k, "Constraint.keys")
        for c in create.tableElts or ()
        if isinstance(c, ast.Constraint) and c.contype == ConstrType.CONSTR_PRIMARY
        for k in c.keys or ()
    }


def id_like(ancestors: Ancestor, node: ast.ColumnDef, name: str) -> bool:
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
    squawk = "prefer-bigint-over-int, prefer-bigint-over-smallint"
    severity = "warning"
    summary = "Use bigint instead of integer or smallint for stored columns (ids above all)."
    docs = RuleDocs(
        why="An integer column runs out at 2,147,483,647 (smallint at 32,767): inserts then fail, and "
        "widening the column later rewrites the table (and, for an id, every referencing table) under "
        "ACCESS EXCLUSIVE locks.  bigint costs 4 more bytes per row.  Every spelling is reported: "
        "integer, int, int4, smallint, int2, serial, serial4, smallserial, serial2, arrays of them, in "
        "CREATE TABLE, ADD COLUMN and ALTER COLUMN ... TYPE; id-like columns (primary keys, identity, "
        "foreign keys, `id` and `*_id`) say so, because they grow with every row.",
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
        Example("CREATE TABLE orders (id bigint PRIMARY KEY, quantity bigint NOT NULL);", False),
        Example(
            "CREATE TYPE money_amount AS (cents integer, currency text);", False, title="not a table column"
        ),
    )
    cases = (
        Example(
            'CREATE TABLE "Order" (\n    "id" SERIAL NOT NULL,\n    CONSTRAINT "Order_pkey" PRIMARY '
            'KEY ("id")\n);',
            True,
        ),
        Example("CREATE TABLE tags (id bigint PRIMARY KEY, related_ids int4[]);", True, title="an array"),
        Example("CREATE TABLE line_items (id bigserial PRIMARY KEY, quantity integer NOT NULL);", True),
        Example("ALTER TABLE orders ADD COLUMN coupon_id int;", True),
        Example("ALTER TABLE orders ALTER COLUMN position TYPE int2;", True),
        Example("CREATE TABLE counters (id serial4 PRIMARY KEY, n smallserial);", True),
        Example('ALTER TABLE "Payment" ADD COLUMN     "attempt" INTEGER NOT NULL DEFAULT 0;', True),
        Example(
            "CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text);", False
        ),
        Example("CREATE TABLE t (id int8 PRIMARY KEY, n serial8, m bigserial);", False),
        Example(
            "CREATE FUNCTION add_one(n integer) RETURNS integer LANGUAGE sql AS $$ SELECT n + 1 $$;", False
        ),
        Example("ALTER TABLE orders ALTER COLUMN id TYPE bigint;", False),
        Example("CREATE TABLE prices (id bigint PRIMARY KEY, amount numeric(12, 2), ratio real);", False),
        Example("SELECT count(*)::integer FROM orders;", False),
    )

    def visit_ColumnDef(self, ancestors: Ancestor, node: ast.ColumnDef) -> None:
        if table_column_context(ancestors) is None or node.typeName is None:
            return
        kind = SMALL_INTS.get(type_name(node.typeName))
        if kind is None:
            return
        name = column_name(ancestors, node)
        array = "[]" if node.typeName.arrayBounds else ""
        limit = "32,767" if "small" in kind else "2,147,483,647"
        if id_like(ancestors, node, name):
            message = (
                f"Identifier column {name} is {kind}{array}, which runs out at {limit}; widening it later "
                "rewrites this table and every table referencing it."
            )
        else:
            message = (
                f"Column {name} is {kind}{array}, which stops at {limit}; widening it later rewrites the "
                f"table "
                "under an ACCESS EXCLUSIVE lock."
            )
        self.report(
            node.typeName, message, "Use bigint (bigint GENERATED ... AS IDENTITY for generated keys)."
        )
