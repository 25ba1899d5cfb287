"""What the executor reads from a migration's SQL text: header settings and statement boundaries.

Header settings are leading comment lines that override the executor's defaults for one file::

    -- Add an index on invoices.customer_id without blocking writes.
    -- schemagate:set lock_timeout=10s statement_timeout=1h lock_retries=5
    CREATE INDEX CONCURRENTLY ...

Statements are split where PostgreSQL's grammar ends them, as psql does for a file it runs with
``\\i``: a ``;`` ends a statement unless it is inside a quoted string, a quoted identifier, a
dollar-quoted body, a comment (``--`` up to a line feed or carriage return; block comments nest),
parentheses, or the ``BEGIN ATOMIC ... END`` body of ``CREATE [OR REPLACE] FUNCTION|PROCEDURE``.
For that body psql counts every ``BEGIN``, ``CASE`` and ``END`` word, which goes wrong on a column
named ``end`` or a CTE named ``begin``; here the body opens at the words ``BEGIN ATOMIC`` and
closes at an ``END`` that directly follows a ``;`` (or ``ATOMIC``), which is where the grammar
allows it.  Executing statement by statement is what lets a failure be reported with the line it
happened on, and what lets ``CREATE INDEX CONCURRENTLY`` run (PostgreSQL runs a multi-statement
query string as one implicit transaction).

``migration_statements`` is what the executor sends for one file: a file whose whole body is
wrapped in one plain ``BEGIN; ... COMMIT;`` (the way golang-migrate and dbmate histories are
written) loses the wrapper, because the executor opens its own transaction, which also holds the
history row.  Any other transaction statement stays in the list, and the executor refuses it.
"""

from __future__ import annotations

import functools
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

# the words of a plain BEGIN / COMMIT around a whole file (no isolation level, no AND CHAIN)
_WRAPPER_OPEN = {("begin",), ("begin", "work"), ("begin", "transaction"), ("start", "transaction")}
_WRAPPER_CLOSE = {
    ("commit",),
    ("commit", "work"),
    ("commit", "transaction"),
    ("end",),
    ("end", "work"),
    ("end", "transaction"),
}
# first word -> name of the transaction statement (the second word refines a few)
_TRANSACTION_WORDS = {
    "begin": "BEGIN",
    "start": "START TRANSACTION",
    "commit": "COMMIT",
    "end": "END",
    "abort": "ABORT",
    "rollback": "ROLLBACK",
    "savepoint": "SAVEPOINT",
    "release": "RELEASE SAVEPOINT",
    "prepare": "PREPARE TRANSACTION",
}
# statements that build, drop or rebuild an index, and detach a partition, with CONCURRENTLY
_INDEX_HEADS = (("create", "index"), ("create", "unique"), ("drop", "index"), ("reindex",))
_DETACH_HEAD = ("alter", "table")


@dataclass(frozen=True)
class Statement:
    """One top-level statement of a migration file."""

    start: int  # offset in the file text of its first character (comments before it excluded)
    end: int  # offset just after its terminating ';' (or the end of the text)
    text: str  # file text [start:end]
    words: tuple[str, ...]  # its first (up to three) words, lower-case, e.g. ("create", "index")
    body_start: int | None = None  # offset of its first dollar-quoted body, if any

    @property
    def transaction_control(self) -> str | None:
        """The kind of transaction statement this is (``"BEGIN"``, ``"COMMIT"``, ``"SAVEPOINT"``,
        ``"ROLLBACK TO SAVEPOINT"``, ``"COMMIT PREPARED"`` ...), or None for any other statement."""
        if not self.words:
            return None
        first, rest = self.words[0], self.words[1:]
        name = _TRANSACTION_WORDS.get(first)
        if name is None or (first in ("start", "prepare") and rest[:1] != ("transaction",)):
            return None
        if first in ("commit", "rollback") and rest[:1] == ("prepared",):
            return f"{name} PREPARED"
        if first == "rollback" and "to" in rest:
            return "ROLLBACK TO SAVEPOINT"
        return name

    @property
    def is_transaction_control(self) -> bool:
        """BEGIN, COMMIT, ROLLBACK, SAVEPOINT, PREPARE TRANSACTION ...: any statement that opens, ends or
        splits a transaction."""
        return self.transaction_control is not None

    @property
    def wrapper_role(self) -> str | None:
        """``"open"`` for a plain ``BEGIN [WORK | TRANSACTION]`` or ``START TRANSACTION``, ``"close"`` for a
        plain ``COMMIT | END [WORK | TRANSACTION]``, else None (``BEGIN ISOLATION LEVEL ...``,
        ``COMMIT AND CHAIN``, ``ROLLBACK`` and every other statement)."""
        return (
            wrapper_role(self.text)
            if self.words[:1] in (("begin",), ("start",), ("commit",), ("end",))
            else None
        )

    @property
    def is_concurrent(self) -> bool:
        """CREATE INDEX / DROP INDEX / REINDEX with the keyword CONCURRENTLY: leaves an INVALID index when it
        fails.  The keyword, not the letters: a table named ``refunded_concurrently`` is not concurrent."""
        index_statement = any(self.words[: len(head)] == head for head in _INDEX_HEADS)
        return index_statement and self._has_concurrently

    @property
    def may_commit_partially(self) -> bool:
        """Outside a transaction block, can this one statement leave part of its work committed when it
        fails?  CONCURRENTLY commits between phases; CALL and DO may COMMIT inside."""
        if self.words[:1] in (("call",), ("do",)):
            return True
        return self.is_concurrent or (self.words[:2] == _DETACH_HEAD and self._has_concurrently)

    @property
    def _has_concurrently(self) -> bool:
        return "concurrently" in self.text.lower() and "concurrently" in _all_words(self.text)


def wrapper_role(text: str) -> str | None:
    """``"open"`` / ``"close"`` when ``text`` is a plain BEGIN / COMMIT (see ``Statement.wrapper_role``);
    comments and a final ``;`` may surround the words, nothing else may."""
    words = _plain_words(text)
    if words in _WRAPPER_OPEN:
        return "open"
    if words in _WRAPPER_CLOSE:
        return "close"
    return None


@dataclass(frozen=True)
class MigrationStatements:
    """The statements the executor sends for one file, and the BEGIN/COMMIT pair it removed."""

    statements: list[Statement]
    wrapper: tuple[Statement, Statement] | None = None


def migration_statements(sql: str, *, standard_conforming_strings: bool = True) -> MigrationStatements:
    """``split_statements``, without a plain ``BEGIN; ... COMMIT;`` that wraps the whole file.

    Only the first and the last statement can be the wrapper, and only together; a transaction
    statement anywhere else (and a BEGIN ended by ROLLBACK) stays in the list for the caller to refuse.

    The same text is split once per process: ``apply --migrations`` splits each file when its parse is
    checked against the executor's cut and again when it is prepared (the statements are frozen; each
    caller gets a list of its own).
    """
    split = _migration_statements(sql, standard_conforming_strings)
    return MigrationStatements(list(split.statements), split.wrapper)


@functools.lru_cache(maxsize=2048)
def _migration_statements(sql: str, standard_conforming_strings: bool) -> MigrationStatements:
    statements = split_statements(sql, standard_conforming_strings=standard_conforming_strings)
    if (
        len(statements) >= 2
        and statements[0].wrapper_role == "open"
        and statements[-1].wrapper_role == "close"
    ):
        return MigrationStatements(statements[1:-1], (statements[0], statements[-1]))
    return MigrationStatements(statements)


# identifier characters: ASCII letters, '_' (digits, and for a word '$', after the first) and every code
# point from U+0080 up, spelled as the ASCII characters they are not: the same sets as
# [A-Za-z_\u0080-\U0010ffff] and its kin, which Python's re takes ~20 ms each to compile at import
IDENT_START = r"[^\x00-\x40\x5b-\x5e\x60\x7b-\x7f]"  # A-Z a-z _ U+0080..
TAG_CHAR = r"[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"  # A-Z a-z 0-9 _ U+0080..
WORD_CHAR = r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"  # A-Z a-z 0-9 _ $ U+0080..

# every alternative starts with a literal character (its group follows it), so that the compiled
# pattern gets a first-character set and re's search skips the rest of the text in C: scanning a file
# for these tokens is five times faster than with the lookbehinds first.  A lookbehind after the
# first character keeps '$' and E' inside identifiers from being taken for quotes; E' is spelt twice
# (``estring`` and ``estring_upper``: one name per group), as a set [eE] would lose the prefix.
_TOKENS = (
    r"""
     -(?P<line_comment>-[^\n\r]*)
    |/(?P<block_comment>\*)
    |e(?<![\w$]e)'(?P<estring>)
    |E(?<![\w$]E)'(?P<estring_upper>)
    |'(?P<string>)
    |"(?P<quoted_ident>)
    |\$(?<![\w$]\$)(?P<dollar>(?:"""
    + IDENT_START
    + TAG_CHAR
    + r"""*)?\$)
    |\$(?<![\w$]\$)(?P<param>\d+)
    |;(?P<semicolon>)
    |\((?P<open>)
    |\)(?P<close>)
"""
)
_WORDS = (
    r"""
    |(?P<word>"""
    + IDENT_START
    + WORD_CHAR
    + r"""*)
    |(?P<number>\d+)
"""
)
# while the first words of a statement matter (its kind; BEGIN ATOMIC ... END in a routine) every word
# is a token; after that only quotes, comments, parentheses and ';' are
_TOKEN_RE = re.compile(_TOKENS + _WORDS, re.VERBOSE)
_FAST_TOKEN_RE = re.compile(_TOKENS, re.VERBOSE)
_QUOTED = frozenset(("string", "estring", "estring_upper", "quoted_ident", "dollar"))
_STANDARD_STRING_END = re.compile(r"(?:[^']|'')*'")
_ESCAPE_STRING_END = re.compile(r"(?:[^'\\]|\\.|'')*'", re.DOTALL)
_QUOTED_IDENT_END = re.compile(r'(?:[^"]|"")*"')
_COMMENT_MARK = re.compile(r"/\*|\*/")
_NON_SPACE = re.compile(r"\S")
_PLAIN_WORDS = re.compile(r"\s*([A-Za-z]+(?:\s+[A-Za-z]+)*)\s*;?\s*")
_ROUTINE_HEADS = frozenset(  # two words or four: _is_routine looks these lengths up
    (
        ("create", "function"),
        ("create", "procedure"),
        ("create", "or", "replace", "function"),
        ("create", "or", "replace", "procedure"),
    )
)


def _block_comment_end(sql: str, pos: int) -> int:
    """The offset after the ``*/`` closing the block comment whose ``/*`` ends at ``pos`` (they nest)."""
    depth = 1
    while depth:
        mark = _COMMENT_MARK.search(sql, pos)
        if mark is None:
            return len(sql)
        depth += 1 if mark.group() == "/*" else -1
        pos = mark.end()
    return pos


def _skip_quoted(sql: str, kind: str, m: re.Match[str], string_end: re.Pattern[str]) -> int:
    """The offset after the string, quoted identifier or dollar-quoted body that ``m`` opens."""
    pos = m.end()
    if kind in ("string", "estring", "estring_upper"):
        end = (string_end if kind == "string" else _ESCAPE_STRING_END).match(sql, pos)
        return end.end() if end else len(sql)
    if kind == "quoted_ident":
        end = _QUOTED_IDENT_END.match(sql, pos)
        return end.end() if end else len(sql)
    close = sql.find(m.group(), pos)  # dollar
    return close + len(m.group()) if close >= 0 else len(sql)


def _all_words(text: str) -> set[str]:
    """Every keyword or unquoted identifier of ``text``, lower-case (not the inside of strings, quoted
    identifiers, dollar bodies or comments)."""
    found: set[str] = set()
    pos = 0
    while True:
        m = _TOKEN_RE.search(text, pos)
        if m is None:
            return found
        kind = m.lastgroup or ""
        pos = m.end()
        if kind == "block_comment":
            pos = _block_comment_end(text, pos)
        elif kind in _QUOTED:
            pos = _skip_quoted(text, kind, m, _STANDARD_STRING_END)
        elif kind == "word":
            found.add(m.group().lower())


def _plain_words(text: str) -> tuple[str, ...] | None:
    """The words of ``text`` when it holds nothing but words, comments and a final ``;``."""
    kept: list[str] = []
    pos = 0
    while True:
        m = _FAST_TOKEN_RE.search(text, pos)
        if m is None:
            kept.append(text[pos:])
            break
        kept.append(text[pos : m.start()])
        kind = m.lastgroup
        if kind == "line_comment":
            pos = m.end()
        elif kind == "block_comment":
            pos = _block_comment_end(text, m.end())
        elif kind == "semicolon":
            kept.append(";")
            pos = m.end()
        else:
            return None
        kept.append(" ")
    plain = _PLAIN_WORDS.fullmatch("".join(kept))
    return tuple(plain.group(1).lower().split()) if plain else None


def split_statements(sql: str, *, standard_conforming_strings: bool = True) -> list[Statement]:
    """Split ``sql`` into top-level statements exactly where PostgreSQL's grammar ends them.

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
    atomic_depth = 0  # open BEGIN ATOMIC bodies
    previous: str | None = None  # in a routine: the last token if it was a word or ';' (comments skipped)
    string_end = _STANDARD_STRING_END if standard_conforming_strings else _ESCAPE_STRING_END

    while pos < n:
        m = (_TOKEN_RE if routine or len(heads) < 4 else _FAST_TOKEN_RE).search(sql, pos)
        gap_end = m.start() if m else n
        if gap_end > pos and (code_start is None or routine):
            # punctuation, an operator or (on the fast path) a word: code, and no word or ';' just before
            code = _NON_SPACE.search(sql, pos, gap_end)
            if code:
                code_start = code.start() if code_start is None else code_start
                previous = None
        if m is None:
            break
        kind = m.lastgroup
        pos = m.end()
        if kind == "line_comment":
            continue
        if kind == "block_comment":
            pos = _block_comment_end(sql, pos)
            continue
        if code_start is None:
            code_start = m.start()
        current: str | None = None
        if kind in _QUOTED:
            if kind == "dollar" and body_start is None:
                body_start = pos
            pos = _skip_quoted(sql, kind, m, string_end)
        elif kind == "word":
            current = m.group().lower()
            if len(words) < 3:
                words.append(current)
            if len(heads) < 4:
                heads.append(current)
                routine = heads[0] == "create" and _is_routine(heads)
            if routine and paren_depth == 0:
                if current == "atomic" and previous == "begin":
                    atomic_depth += 1
                elif current == "end" and atomic_depth and previous in (";", "atomic"):
                    atomic_depth -= 1
        elif kind == "open":
            paren_depth += 1
        elif kind == "close":
            if paren_depth > 0:
                paren_depth -= 1
        elif kind == "semicolon":
            if paren_depth == 0 and atomic_depth == 0:
                assert code_start is not None
                if sql[code_start : m.start()].strip():
                    statements.append(
                        Statement(code_start, pos, sql[code_start:pos], tuple(words), body_start)
                    )
                code_start, body_start, words, heads, routine, previous = None, None, [], [], False, None
                continue
            current = ";"
        previous = current
    if code_start is not None:
        statements.append(Statement(code_start, n, sql[code_start:n], tuple(words), body_start))
    return statements


def _is_routine(heads: list[str]) -> bool:
    """The statement starts CREATE [OR REPLACE] FUNCTION|PROCEDURE (where BEGIN ATOMIC bodies occur)."""
    return tuple(heads[:2]) in _ROUTINE_HEADS or tuple(heads[:4]) in _ROUTINE_HEADS


class LineCounter:
    """1-based (line, column) of character offsets in one text, for many look-ups: newlines are
    counted from the previous look-up, so look-ups in order (the statements of a file) cost one
    pass over the text together.  Offsets outside the text are clamped to it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._offset = 0  # the last offset looked up, and its line
        self._line = 1

    def position(self, offset: int) -> tuple[int, int]:
        text = self.text
        offset = max(0, min(offset, len(text)))
        if offset >= self._offset:
            self._line += text.count("\n", self._offset, offset)
        else:
            self._line -= text.count("\n", offset, self._offset)
        self._offset = offset
        return self._line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def line_and_column(sql: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset in ``sql`` (one look-up; ``LineCounter`` for many)."""
    return LineCounter(sql).position(offset)
