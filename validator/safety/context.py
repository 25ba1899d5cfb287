"""What a safety rule sees while the engine walks a file: the file, the statement being visited,
the transaction it runs in, what earlier statements created (the ``Catalog``), and where its
findings go.

Findings are recorded at character offsets into the file text (node ``location`` values are
offsets, as ``validator.parse`` parses the whole file at once); ``validator.safety.check`` turns
them into findings with a line and column.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from pglast import ast
from pglast.parser import Token, scan

from validator.safety.catalog import Catalog

if TYPE_CHECKING:
    from validator.parsed import ParsedFile, Statement


@dataclass(frozen=True)
class RawFinding:
    rule: str
    statement: int  # index of the statement it is about
    offset: int  # character offset in the file text
    message: str
    help: str


@dataclass
class FileContext:
    """What a rule may ask about the file and the statement being visited."""

    file: ParsedFile
    target_postgres: int
    catalog: Catalog
    findings: list[RawFinding] = field(default_factory=list)
    statement: Statement = field(init=False)  # set by the engine before each statement's walk
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

    def is_new_table(self, relation: ast.RangeVar | str | None) -> bool:
        return self.catalog.is_new_table(relation)

    def later_statements_in_same_transaction(self) -> Iterable[Statement]:
        if self.tx is None:
            return
        for stmt in self.file.statements[self.statement.index + 1 :]:
            if self.tx_keys[stmt.index] != self.tx:
                return
            yield stmt

    @cached_property
    def tokens(self) -> Sequence[Token]:
        """pglast scanner tokens of the whole file (offsets into file.text), or () if it will not scan."""
        try:
            return scan(self.file.text)
        except Exception:  # the parser accepted the file, so this is not expected
            return ()

    @cached_property
    def _token_starts(self) -> list[int]:
        return [t.start for t in self.tokens]

    def statement_tokens(self, stmt: Statement) -> list[Token]:
        starts = self._token_starts
        lo = bisect.bisect_left(starts, stmt.start)
        hi = bisect.bisect_left(starts, stmt.end)
        return list(self.tokens[lo:hi])

    # ---- reporting ------------------------------------------------------------------------
    def report(
        self, rule: str, node: object | None, message: str, help: str, *, offset: int | None = None
    ) -> None:
        if offset is None:
            loc = getattr(node, "location", None) if node is not None else None
            if self.location_shift is None:
                offset = self.statement.start
            elif not isinstance(loc, int) or loc < 0:
                offset = self.statement.start if not self.in_do_block else self.location_shift
            else:
                offset = self.location_shift + loc
        self.findings.append(RawFinding(rule, self.statement.index, offset, message, help))
