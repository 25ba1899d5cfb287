"""The data probe: before the rehearsal runs a new migration that holds a data-dependent statement
(safety rule ``data-dependent-change``: a unique index or constraint, SET NOT NULL, a validated
CHECK or foreign key, VALIDATE CONSTRAINT, a narrowing type change), it runs the migration's
statements up to that one on rows that statement cannot accept, and records whether it fails and
with which SQLSTATE.  The rehearsal database is otherwise empty, so there the statement always
succeeds; production has rows.

Where: in a transaction of a second connection to the rehearsal database, rolled back, so the
real run never sees the rows.  ``CREATE DATABASE ... TEMPLATE`` is not an option: the executor's
run keeps its connection to the database open between migrations, and PostgreSQL copies a
database only when nobody is connected to it.  A statement that cannot run in a transaction
(``CREATE INDEX CONCURRENTLY``) is run without ``CONCURRENTLY``: its check of the rows is the same
(``23505`` on a duplicate); another one stops the probe (``not probed``).  Sequences are the one
thing a rollback does not undo: their values are read before and set back after.

Rows, per kind: two rows sharing the key (for ``lower(email)``: the same address differing only
in case); a NULL; for a CHECK of a simple form (``col op constant``, ``col IN (...)``, ``col
BETWEEN a AND b``, ``length(col) op n``, ``col IS NOT NULL``, ANDed) a value breaking it; for a
foreign key a row whose key has no match; for a type change a value the new type refuses (out of
range, too long, not a number).  The other columns get values their types accept (from the
catalog: pg_attribute, pg_attrdef, pg_constraint, pg_enum), their defaults, or NULL; a NOT NULL
foreign key gets a parent row.  What cannot be filled, or a row the table's other constraints
refuse, is reported as "not probed" with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg2
from pglast import ast, parse_sql
from pglast.enums import A_Expr_Kind, BoolExprType, NullTestType
from pglast.stream import RawStream
from psycopg2 import sql
from psycopg2.extensions import connection as Connection
from psycopg2.extensions import cursor as Cursor

from executor.connection import scalar
from executor.manifest import ManifestEntry
from validator.rehearsal.outcome import DataProbeResult
from validator.rehearsal.server import connect

if TYPE_CHECKING:
    from validator.parsed import ParsedFile, Statement
    from validator.safety.rules.data_dependent_change import DataDependentStatement

PROBE_LOCK_TIMEOUT = "5s"  # nothing else uses the rehearsal database; a wait means a bug
PROBE_STATEMENT_TIMEOUT = "60s"
_INT_MAX = {"int2": 32767, "int4": 2147483647, "int8": 9223372036854775807}
_TEXTUAL = {"text", "varchar", "bpchar"}


class NotProbed(Exception):
    """The probe could not make or insert the rows; the message says why."""


def data_dependent_statements(
    files: Sequence[ParsedFile], *, judged: set[str], target_postgres: int
) -> dict[str, list[DataDependentStatement]]:
    """The data-dependent statements of the ``judged`` files (``files`` in application order, for
    what the earlier ones created), by file: the safety rule's own analysis, as data."""
    from validator.safety.engine import run_rules
    from validator.safety.rules.data_dependent_change import DataDependentChange

    found: dict[str, list[DataDependentStatement]] = {}

    class _Collect(DataDependentChange):
        def _found(self, statement: DataDependentStatement) -> None:
            found.setdefault(self.ctx.file.rel, []).append(statement)

    parsed = [f for f in files if getattr(f, "statements", None) is not None]
    run_rules(parsed, [_Collect], target_postgres=target_postgres, judged=judged)
    return found


# -- the catalog -----------------------------------------------------------------------------------


@dataclass
class Column:
    name: str
    type_sql: str  # format_type: what a value is cast to
    typname: str  # of the base type for a domain
    category: str  # pg_type.typcategory of the base type
    typtype: str
    type_oid: int
    typmod: int
    not_null: bool
    default: str | None
    identity: str  # '', 'a' (ALWAYS), 'd' (BY DEFAULT)
    generated: bool

    @property
    def serial(self) -> bool:
        return bool(self.identity) or (self.default or "").startswith("nextval(")


@dataclass
class Table:
    oid: int
    name: str  # qualified, quoted
    columns: dict[str, Column]
    foreign_keys: list[tuple[str, list[str], int, list[str]]]  # (name, columns, parent oid, parent columns)
    checks: list[tuple[str, str]]  # (name, definition)


def _table(cur: Cursor, schema: str | None, name: str) -> Table:
    ident = sql.Identifier(schema, name) if schema else sql.Identifier(name)
    cur.execute(sql.SQL("SELECT to_regclass(%s)::oid"), [ident.as_string(cur)])
    row = cur.fetchone()
    if row is None or row[0] is None:
        raise NotProbed(f"table {'.'.join(filter(None, (schema, name)))} does not exist before the migration")
    return _table_by_oid(cur, int(row[0]))


def _table_by_oid(cur: Cursor, oid: int) -> Table:
    cur.execute(
        """
        SELECT a.attname, format_type(a.atttypid, a.atttypmod),
               coalesce(bt.typname, t.typname), coalesce(bt.typcategory, t.typcategory), t.typtype,
               coalesce(bt.oid, t.oid), CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
               a.attnotnull OR coalesce(t.typnotnull, false), pg_get_expr(d.adbin, d.adrelid),
               a.attidentity, a.attgenerated <> ''
        FROM pg_attribute a
        JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum
        """,
        [oid],
    )
    columns = {
        r[0]: Column(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6]), bool(r[7]), r[8], r[9], bool(r[10]))
        for r in cur.fetchall()
    }
    cur.execute(
        """
        SELECT con.conname, con.contype, con.confrelid,
               ARRAY(SELECT attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute ON attrelid = con.conrelid AND attnum = k.n ORDER BY k.i),
               ARRAY(SELECT attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute ON attrelid = con.confrelid AND attnum = k.n ORDER BY k.i),
               pg_get_constraintdef(con.oid)
        FROM pg_constraint con WHERE con.conrelid = %s AND con.contype IN ('f', 'c')
        ORDER BY con.conname
        """,
        [oid],
    )
    fks, checks = [], []
    for name, contype, parent, cols, pcols, definition in cur.fetchall():
        if contype == "f":
            fks.append((name, list(cols), int(parent), list(pcols or [])))
        else:
            checks.append((name, definition))
    qualified = str(scalar(cur, "SELECT %s::regclass::text", [oid]))
    return Table(oid, qualified, columns, fks, checks)


def _primary_key(cur: Cursor, oid: int) -> list[str]:
    cur.execute(
        """
        SELECT ARRAY(SELECT attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute ON attrelid = con.conrelid AND attnum = k.n ORDER BY k.i)
        FROM pg_constraint con WHERE con.conrelid = %s AND con.contype = 'p'
        """,
        [oid],
    )
    row = cur.fetchone()
    return list(row[0]) if row else []


def _literal(cur: Cursor, value: object) -> str:
    return cur.mogrify("%s", [value]).decode("utf-8")


# -- values ----------------------------------------------------------------------------------------


class Rows:
    """The rows of one probe, built column by column and inserted in dependency order."""

    def __init__(self, cur: Cursor, token: int) -> None:
        self.cur = cur
        self.token = token  # makes generated values differ between rows and probes
        self.serial = 0

    def next(self) -> int:
        self.serial += 1
        return self.serial

    def fixed(self, expr: str, col: Column) -> str:
        """``expr`` evaluated now, as a literal (a "past the largest" value changes as rows go in)."""
        self.cur.execute(f"SELECT ({expr})::text")
        row = self.cur.fetchone()
        return f"{_literal(self.cur, row[0] if row else None)}::{col.type_sql}"

    def value(self, table: Table, col: Column) -> str:
        """An SQL expression of ``col``'s type that its type accepts, different for each call."""
        n = self.next()
        cat, typ, cast = col.category, col.typname, col.type_sql
        ident = sql.Identifier(col.name).as_string(self.cur)
        if col.typtype == "e" or (col.typtype == "d" and cat == "E"):
            self.cur.execute(
                "SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder LIMIT 1",
                [col.type_oid],
            )
            row = self.cur.fetchone()
            if row is None:
                raise NotProbed(f"enum {cast} of column {col.name} has no value")
            return f"{_literal(self.cur, row[0])}::{cast}"
        if cat == "N":
            # past the largest value there: new for a key, and without a match in a parent
            return f"(SELECT coalesce(max({ident}), 0) + {n} FROM {table.name})::{cast}"
        if cat == "S":
            length = col.typmod - 4 if col.typmod > 4 and typ in ("varchar", "bpchar") else None
            text = f"{col.name[:12]}-{self.token % 100000}-{n}"
            if "email" in col.name.lower():
                text = f"probe{self.token % 100000}.{n}@example.com"
            if length is not None and len(text) > length:
                text = f"{n:x}{self.token:x}"[:length]
            return f"{_literal(self.cur, text)}::{cast}"
        if cat == "B":
            return f"false::{cast}"
        if cat == "D":
            return f"(now() + interval '{n} day')::{cast}"
        if cat == "T":
            return f"(interval '1 day' * {n})::{cast}"
        if cat == "A":
            return f"'{{}}'::{cast}"
        if cat == "I":
            return f"'192.0.2.{n % 250 + 1}'::{cast}"
        if typ == "uuid":
            return f"md5('probe{self.token}-{n}')::uuid::{cast}"
        if typ in ("json", "jsonb"):
            return f"{typ}_build_object('probe', {n})::{cast}"
        if typ == "bytea":
            return f"'\\x{n % 256:02x}'::{cast}"
        raise NotProbed(f"no value for column {col.name} of type {cast}")

    def insert(
        self, table: Table, given: dict[str, str], *, depth: int = 0, returning: Sequence[str] = ()
    ) -> list[str]:
        """Insert one row of ``table`` with the ``given`` SQL values: a serial or identity column
        takes its sequence's next value, as real rows do (the probe sets sequences back); a NOT
        NULL foreign key points at a parent row made for it; another NOT NULL column without a
        default gets a value of its type; the rest their default or NULL.  Returns the
        ``returning`` columns' values as text."""
        values = dict(given)
        referencing = {c for _, cols, _, _ in table.foreign_keys for c in cols}
        for col in table.columns.values():
            if col.name in values or col.generated or col.serial or col.name in referencing:
                continue
            if col.not_null and col.default is None:
                values[col.name] = self.value(table, col)
        for _name, cols, parent, pcols in table.foreign_keys:
            if any(c in values for c in cols):
                continue
            if all(not table.columns[c].not_null or table.columns[c].default is not None for c in cols):
                continue  # NULL (or the default) needs no parent
            if depth >= 3:
                raise NotProbed(f"the foreign keys of {table.name} nest too deep to fill")
            keys = self.insert(_table_by_oid(self.cur, parent), {}, depth=depth + 1, returning=pcols)
            for c, key in zip(cols, keys, strict=True):
                values[c] = f"{_literal(self.cur, key)}::{table.columns[c].type_sql}"
        return self.execute_insert(table, values, returning)

    def execute_insert(
        self, table: Table, values: dict[str, str], returning: Sequence[str] = ()
    ) -> list[str]:
        names = list(values)
        overriding = any(table.columns[n].identity == "a" for n in names)
        statement = (
            f"INSERT INTO {table.name} ("
            + ", ".join(sql.Identifier(n).as_string(self.cur) for n in names)
            + ")"
            + (" OVERRIDING SYSTEM VALUE" if overriding else "")
            + f" VALUES ({', '.join(values[n] for n in names)})"
            if names
            else f"INSERT INTO {table.name} DEFAULT VALUES"
        )
        if returning:
            statement += " RETURNING " + ", ".join(
                f"{sql.Identifier(c).as_string(self.cur)}::text" for c in returning
            )
        try:
            self.cur.execute("SAVEPOINT sg_probe_row")
            self.cur.execute(statement)
            row = self.cur.fetchone() if returning else None
            self.cur.execute("RELEASE SAVEPOINT sg_probe_row")
        except psycopg2.Error as exc:
            self.cur.execute("ROLLBACK TO SAVEPOINT sg_probe_row")
            raise NotProbed(f"the table refuses the probe's row ({exc.pgcode} {_first_line(exc)})") from None
        return [str(v) for v in row] if row else []


def _first_line(exc: psycopg2.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag is not None else None
    return primary or str(exc).strip().splitlines()[0]


# -- what each kind of statement is probed with ---------------------------------------------------


@dataclass
class Plan:
    """How one statement is probed: what goes in before the migration runs."""

    rows: str  # "rows that hold ...", for the message
    prepare: Callable[[Rows, Table], object]
    before: list[str] = field(default_factory=list)  # SQL run before the rows go in
    after: list[str] = field(default_factory=list)  # and after


def _unique_plan(cur: Cursor, target: DataDependentStatement, table: Table) -> Plan:
    if target.partial:
        raise NotProbed("a partial unique index: the rows would have to match its WHERE clause")
    if not target.key or any(column is None for column, _ in target.key):
        raise NotProbed("a key expression other than a column, lower(column) or upper(column)")
    shared: dict[str, tuple[str, str]] = {}
    described = []
    for column, fn in target.key:
        assert column is not None
        col = table.columns.get(column)
        if col is None:
            raise NotProbed(f"column {column} is not in {table.name} before the migration")
        if fn and col.category == "S":
            base = "Ann.Lee@example.com" if "email" in column.lower() else "Probe Value"
            first, second = base, base.lower() if fn == "lower" else base.upper()
            shared[column] = (_literal(cur, first), _literal(cur, second))
            described.append(f"{column} differing only in case ({first!r}, {second!r})")
        else:
            rows = Rows(cur, 0)
            fixed = rows.fixed(rows.value(table, col), col)  # evaluated once: both rows share it
            if col.category == "S" and "email" in column.lower():
                fixed = _literal(cur, "ann.lee@example.com")
            shared[column] = (fixed, fixed)
            described.append(column)

    def prepare(rows: Rows, t: Table) -> None:
        for i in (0, 1):
            rows.insert(t, {c: pair[i] for c, pair in shared.items()})

    return Plan("two rows sharing " + " and ".join(described), prepare)


def _not_null_plan(target: DataDependentStatement, table: Table) -> Plan:
    [column] = target.columns
    if column not in table.columns:
        raise NotProbed(f"column {column} is not in {table.name} before the migration")
    if table.columns[column].not_null:
        raise NotProbed(f"column {column} is already NOT NULL: no row can hold a NULL")
    return Plan(f"a row holding NULL in {column}", lambda rows, t: rows.insert(t, {column: "NULL"}))


def _const(node: Any) -> Any:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.A_Const) and not node.isnull:
        val = node.val
        for attr in ("ival", "fval", "sval", "boolval"):
            if hasattr(val, attr):
                return getattr(val, attr)
    raise NotProbed("the CHECK compares with something other than a constant")


def _column(node: Any) -> str:
    fields: Any = node.fields if isinstance(node, ast.ColumnRef) else None
    if fields and isinstance(fields[-1], ast.String):
        return str(fields[-1].sval)
    raise NotProbed(
        "the CHECK tests an expression other than a column (the probe breaks column op constant, IN, "
        "BETWEEN, length(column) op n and IS NOT NULL)"
    )


def _node(node: Any) -> str:
    """The pglast node's class name (its attributes are typed too loosely to narrow on)."""
    return type(node).__name__


def _breaking(cur: Cursor, node: Any, table: Table) -> tuple[str, str, str]:
    """(column, SQL value, description) of a value that makes the expression ``node`` false."""
    expr: Any = node  # pglast's node attributes are typed loosely
    if _node(expr) == "BoolExpr" and expr.boolop == BoolExprType.AND_EXPR:
        problems = []
        for arg in expr.args:  # breaking one conjunct breaks the whole
            try:
                return _breaking(cur, arg, table)
            except NotProbed as exc:
                problems.append(str(exc))
        raise NotProbed(problems[0])
    if _node(expr) == "NullTest" and expr.nulltesttype == NullTestType.IS_NOT_NULL:
        column = _column(expr.arg)
        return column, "NULL", f"NULL in {column}"
    if _node(expr) == "A_Expr":
        if expr.kind == A_Expr_Kind.AEXPR_OP and len(expr.name) == 1:
            op = expr.name[0].sval
            left = expr.lexpr
            if _node(left) == "FuncCall" and left.funcname[-1].sval.lower() in (
                "length",
                "char_length",
                "character_length",
            ):
                column = _column(left.args[0])
                n = int(_const(expr.rexpr))
                length = {">": n, ">=": n - 1, "<": n, "<=": n + 1, "=": n + 1, "<>": n}.get(op)
                if length is None or length < 0:
                    raise NotProbed(f"the CHECK's operator {op} on a length")
                return column, _literal(cur, "x" * length), f"a {column} of {length} character(s)"
            column = _column(left)
            value = _const(expr.rexpr)
            col = table.columns.get(column)
            if col is None:
                raise NotProbed(f"column {column} is not in {table.name} before the migration")
            if isinstance(value, int | float) or (isinstance(value, str) and col.category == "N"):
                v = _literal(cur, str(value))
                sql_value = {
                    ">": f"({v})::numeric",
                    ">=": f"({v})::numeric - 1",
                    "<": f"({v})::numeric",
                    "<=": f"({v})::numeric + 1",
                    "=": f"({v})::numeric + 1",
                    "<>": f"({v})::numeric",
                }.get(op)
                if sql_value is None:
                    raise NotProbed(f"the CHECK's operator {op}")
                shown = scalar(cur, f"SELECT ({sql_value})::{col.type_sql}::text")
                return column, f"{_literal(cur, shown)}::{col.type_sql}", f"{column} = {shown}"
            if isinstance(value, str) and op in ("=", "<>"):
                text = value + "-other" if op == "=" else value
                return column, f"{_literal(cur, text)}::{col.type_sql}", f"{column} = {text!r}"
            raise NotProbed(f"the CHECK's operator {op} on {column}")
        if expr.kind == A_Expr_Kind.AEXPR_IN and expr.name[0].sval == "=":
            column = _column(expr.lexpr)
            listed = [_const(v) for v in expr.rexpr]
            col = table.columns.get(column)
            if col is None:
                raise NotProbed(f"column {column} is not in {table.name} before the migration")
            if all(isinstance(v, int) for v in listed):
                outside: Any = max(listed) + 1
            else:
                outside = "unknown"
                while outside in listed:
                    outside += "-x"
            return column, f"{_literal(cur, str(outside))}::{col.type_sql}", f"{column} = {outside!r}"
        if expr.kind == A_Expr_Kind.AEXPR_BETWEEN:
            column = _column(expr.lexpr)
            low = _const(expr.rexpr[0])
            col = table.columns.get(column)
            if col is None or not isinstance(low, int | float):
                raise NotProbed(f"the CHECK's BETWEEN on {column}")
            return column, f"({low} - 1)::{col.type_sql}", f"{column} = {low - 1}"
    raise NotProbed("the CHECK is not of a form the probe breaks (column op constant, IN, BETWEEN, length)")


def _check_plan(cur: Cursor, expr: Any, table: Table) -> Plan:
    column, value, described = _breaking(cur, expr, table)
    return Plan(f"a row holding {described}", lambda rows, t: rows.insert(t, {column: value}))


def _orphan_plan(cur: Cursor, table: Table, cols: list[str], parent: Table, pcols: list[str]) -> Plan:
    if not pcols:
        pcols = _primary_key(cur, parent.oid)
    if len(pcols) != len(cols) or not cols:
        raise NotProbed("the foreign key's columns do not match the referenced key")
    values = {}
    rows = Rows(cur, 7)
    for c, p in zip(cols, pcols, strict=True):
        col = table.columns.get(c)
        if col is None:
            raise NotProbed(f"column {c} is not in {table.name} before the migration")
        pcol = parent.columns[p]
        # numeric: past the parent's largest key; other types: a fresh value, never a parent's
        values[c] = rows.fixed(rows.value(parent, pcol), pcol).rsplit("::", 1)[0] + f"::{col.type_sql}"
    shown = ", ".join(cols)
    return Plan(
        f"a row whose {shown} has no match in {parent.name} (an orphan)",
        lambda r, t: r.insert(t, values),
    )


def _type_plan(cur: Cursor, target: DataDependentStatement, table: Table) -> Plan:
    [column] = target.columns
    col = table.columns.get(column)
    if col is None:
        raise NotProbed(f"column {column} is not in {table.name} before the migration")
    new, mods = target.new_type or "", target.new_type_mods
    old = col.typname
    value: str | None = None
    if old in _INT_MAX and new in _INT_MAX and _INT_MAX[new] < _INT_MAX[old]:
        value, described = str(_INT_MAX[new] + 1), f"{column} = {_INT_MAX[new] + 1}"
    elif old in _TEXTUAL and new in ("varchar", "bpchar") and mods:
        text = "x" * (mods[0] + 1)
        value, described = _literal(cur, text), f"a {column} of {mods[0] + 1} characters"
    elif old in _TEXTUAL:
        value, described = _literal(cur, "n/a"), f"{column} = 'n/a'"
    elif old == new == "numeric" and mods:
        digits = mods[0] - (mods[1] if len(mods) > 1 else 0)
        value, described = f"1{'0' * digits}", f"{column} = 1{'0' * digits}"
    if value is None:
        raise NotProbed(f"no value of {col.type_sql} that {target.new_type} refuses is known to the probe")
    given = f"({value})::{col.type_sql}"
    return Plan(f"a row holding {described}", lambda rows, t: rows.insert(t, {column: given}))


def _validate_plan(cur: Cursor, target: DataDependentStatement, table: Table) -> Plan:
    cur.execute(
        "SELECT oid, contype, convalidated, pg_get_constraintdef(oid), confrelid FROM pg_constraint "
        "WHERE conrelid = %s AND conname = %s",
        [table.oid, target.constraint],
    )
    row = cur.fetchone()
    if row is None:
        raise NotProbed(f"constraint {target.constraint} does not exist before the migration")
    _, contype, validated, definition, parent = row
    if validated:
        raise NotProbed(f"constraint {target.constraint} is already validated: VALIDATE checks nothing")
    name = sql.Identifier(str(target.constraint)).as_string(cur)
    if contype == "c":
        tree: Any = parse_sql(f"ALTER TABLE t ADD CONSTRAINT c {definition}")[0].stmt
        plan = _check_plan(cur, tree.cmds[0].def_.raw_expr, table)
    elif contype == "f":
        [(_, cols, _, pcols)] = [fk for fk in table.foreign_keys if fk[0] == target.constraint]
        plan = _orphan_plan(cur, table, cols, _table_by_oid(cur, int(parent)), pcols)
    else:
        raise NotProbed(f"constraint {target.constraint} is neither a CHECK nor a foreign key")
    # a NOT VALID constraint still checks new rows: the rows predate it, so drop it for them
    plan.before.append(f"ALTER TABLE {table.name} DROP CONSTRAINT {name}")
    plan.after.append(f"ALTER TABLE {table.name} ADD CONSTRAINT {name} {definition}")
    return plan


def _plan(cur: Cursor, target: DataDependentStatement) -> tuple[Table, Plan]:
    table = _table(cur, target.schema, target.table)
    if target.kind == "unique":
        return table, _unique_plan(cur, target, table)
    if target.kind == "not-null":
        return table, _not_null_plan(target, table)
    if target.kind == "check":
        return table, _check_plan(cur, target.check, table)
    if target.kind == "foreign-key":
        assert target.ref_table is not None
        parent = _table(cur, target.ref_schema, target.ref_table)
        return table, _orphan_plan(cur, table, list(target.columns), parent, list(target.ref_columns))
    if target.kind == "validate":
        return table, _validate_plan(cur, target, table)
    return table, _type_plan(cur, target, table)


# -- running ---------------------------------------------------------------------------------------


def _runnable(stmt: Statement) -> str:
    """The statement as the probe runs it: an index statement without CONCURRENTLY (which cannot
    run in a transaction; the check of the rows is the same)."""
    node = stmt.node
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        node.concurrent = False
        try:
            return str(RawStream()(node))
        finally:
            node.concurrent = True
    return stmt.text


class DataProbe:
    """Hooks before each new migration: probe its data-dependent statements on rows that break them."""

    def __init__(
        self,
        url: str,
        targets: dict[str, list[DataDependentStatement]],
        parsed: dict[str, ParsedFile],
        search_path: str | None,
    ) -> None:
        self.url = url
        self.targets = targets
        self.parsed = parsed
        self.search_path = search_path
        self.results: dict[str, list[DataProbeResult]] = {}
        self.seconds = 0.0

    def before_migration(self, conn: Connection, entry: ManifestEntry) -> float:
        """Probe ``entry``'s statements; returns the seconds it took (0 when there was nothing)."""
        targets = self.targets.get(entry.file)
        parsed = self.parsed.get(entry.file)
        if not targets or parsed is None:
            return 0.0
        started = time.perf_counter()
        out = self.results.setdefault(entry.file, [])
        try:
            probe_conn = connect(self.url, autocommit=False)
        except Exception as exc:  # never let the probe stop the real run
            out.extend(self._result(t, "not probed", note=f"could not connect: {exc}") for t in targets)
            return time.perf_counter() - started
        try:
            try:
                sequences = _sequences(probe_conn)
            except psycopg2.Error as exc:  # without them the probe could move a sequence: do not probe
                note = f"could not read the sequences: {exc.pgcode} {_first_line(exc)}"
                out.extend(self._result(t, "not probed", note=note) for t in targets)
                return time.perf_counter() - started
            for target in targets:
                try:
                    out.append(self._probe(probe_conn, parsed, target))
                except Exception as exc:  # a gap of the probe must not stop the real run
                    out.append(self._result(target, "not probed", note=f"the probe failed: {exc!r}"))
            try:
                _restore_sequences(probe_conn, sequences)
            except psycopg2.Error as exc:  # said in every result of the file: the run may see moved values
                for r in out:
                    r.note = (r.note + "; " if r.note else "") + (
                        f"the probe could not set the sequences back ({exc.pgcode} {_first_line(exc)})"
                    )
        finally:
            probe_conn.close()
        took = time.perf_counter() - started
        self.seconds += took
        return took

    def _result(self, target: DataDependentStatement, status: str, **kw: Any) -> DataProbeResult:
        return DataProbeResult(
            line=target.line,
            kind=target.kind,
            table=".".join(filter(None, (target.schema, target.table))),
            columns=list(target.columns),
            status=status,  # type: ignore[arg-type]
            fixed_earlier=target.rows_fixed_earlier,
            **kw,
        )

    def _probe(self, conn: Connection, parsed: ParsedFile, target: DataDependentStatement) -> DataProbeResult:
        body = parsed.body
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
                    [PROBE_LOCK_TIMEOUT, PROBE_STATEMENT_TIMEOUT],
                )
                if self.search_path:
                    cur.execute("SELECT set_config('search_path', %s, true)", [self.search_path])
                try:
                    table, plan = _plan(cur, target)
                    for statement in plan.before:
                        cur.execute(statement)
                    plan.prepare(Rows(cur, 1000 + target.statement), table)
                    for statement in plan.after:
                        cur.execute(statement)
                except NotProbed as exc:
                    return self._result(target, "not probed", note=str(exc))
                for stmt in body:
                    if stmt.index > target.statement:
                        break
                    try:
                        cur.execute(_runnable(stmt))
                    except psycopg2.Error as exc:
                        if stmt.index == target.statement:
                            return self._result(
                                target, "fails", rows=plan.rows, sqlstate=exc.pgcode, message=_first_line(exc)
                            )
                        return self._result(
                            target,
                            "not probed",
                            rows=plan.rows,
                            note=f"line {stmt.line} before it failed on the probe's rows: "
                            f"{exc.pgcode} {_first_line(exc)}",
                        )
                return self._result(target, "holds", rows=plan.rows)
        except psycopg2.Error as exc:  # the catalog queries, or a lost connection
            return self._result(target, "not probed", note=f"{exc.pgcode} {_first_line(exc)}")
        finally:
            conn.rollback()


def _sequences(conn: Connection) -> dict[str, tuple[int | None, int]]:
    """Every sequence's value (a rollback does not undo nextval)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT format('%I.%I', schemaname, sequencename), last_value, start_value FROM pg_sequences"
        )
        rows = {name: (last, start) for name, last, start in cur.fetchall()}
    conn.rollback()
    return rows


def _restore_sequences(conn: Connection, before: dict[str, tuple[int | None, int]]) -> None:
    after = _sequences(conn)
    with conn.cursor() as cur:
        for name, (last, start) in before.items():
            if name in after and after[name][0] != last:
                if last is None:
                    cur.execute("SELECT setval(%s::regclass, %s, false)", [name, start])
                else:
                    cur.execute("SELECT setval(%s::regclass, %s, true)", [name, last])
    conn.commit()
