"""changing-column-type: ALTER COLUMN ... TYPE rewrites the table (unless it is known not to)."""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType
from pglast.visitors import Ancestor

from validator.safety.catalog import type_mods, type_name
from validator.safety.nodes import altered_table, cmd_name, manual, qualified, relname
from validator.safety.rule import Example, Rule, RuleDocs

_TEXTUAL = {"varchar", "text"}


def rewrite_free(old: ast.TypeName | None, new: ast.TypeName | None) -> bool:
    """Type changes PostgreSQL does without rewriting or scanning: varchar(n) -> varchar(m >= n),
    varchar or text; text -> varchar; numeric(p, s) -> numeric(q >= p, s) or numeric."""
    if old is None:
        return False
    o, n = type_name(old), type_name(new)
    om, nm = type_mods(old), type_mods(new)
    if o in _TEXTUAL and n in _TEXTUAL:
        if n == "text" or nm is None:
            return True
        return o == "varchar" and om is not None and nm[0] >= om[0]
    if o == n == "numeric":
        if nm is None:
            return True
        return om is not None and len(om) == len(nm) and nm[0] >= om[0] and om[1:] == nm[1:]
    return False


class ChangingColumnType(Rule):
    id = "changing-column-type"
    category = "locking"
    squawk = "changing-column-type"
    summary = "Changing a column's type usually rewrites the table and its indexes."
    docs = RuleDocs(
        why="Most type changes (int -> bigint, text -> int, anything with USING) rewrite every row and "
        "rebuild every index under an ACCESS EXCLUSIVE lock, and change what the running application "
        "reads.  Only binary-compatible changes (varchar(n) -> varchar(m > n) or text, raising a "
        "numeric's precision) are metadata-only; schemagate allows those when an earlier migration "
        "shows the old type.",
        lock="ACCESS EXCLUSIVE on the table for the rewrite.",
        anti_pattern="ALTER TABLE orders ALTER COLUMN id TYPE bigint;",
        best_practice="-- add a new column, write both, backfill in batches, switch reads, drop the old\n"
        "ALTER TABLE orders ADD COLUMN id_new bigint;",
        manual=manual("sql-altertable", "SQL-ALTERTABLE-NOTES"),
    )
    examples = (
        Example("ALTER TABLE orders ALTER COLUMN id TYPE bigint;", True),
        Example(
            {
                "V1__users.sql": "CREATE TABLE users (id bigint PRIMARY KEY, name varchar(50));",
                "V2__wider_name.sql": "ALTER TABLE users ALTER COLUMN name TYPE text;",
            },
            False,
            title="widening varchar to text is metadata-only (old type known from V1)",
        ),
        Example(
            {
                "V1__users.sql": "CREATE TABLE users (id bigint PRIMARY KEY, name varchar(50));",
                "V2__narrow_name.sql": "ALTER TABLE users ALTER COLUMN name TYPE varchar(20);",
            },
            True,
            title="narrowing must check every row",
        ),
        Example("CREATE TABLE orders (id int);\nALTER TABLE orders ALTER COLUMN id TYPE bigint;", False),
    )
    cases = (
        Example('ALTER TABLE "Order" ALTER COLUMN "total" SET DATA TYPE DECIMAL(12,2);', True),
        Example("ALTER TABLE events ALTER COLUMN payload TYPE jsonb USING payload::jsonb;", True),
        Example("ALTER TABLE users ALTER COLUMN created_at TYPE timestamptz;", True),
        Example(
            {
                "V1__orders.sql": "CREATE TABLE orders (id bigint PRIMARY KEY, total numeric(10, 2));",
                "V2__precision.sql": "ALTER TABLE orders ALTER COLUMN total TYPE numeric(14, 2);",
            },
            False,
            title="raising a numeric's precision is metadata-only",
        ),
        Example(
            {
                "V1__users.sql": "CREATE TABLE users (id bigint PRIMARY KEY, name varchar(50));",
                "V2__wider.sql": "ALTER TABLE users ALTER COLUMN name TYPE varchar(100);",
            },
            False,
        ),
        Example("ALTER TABLE users ALTER COLUMN name SET DEFAULT '';", False),
    )

    def visit_AlterTableCmd(self, ancestors: Ancestor, node: ast.AlterTableCmd) -> None:
        if node.subtype != AlterTableType.AT_AlterColumnType:
            return
        table = altered_table(ancestors)
        if table is None or self.ctx.is_new_table(table):
            return
        coldef = node.def_ if isinstance(node.def_, ast.ColumnDef) else None
        new = coldef.typeName if coldef is not None else None
        using = coldef is not None and coldef.raw_default is not None
        if not using and rewrite_free(self.ctx.catalog.column_type(relname(table), cmd_name(node)), new):
            return
        self.report(
            new if new is not None else table,
            f"Changing the type of {qualified(table)}.{node.name} rewrites the table and its indexes "
            "under an ACCESS EXCLUSIVE lock and changes what running code reads.",
            "Add a new column of the new type, backfill it in batches, switch the application, then "
            "drop the old column.",
        )
