"""The rule engine: each file's statements walked once, node by node, dispatched to the rules.

For every statement the engine walks the AST once with pglast's visitor iteration and looks up each
node's class in a table built from the enabled rules' ``visit_<NodeClass>`` methods, calling each
with pglast's ancestor chain.  Rules ask and report through the ``FileContext``
(``validator.safety.context``); then the engine tells the ``Catalog`` what the statement did so
later statements (and later files) can ask.  Findings come back as data.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any

from pglast import ast
from pglast.enums import TransactionStmtKind
from pglast.visitors import Continue, Visitor

from validator.parsed import ensure_trees
from validator.safety.catalog import Catalog
from validator.safety.catalog_cache import CatalogCache, prefix_key
from validator.safety.context import FileContext, RawFinding
from validator.safety.plpgsql import embedded_statements
from validator.safety.rule import Rule

if TYPE_CHECKING:
    from validator.parsed import ParsedFile

_OPEN = (TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START)
_CLOSE = (
    TransactionStmtKind.TRANS_STMT_COMMIT,
    TransactionStmtKind.TRANS_STMT_ROLLBACK,
    TransactionStmtKind.TRANS_STMT_COMMIT_PREPARED,
    TransactionStmtKind.TRANS_STMT_ROLLBACK_PREPARED,
    TransactionStmtKind.TRANS_STMT_PREPARE,
)


def transaction_keys(file: ParsedFile) -> list[object]:
    """For each statement, which transaction it runs in: the whole file when the executor wraps it
    in one, else the explicit ``BEGIN ... COMMIT`` block around it, else None (autocommit)."""
    keys: list[object] = []
    block: object = None
    for stmt in file.statements:
        node = stmt.node
        if isinstance(node, ast.TransactionStmt) and node.kind in _OPEN:
            block = ("block", file.rel, stmt.index)
        keys.append(("file", file.rel) if file.transactional else block)
        if isinstance(node, ast.TransactionStmt) and node.kind in _CLOSE:
            block = None
    return keys


class _Dispatcher(Visitor):
    """One walk over a statement (pglast's breadth-first ``iterate``), calling every subscribed
    rule method for each node.  The table is built once per file, not per statement."""

    def __init__(self, table: dict[type, list[Callable[[Any, Any], None]]]) -> None:
        self.table = table

    def walk(self, node: Any) -> None:
        walker = self.iterate(node)
        try:
            ancestors, current = walker.send(None)
            while True:
                for method in self.table.get(type(current), ()):
                    method(ancestors, current)
                ancestors, current = walker.send(Continue)
        except StopIteration:
            return


def run_rules(
    files: Sequence[ParsedFile],
    rules: Sequence[type[Rule]],
    *,
    target_postgres: int,
    judged: Collection[str] | None = None,
    catalog_cache: CatalogCache | None = None,
) -> dict[str, list[RawFinding]]:
    """Run ``rules`` over ``files`` (in apply order); raw findings per file ``rel``.

    ``judged``: the files (by ``rel``) the rules judge; the others (accepted history) only tell
    the catalog what they created, so that the judged files are judged knowing it, and get no
    entry.  The catalog is the only state that crosses files (rules are made per file), so the
    judged files' findings are the same as when every file is judged.  None: all are judged.

    ``catalog_cache`` (``validator.safety.catalog_cache``): the catalog after the files before the
    first judged one, from an earlier run when it has it (those files are then not read at all,
    and their parse trees never built), else kept for the next run."""
    catalog = Catalog()
    out: dict[str, list[RawFinding]] = {}
    start = 0
    if catalog_cache is not None and judged is not None:
        start = next((i for i, f in enumerate(files) if f.rel in judged), 0)
        if start:
            key = prefix_key(files[:start])
            cached = catalog_cache.load(key)
            if cached is None:
                for file in files[:start]:
                    _record_only(file, catalog)
                catalog_cache.save(key, catalog)
            else:
                catalog = cached
    for file in files[start:]:
        if judged is not None and file.rel not in judged:
            _record_only(file, catalog)
            continue
        ensure_trees(file)
        catalog.start_file()
        ctx = FileContext(file=file, target_postgres=target_postgres, catalog=catalog)
        ctx.tx_keys = transaction_keys(file)
        instances = [cls(ctx) for cls in rules]
        table: dict[type, list[Callable[[Any, Any], None]]] = defaultdict(list)
        statement_hooks = []
        for rule in instances:
            for name in rule.node_types():  # names checked by the registry (Rule.check_definition)
                table[getattr(ast, name)].append(getattr(rule, f"visit_{name}"))
            if hasattr(rule, "check_statement"):
                statement_hooks.append(rule.check_statement)
        dispatcher = _Dispatcher(dict(table))
        for stmt in file.statements:
            if stmt.node is None:
                continue
            ctx.statement = stmt
            ctx.tx = ctx.tx_keys[stmt.index]
            for hook in statement_hooks:
                hook(stmt)
            try:
                dispatcher.walk(stmt.node)
                catalog.record(stmt.node, ctx.tx)
                # the DDL a DO block runs (static statements, EXECUTE of a literal) is judged as if
                # it were at top level; positions point into the block
                for inner in embedded_statements(stmt):
                    ctx.location_shift, ctx.in_do_block = inner.shift, True
                    dispatcher.walk(inner.node)
                    catalog.record(inner.node, ctx.tx)
            except Exception as exc:  # a rule bug: say where, so the statement can be reported
                raise RuntimeError(
                    f"a safety rule failed on {file.rel}:{stmt.line}:{stmt.column} "
                    f"({type(stmt.node).__name__}): {exc!r}; disable the rule in [tool.schemagate.rules] "
                    "and report the statement"
                ) from exc
            finally:
                ctx.location_shift, ctx.in_do_block = 0, False
        out[file.rel] = ctx.findings
    return out


def _record_only(file: ParsedFile, catalog: Catalog) -> None:
    """What ``run_rules`` tells the catalog about ``file``, without running a rule."""
    ensure_trees(file)
    catalog.start_file()
    keys = transaction_keys(file)
    for stmt in file.statements:
        if stmt.node is None:
            continue
        tx = keys[stmt.index]
        catalog.record(stmt.node, tx)
        for inner in embedded_statements(stmt):
            catalog.record(inner.node, tx)
