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
