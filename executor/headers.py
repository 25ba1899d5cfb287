"""What the executor reads from a migration's SQL text: header settings and statement boundaries.

Header settings are leading comment lines that override the executor's defaults for one file::

    -- Add an index on invoices.customer_id without blocking writes.
    -- schemagate:set lock_timeout=10s statement_timeout=1h lock_retries=5
    CREATE INDEX CONCURRENTLY ...

Statements are split the way psql splits a file it runs with ``\\i`` (the baseline users compare
with): a ``;`` ends a statement unless it is inside a quoted string, a quoted identifier, a
dollar-quoted body, a comment (block comments nest), parentheses, or the ``BEGIN ATOMIC ... END``
body of ``CREATE [OR REPLACE] FUNCTION|PROCEDURE``.  Executing statement by statement is what lets a
failure be reported with the line it happened on, and what lets ``CREATE INDEX CONCURRENTLY`` run
(PostgreSQL runs a multi-statement query string as one implicit transaction).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from executor.errors import ConfigurationError

SET_DIRECTIVE = "schemagate:set"
_DURATION_RE = re.compile(r"^\d+(\.\d+)?(us|ms|s|min|h|d)?$")
_SET_LINE_RE = re.compile(r"^\s*--\s*schemagate:set\b(?P<rest>.*)$")
_ANY_SET_LINE_RE = re.compile(r"^[ \t]*--[ \t]*schemagate:set\b", re.MULTILINE)


def _duration(value: str) -> str | None:
    return None if _DURATION_RE.match(value) else "a PostgreSQL duration such as 500ms, 10s, 5min, 1h or 0"


def _count(value: str) -> str | None:
    return None if value.isdigit() and int(value) <= 100 else "a whole number from 0 to 100"


HEADER_KEYS = {
    "lock_timeout": _duration,
    "statement_timeout": _duration,
    "lock_retries": _count,
}


def parse_header_settings(sql: str, *, file: str | None = None) -> dict[str, str]:
    """Settings from the leading ``-- schemagate:set key=value ...`` comment lines of ``sql``.

    Only the header counts: blank lines and ``--`` comment lines before the first statement.  A
    ``schemagate:set`` line further down, an unknown key or a bad value is a ConfigurationError
    naming the file and line.
    """
    settings: dict[str, str] = {}
    lines = sql.split("\n")
    header_end = len(lines)
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("--"):
            header_end = index
            break
        match = _SET_LINE_RE.match(line)
        if not match:
            continue
        lineno = index + 1
        tokens = match.group("rest").split()
        if not tokens:
            raise ConfigurationError(
                f"'{SET_DIRECTIVE}' with nothing to set",
                file=file,
                line=lineno,
                rule="header-setting",
                remedy=f"write key=value pairs, e.g. `-- {SET_DIRECTIVE} lock_timeout=10s lock_retries=5`",
            )
        for token in tokens:
            key, sep, value = token.partition("=")
            if key not in HEADER_KEYS:
                raise ConfigurationError(
                    f"unknown setting {key!r} in a '{SET_DIRECTIVE}' header line",
                    file=file,
                    line=lineno,
                    rule="header-setting",
                    remedy=f"known settings: {', '.join(sorted(HEADER_KEYS))}",
                )
            problem = "a value after '='" if not sep or not value else HEADER_KEYS[key](value)
            if problem:
                raise ConfigurationError(
                    f"bad value {value!r} for {key} in a '{SET_DIRECTIVE}' header line",
                    file=file,
                    line=lineno,
                    rule="header-setting",
                    remedy=f"{key} needs {problem}, e.g. `-- {SET_DIRECTIVE} {key}={_EXAMPLES[key]}`",
                )
            settings[key] = value
    if header_end < len(lines):
        rest = "\n".join(lines[header_end:])
        late = _ANY_SET_LINE_RE.search(rest)
        if late:
            lineno = header_end + rest.count("\n", 0, late.start()) + 1
            raise ConfigurationError(
                f"'{SET_DIRECTIVE}' appears after the first statement, where it would be ignored",
                file=file,
                line=lineno,
                rule="header-setting",
                remedy="move the line to the comment block at the top of the file",
            )
    return settings


_EXAMPLES = {"lock_timeout": "10s", "statement_timeout": "1h", "lock_retries": "5"}


# --------------------------------------------------------------------------------------------
# statements


@dataclass(frozen=True)
class Statement:
    """One top-level statement of a migration file."""

    start: int  # offset in the file text of its first character (comments before it excluded)
    end: int  # offset just after its terminating ';' (or the end of the text)
    text: str  # file text [start:end]
    words: tuple[str, ...]  # its first (up to three) words, lower-case, e.g. ("create", "index")
    body_start: int | None = None  # offset of its first dollar-quoted body, if any

    @property
    def is_transaction_control(self) -> bool:
        """BEGIN / START TRANSACTION / COMMIT / END / ROLLBACK / ABORT (not ROLLBACK TO SAVEPOINT)."""
        if not self.words:
            return False
        first = self.words[0]
        if first in ("begin", "commit", "end", "abort"):
            return not (first == "commit" and self.words[1:2] == ("prepared",))
        if first == "start":
            return self.words[1:2] == ("transaction",)
        if first == "rollback":
            return self.words[1:2] not in (("to",), ("prepared",))
        return False

    @property
    def is_concurrent(self) -> bool:
        """CREATE INDEX / REINDEX / DROP INDEX ... CONCURRENTLY: leaves an INVALID index when it fails."""
        return "concurrently" in self.text.lower()

    @property
    def may_commit_partially(self) -> bool:
        """Outside a transaction block, can this one statement leave part of its work committed when it
        fails?  CONCURRENTLY commits between phases; CALL and DO may COMMIT inside."""
        return self.is_concurrent or self.words[:1] in (("call",), ("do",))


_TOKENS = r"""
     (?P<line_comment>--[^\n]*)
    |(?P<block_comment>/\*)
    |(?P<estring>(?<![\w$])[eE]')
    |(?P<string>')
    |(?P<quoted_ident>")
    |(?P<dollar>(?<![\w$])\$(?:[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*)?\$)
    |(?P<param>(?<![\w$])\$\d+)
    |(?P<semicolon>;)
    |(?P<open>\()
    |(?P<close>\))
"""
_WORDS = r"""
    |(?P<word>[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_$\u0080-\U0010ffff]*)
    |(?P<number>\d+)
"""
# while the first words of a statement matter (its kind; BEGIN ... END in a routine) every word is a
# token; after that only quotes, comments, parentheses and ';' are (the lookbehinds keep '$' and E'
# inside identifiers from being taken for quotes)
_TOKEN_RE = re.compile(_TOKENS + _WORDS, re.VERBOSE)
_FAST_TOKEN_RE = re.compile(_TOKENS, re.VERBOSE)
_STANDARD_STRING_END = re.compile(r"(?:[^']|'')*'")
_ESCAPE_STRING_END = re.compile(r"(?:[^'\\]|\\.|'')*'", re.DOTALL)
_QUOTED_IDENT_END = re.compile(r'(?:[^"]|"")*"')
_COMMENT_MARK = re.compile(r"/\*|\*/")
_NON_SPACE = re.compile(r"\S")
_ROUTINE_HEADS = (
    ("create", "function"),
    ("create", "procedure"),
    ("create", "or", "replace", "function"),
    ("create", "or", "replace", "procedure"),
)


def split_statements(sql: str, *, standard_conforming_strings: bool = True) -> list[Statement]:
    """Split ``sql`` into top-level statements exactly where psql would send them one by one.

    Statements that are only comments or white space are dropped.  An unterminated string or
    comment runs to the end of the text (PostgreSQL then reports it).
    """
    statements: list[Statement] = []
    n = len(sql)
    pos = 0
    code_start: int | None = None
    body_start: int | None = None
    words: list[str] = []
    heads: list[str] = []  # the first four words: CREATE [OR REPLACE] FUNCTION|PROCEDURE?
    routine = False
    paren_depth = 0
    begin_depth = 0
    string_end = _STANDARD_STRING_END if standard_conforming_strings else _ESCAPE_STRING_END

    def note_code(at: int) -> None:
        nonlocal code_start
        if code_start is None:
            code_start = at

    while pos < n:
        m = (_TOKEN_RE if routine or len(heads) < 4 else _FAST_TOKEN_RE).search(sql, pos)
        gap_end = m.start() if m else n
        if code_start is None and gap_end > pos:
            code = _NON_SPACE.search(sql, pos, gap_end)
            if code:
                code_start = code.start()
        if m is None:
            break
        kind = m.lastgroup
        pos = m.end()
        if kind == "line_comment":
            continue
        if kind == "block_comment":
            depth = 1
            while depth:
                mark = _COMMENT_MARK.search(sql, pos)
                if mark is None:
                    pos = n
                    break
                depth += 1 if mark.group() == "/*" else -1
                pos = mark.end()
            continue
        note_code(m.start())
        if kind in ("string", "estring"):
            end = (string_end if kind == "string" else _ESCAPE_STRING_END).match(sql, pos)
            pos = end.end() if end else n
        elif kind == "quoted_ident":
            end = _QUOTED_IDENT_END.match(sql, pos)
            pos = end.end() if end else n
        elif kind == "dollar":
            if body_start is None:
                body_start = pos
            close = sql.find(m.group(), pos)
            pos = close + len(m.group()) if close >= 0 else n
        elif kind == "word":
            word = m.group().lower()
            if len(words) < 3:
                words.append(word)
            if len(heads) < 4:
                heads.append(word)
                routine = heads[0] == "create" and _is_routine(heads)
            if routine and paren_depth == 0:
                if word == "begin" or (word == "case" and begin_depth >= 1):
                    begin_depth += 1
                elif word == "end" and begin_depth > 0:
                    begin_depth -= 1
        elif kind == "open":
            paren_depth += 1
        elif kind == "close":
            if paren_depth > 0:
                paren_depth -= 1
        elif kind == "semicolon" and paren_depth == 0 and begin_depth == 0:
            assert code_start is not None
            if sql[code_start : m.start()].strip():
                statements.append(Statement(code_start, pos, sql[code_start:pos], tuple(words), body_start))
            code_start, body_start, words, heads, routine = None, None, [], [], False
    if code_start is not None:
        statements.append(Statement(code_start, n, sql[code_start:n], tuple(words), body_start))
    return statements


def _is_routine(heads: list[str]) -> bool:
    """The statement starts CREATE [OR REPLACE] FUNCTION|PROCEDURE (psql's test for BEGIN ATOMIC bodies)."""
    return any(tuple(heads[: len(h)]) == h for h in _ROUTINE_HEADS)


def line_and_column(sql: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset in ``sql``."""
    offset = max(0, min(offset, len(sql)))
    line = sql.count("\n", 0, offset) + 1
    column = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    return line, column
