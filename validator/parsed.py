"""What parsing a migration file found, as data: its ``Statement``s and the ``ParsedFile``.

``validator.parse`` builds them (and ``validator.transactions`` judges them); the types live here,
below both, so that neither imports the other for its types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from validator.discovery import MigrationFile
    from validator.findings import Finding


@dataclass
class Statement:
    index: int  # 0-based position in the file
    text: str  # the statement without its terminating semicolon
    node: Any  # the pglast AST node (RawStmt.stmt)
    start: int  # character offsets into ParsedFile.text
    end: int
    line: int  # 1-based position of the statement's first token
    column: int
    # why the statement cannot run inside a transaction block (None: it can)
    non_transactional: str | None = None

    @property
    def transactional(self) -> bool:
        return self.non_transactional is None


@dataclass
class ParsedFile:
    file: MigrationFile
    text: str
    statements: list[Statement]
    transactional: bool
    findings: list[Finding]
    settings: dict[str, str]
    # lower-cased names of procedures created in this file whose PL/pgSQL body commits or rolls back
    committing_procedures: set[str] = field(default_factory=set)
    # the plain BEGIN and COMMIT around the whole file, which the executor does not send
    wrapper: tuple[Statement, Statement] | None = None
    # accepted history run as written, its own transaction control included (structural.as_written)
    own_transactions: bool = False
    # a parse-cache hit whose trees are built when first needed (``ensure_trees``): every
    # ``Statement.node`` is None until then
    trees_pending: bool = False

    @property
    def rel(self) -> str:
        return self.file.rel

    @property
    def key(self) -> str:
        return self.file.key

    @property
    def body(self) -> list[Statement]:
        """The statements the executor runs: all of them but the wrapper."""
        return self.statements[1:-1] if self.wrapper is not None else self.statements


def ensure_trees(parsed: ParsedFile) -> ParsedFile:
    """Give ``parsed`` its parse trees if a cache hit left them out (``trees_pending``); once.

    The statements are those the cache entry names, and a fresh parse of the same text must find as
    many: a parse cache that says otherwise was written by something else than schemagate."""
    if not parsed.trees_pending:
        return parsed
    from pglast.parser import parse_sql

    nodes = [raw.stmt for raw in parse_sql(parsed.text)]
    if len(nodes) != len(parsed.statements):
        raise RuntimeError(
            f"the parse cache's entry for {parsed.rel} names {len(parsed.statements)} statements but the "
            f"file holds {len(nodes)}: delete .schemagate/cache and run again"
        )
    for statement in parsed.statements:
        statement.node = nodes[statement.index]
    parsed.trees_pending = False
    return parsed
