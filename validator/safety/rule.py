"""What a safety rule is: identity, default severity, documentation, examples, and visitors.

A rule is a small class (one per module under ``validator/safety/rules/``).  The engine walks each
statement's pglast AST once and calls ``visit_<NodeClass>(ancestors, node)`` on every rule that
defines it, the way ``pglast.visitors.Visitor`` dispatches; ``ancestors`` is pglast's
``Ancestor`` chain, so a rule asks "am I inside a CREATE TABLE?" with
``ancestors.find_nearest(ast.CreateStmt)`` instead of keeping state.  What the file or earlier
files did (tables created in this file, constraints validated before) is on ``self.ctx``.
A rule about the statement's text rather than its tree (identifier-too-long reads the scanner's
tokens, because the parser has already truncated long names) defines ``check_statement(stmt)``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from pglast import ast

from validator.findings import ERROR, SEVERITIES

if TYPE_CHECKING:  # pragma: no cover
    from validator.safety.context import FileContext

RULE_ID = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)+$")
CATEGORIES = ("locking", "breaking", "robustness", "style", "suppressions")


@dataclass(frozen=True)
class Example:
    """A migration that must (``triggers=True``) or must not trigger the rule.

    ``target_postgres`` and ``transactional`` say under which conditions; ``file`` lets an example
    of several files be written as ``{"V1__a.sql": ..., "V2__b.sql": ...}`` (the rule is expected
    to trigger, or not, in the last file).  Every example is run by one parametrized test.
    """

    sql: str | dict[str, str]
    triggers: bool
    title: str = ""
    target_postgres: int | None = None
    transactional: bool | None = None

    @property
    def files(self) -> dict[str, str]:
        return self.sql if isinstance(self.sql, dict) else {"V1__example.sql": self.sql}


@dataclass(frozen=True)
class RuleDocs:
    why: str  # why it is dangerous: what breaks, for how long
    lock: str  # the lock it takes (or "none")
    anti_pattern: str  # SQL
    best_practice: str  # SQL (or prose when there is no SQL fix)
    manual: str  # link to the PostgreSQL manual


class Rule:
    id: ClassVar[str]
    severity: ClassVar[str] = ERROR  # default; [tool.schemagate.rules] overrides
    # off unless [tool.schemagate.rules] names it (squawk's opt-in rules: the danger depends on how
    # the application uses the database, which the SQL alone does not tell)
    opt_in: ClassVar[bool] = False
    # its findings lose data (a dropped table or column cannot be brought back by a rollback of the
    # application): report.md lists them first, suppressed or not
    destructive: ClassVar[bool] = False
    category: ClassVar[str]
    summary: ClassVar[str]
    squawk: ClassVar[str | None] = None  # corresponding squawk rule id(s), for docs/rules.md
    docs: ClassVar[RuleDocs]
    examples: ClassVar[tuple[Example, ...]]  # shown in docs/rules.md, and tests
    cases: ClassVar[tuple[Example, ...]] = ()  # tests only (tests/safety_snapshots/<id>.yaml pins both)
    _node_types: ClassVar[tuple[str, ...]]  # node_types(), computed once per class

    @classmethod
    def all_examples(cls) -> tuple[Example, ...]:
        return cls.examples + cls.cases

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx

    @classmethod
    def node_types(cls) -> tuple[str, ...]:
        """The pglast node classes this rule subscribes to (from its ``visit_<NodeClass>`` methods).

        Computed once per class: the engine asks for every statement of every file."""
        cached = cls.__dict__.get("_node_types")
        if cached is None:
            cached = tuple(name[len("visit_") :] for name in dir(cls) if name.startswith("visit_"))
            cls._node_types = cached
        return cached

    @classmethod
    def check_definition(cls) -> None:
        """Raise ValueError when the class is not a complete rule (used by the registry)."""
        for attr in ("id", "category", "summary", "docs", "examples"):
            if not hasattr(cls, attr):
                raise ValueError(f"{cls.__name__} has no {attr}")
        if not RULE_ID.match(cls.id):
            raise ValueError(f"rule id {cls.id!r} is not kebab-case")
        if cls.severity not in SEVERITIES:
            raise ValueError(f"{cls.id}: default severity {cls.severity!r} is not one of {SEVERITIES}")
        if cls.category not in CATEGORIES:
            raise ValueError(f"{cls.id}: category {cls.category!r} is not one of {CATEGORIES}")
        for name in cls.node_types():
            if not isinstance(getattr(ast, name, None), type):
                raise ValueError(f"{cls.id}: visit_{name} names no pglast.ast node class")
        if not any(e.triggers for e in cls.examples) or all(e.triggers for e in cls.examples):
            raise ValueError(f"{cls.id}: needs at least one triggering and one non-triggering example")

    def report(self, node: object | None, message: str, help: str, *, offset: int | None = None) -> None:
        """Report a finding at ``node`` (its location), at ``offset`` in the file, or at the statement."""
        self.ctx.report(self.id, node, message, help, offset=offset)
