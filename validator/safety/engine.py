"""The rule engine: each file's statements walked once, node by node, dispatched to the rules.

For every statement the engine walks the AST once with pglast's visitor iteration and looks up each
node's class in a table built from the enabled rules' ``visit_<NodeClass>`` methods, calling each
with pglast's ancestor chain.  Rules report through the ``FileContext``; the engine records
locations (node ``location`` values are character offsets into the file text, as
``validator.parse`` parses the whole file at once), then tells the ``Catalog`` what the statement
did so later statements (and later files) can ask.  Findings come back as data.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from pglast import ast
from pglast.enums import TransactionStmtKind
from pglast.parser import scan
from pglast.visitors import Continue, Visitor

from validator.safety.catalog import Catalog
from validator.safety.plpgsql import embedded_statements
from validator.safety.rule import Rule

_OPEN = (TransactionStmtKind.TRANS_STMT_BEGIN, TransactionStmtKind.TRANS_STMT_START)
_CLOSE = (
    TransactionStmtKind.TRANS_STMT_COMMIT,
    TransactionStmtKind.TRANS_STMT_ROLLBACK,
    TransactionStmtKind.TRANS_STMT_COMMIT_PREPARED,
    TransactionStmtKind.TRANS_STMT_ROLLBACK_PREPARED,
    TransactionStmtKind.TRANS_STMT_PREPARE,
)


@dataclass(frozen=True)
class RawFinding:
    rule: str
    statement: int  # index of the statement it is about
    offset: int  # character offset in the file text
    message: str
    help: str


def transaction_keys(file: Any) -> list[object]:
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


@dataclass
class FileContext:
    """What a rule may ask about the file and the statement being visited."""

    file: Any
    target_postgres: int
    catalog: Catalog
    findings: list[RawFinding] = field(default_factory=list)
    statement: Any = None
    tx: object = None
    tx_keys: list[object] = field(default_factory=list)
    # while the rules walk a statement a DO block runs: where its node locations count from in the
    # file (None: unknown, report at the DO statement); 0 for top-level statements
    location_shift: int | None = 0
    in_do_block: bool = False

    # ---- questions rules ask --------------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        return self.tx is not None

    def is_new_table(self, relation: Any) -> bool:
        return self.catalog.is_new_table(relation)

    def later_statements_in_same_transaction(self) -> Iterable[Any]:
        if self.tx is None:
            return
        for stmt in self.file.statements[self.statement.index + 1 :]:
            if self.tx_keys[stmt.index] != self.tx:
                return
            yield stmt

    @cached_property
    def tokens(self) -> Sequence[Any]:
        """pglast scanner tokens of the whole file (offsets into file.text), or () if it will not scan."""
        try:
            return scan(self.file.text)
        except Exception:  # the parser accepted the file, so this is not expected
            return ()

    @cached_property
    def _token_starts(self) -> list[int]:
        return [t.start for t in self.tokens]

    def statement_tokens(self, stmt: Any) -> list[Any]:
        starts = self._token_starts
        lo = bisect.bisect_left(starts, stmt.start)
        hi = bisect.bisect_left(starts, stmt.end)
        return list(self.tokens[lo:hi])

    # ---- reporting ------------------------------------------------------------------------
    def report(self, rule: str, node: Any, message: str, help: str, *, offset: int | None = None) -> None:
        if offset is None:
            loc = getattr(node, "location", None) if node is not None else None
            if self.location_shift is None:
                offset = self.statement.start
            elif not isinstance(loc, int) or loc < 0:
                offset = self.statement.start if not self.in_do_block else self.location_shift
            else:
                offset = self.location_shift + loc
        self.findings.append(RawFinding(rule, self.statement.index, offset, message, help))


def run_rules(
    files: Sequence[Any],
    rules: Sequence[type[Rule]],
    *,
    target_postgres: int,
) -> dict[str, list[RawFinding]]:
    """Run ``rules`` over ``files`` (in apply order); raw findings per file ``rel``."""
    catalog = Catalog()
    out: dict[str, list[RawFinding]] = {}
    for file in files:
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
