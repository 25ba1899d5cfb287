"""Which index a ``CREATE INDEX`` or ``REINDEX`` statement builds, read from its text.

The executor (the Lambda package) carries no SQL parser, and it needs only the head of these two
statements to check what they leave behind (``executor.index_validity``)::

    CREATE [UNIQUE] INDEX [CONCURRENTLY] [[IF NOT EXISTS] name] ON [ONLY] table [USING method] (...)
    REINDEX [(option [, ...])] {INDEX | TABLE | SCHEMA | DATABASE | SYSTEM} [CONCURRENTLY] [name]

Names are read as PostgreSQL reads them: unquoted identifiers folded to lower case (ASCII letters
only, as in a UTF-8 database), ``"quoted"`` ones kept as written (``""`` is a quote), ``U&"..."``
with its escapes, all cut to 63 bytes; comments anywhere between the words; a table name with a
schema (or ``database.schema.table``).  ``CREATE INDEX``'s index name never has a schema: the index
lives in its table's schema.  A statement that starts like one of these but cannot be read here
comes back with ``understood=False`` (the checker then compares the whole database).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from executor.headers import IDENT_START, WORD_CHAR

NAMEDATALEN = 64  # PostgreSQL cuts identifiers to NAMEDATALEN - 1 bytes

CREATE_INDEX = "create index"
REINDEX = "reindex"
REINDEX_SCOPES = ("index", "table", "schema", "database", "system")


@dataclass(frozen=True)
class QualifiedName:
    schema: str | None
    name: str

    def sql(self) -> str:
        """As SQL text, every part quoted: usable with to_regclass and in DDL."""
        return ".".join(quote_ident(part) for part in (self.schema, self.name) if part is not None)

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


@dataclass(frozen=True)
class IndexStatement:
    """What one CREATE INDEX / REINDEX statement names."""

    kind: str  # CREATE_INDEX | REINDEX
    concurrently: bool = False
    unique: bool = False  # CREATE UNIQUE INDEX
    if_not_exists: bool = False
    name: str | None = None  # CREATE INDEX: the index's own name; None when PostgreSQL picks one
    table: QualifiedName | None = None  # CREATE INDEX ... ON table; REINDEX TABLE table
    index: QualifiedName | None = None  # REINDEX INDEX index
    scope: str | None = None  # REINDEX: index | table | schema | database | system
    schema: str | None = None  # REINDEX SCHEMA schema
    understood: bool = True  # False: it starts like one of these, but the rest could not be read

    def describe(self) -> str:
        if self.kind == CREATE_INDEX:
            what = f"index {self.name}" if self.name else "an index PostgreSQL names itself"
            return f"{what} on {self.table}" if self.table else what
        target = self.index or self.table or self.schema or "the database"
        return f"REINDEX {self.scope.upper() if self.scope else ''} {target}".replace("  ", " ")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------------------------
# tokens


@dataclass(frozen=True)
class _Token:
    kind: str  # word | quoted | punct
    text: str  # word: folded to lower case; quoted: the identifier; punct: the character

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text in words


# the identifier sets spelled as the ASCII characters they are not (see executor.headers): the
# [A-Za-z_\u0080-\U0010ffff] spelling costs ~8 ms to compile at import
_WORD_RE = re.compile(IDENT_START + WORD_CHAR + "*")
_NUMBER_RE = re.compile(r"\d+(?:\.\d*)?")
_SPACE_RE = re.compile(r"\s+")
_QUOTED_RE = re.compile(r'"((?:[^"]|"")*)"')
_UESCAPE_RE = re.compile(r"\s*UESCAPE\s*'([^'])'", re.IGNORECASE)
_STRING_RE = re.compile(r"'(?:[^']|'')*'")


class _Unreadable(Exception):
    pass


def _truncate(name: str) -> str:
    """Cut to NAMEDATALEN - 1 bytes of UTF-8 at a character boundary, as PostgreSQL does."""
    data = name.encode("utf-8")
    if len(data) < NAMEDATALEN:
        return name
    return data[: NAMEDATALEN - 1].decode("utf-8", errors="ignore")


def _fold(word: str) -> str:
    """Unquoted identifiers: ASCII letters to lower case (PostgreSQL leaves others alone in UTF-8)."""
    return word.translate(str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz"))


def _unicode_escapes(body: str, escape: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch != escape:
            out.append(ch)
            i += 1
            continue
        if body[i + 1 : i + 2] == escape:
            out.append(escape)
            i += 2
        elif body[i + 1 : i + 2] == "+" and re.fullmatch(r"[0-9A-Fa-f]{6}", body[i + 2 : i + 8]):
            out.append(chr(int(body[i + 2 : i + 8], 16)))
            i += 8
        elif re.fullmatch(r"[0-9A-Fa-f]{4}", body[i + 1 : i + 5]):
            out.append(chr(int(body[i + 1 : i + 5], 16)))
            i += 5
        else:
            raise _Unreadable(f"bad Unicode escape in U&{body!r}")
    return "".join(out)


def _tokens(text: str) -> list[_Token]:
    """The tokens of a statement's head, comments and white space skipped."""
    tokens: list[_Token] = []
    pos, n = 0, len(text)
    while pos < n:
        ch = text[pos]
        space = _SPACE_RE.match(text, pos)
        if space:
            pos = space.end()
        elif text.startswith("--", pos):
            end = text.find("\n", pos)
            pos = n if end < 0 else end + 1
        elif text.startswith("/*", pos):
            depth, pos = 1, pos + 2
            while depth and pos < n:
                if text.startswith("/*", pos):
                    depth, pos = depth + 1, pos + 2
                elif text.startswith("*/", pos):
                    depth, pos = depth - 1, pos + 2
                else:
                    pos += 1
        elif ch == '"' or (text[pos : pos + 3].upper() == 'U&"'):
            unicode = ch != '"'
            m = _QUOTED_RE.match(text, pos + 2 if unicode else pos)
            if not m:
                raise _Unreadable("unterminated quoted identifier")
            name = m.group(1).replace('""', '"')
            pos = m.end()
            if unicode:
                escape = "\\"
                u = _UESCAPE_RE.match(text, pos)
                if u:
                    escape, pos = u.group(1), u.end()
                name = _unicode_escapes(name, escape)
            if not name:
                raise _Unreadable("zero-length quoted identifier")
            tokens.append(_Token("quoted", _truncate(name)))
        elif ch == "'":
            m = _STRING_RE.match(text, pos)
            if not m:
                raise _Unreadable("unterminated string")
            tokens.append(_Token("string", m.group()))
            pos = m.end()
        else:
            word = _WORD_RE.match(text, pos)
            if word:
                tokens.append(_Token("word", _truncate(_fold(word.group()))))
                pos = word.end()
                continue
            number = _NUMBER_RE.match(text, pos)
            if number:
                tokens.append(_Token("number", number.group()))
                pos = number.end()
                continue
            tokens.append(_Token("punct", ch))
            pos += 1
            if ch == "(" and tokens[0].is_word("create"):
                break  # the column list: nothing after it names the index or its table
    return tokens


class _Reader:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self, ahead: int = 0) -> _Token | None:
        i = self.pos + ahead
        return self.tokens[i] if i < len(self.tokens) else None

    def accept(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.is_word(*words):
            self.pos += 1
            return True
        return False

    def expect(self, *words: str) -> str:
        token = self.peek()
        if token is None or not token.is_word(*words):
            raise _Unreadable(
                f"expected {' or '.join(words).upper()}, found {token.text if token else 'the end'}"
            )
        self.pos += 1
        return token.text

    def identifier(self) -> str:
        token = self.peek()
        if token is None or token.kind not in ("word", "quoted"):
            raise _Unreadable(f"expected a name, found {token.text if token else 'the end'}")
        self.pos += 1
        return token.text

    def qualified_name(self) -> QualifiedName:
        parts = [self.identifier()]
        while (token := self.peek()) is not None and token.kind == "punct" and token.text == ".":
            self.pos += 1
            parts.append(self.identifier())
        if len(parts) > 3:
            raise _Unreadable(f"too many dotted names: {'.'.join(parts)}")
        return QualifiedName(parts[-2] if len(parts) > 1 else None, parts[-1])


# --------------------------------------------------------------------------------------------
# statements


def is_index_statement(words: tuple[str, ...]) -> bool:
    """From a statement's first (lower-case) words: is it CREATE [UNIQUE] INDEX or REINDEX?"""
    return (
        words[:1] == ("reindex",)
        or words[:2] == ("create", "index")
        or words[:3]
        == (
            "create",
            "unique",
            "index",
        )
    )


def parse_index_statement(text: str) -> IndexStatement | None:
    """What a CREATE INDEX / REINDEX statement names; None for any other statement."""
    try:
        tokens = _tokens(text)
    except _Unreadable:
        tokens = []
    reader = _Reader(tokens)
    unique = False
    if reader.accept("reindex"):
        kind = REINDEX
    elif reader.accept("create"):
        unique = reader.accept("unique")
        if not reader.accept("index"):
            return None
        kind = CREATE_INDEX
    else:
        head = text.lstrip().lower()
        if head.startswith("reindex") or re.match(r"create\s+(unique\s+)?index\b", head):
            return IndexStatement(
                kind=REINDEX if head.startswith("reindex") else CREATE_INDEX, understood=False
            )
        return None
    try:
        return _create_index(reader, unique=unique) if kind == CREATE_INDEX else _reindex(reader)
    except _Unreadable:
        return IndexStatement(kind=kind, concurrently="concurrently" in text.lower(), understood=False)


def _create_index(reader: _Reader, *, unique: bool) -> IndexStatement:
    concurrently = reader.accept("concurrently")
    if_not_exists = False
    name: str | None = None
    following = reader.peek(1)
    if (
        following is not None and following.is_word("not") and reader.accept("if")
    ):  # (an index may be named "if")
        reader.expect("not")
        reader.expect("exists")
        if_not_exists = True
        name = reader.identifier()
    elif not reader.accept("on"):
        name = reader.identifier()
    if name is not None:
        reader.expect("on")
    reader.accept("only")
    table = reader.qualified_name()
    return IndexStatement(
        kind=CREATE_INDEX,
        concurrently=concurrently,
        unique=unique,
        if_not_exists=if_not_exists,
        name=name,
        table=table,
    )


_TRUE = ("true", "on", "1", "yes")
_FALSE = ("false", "off", "0", "no")


def _reindex(reader: _Reader) -> IndexStatement:
    concurrently = False
    token = reader.peek()
    if token is not None and token.kind == "punct" and token.text == "(":
        reader.pos += 1
        while True:
            option = reader.identifier()
            value = reader.peek()
            arguments: list[_Token] = []
            while value is not None and not (value.kind == "punct" and value.text in ",)"):
                arguments.append(value)
                reader.pos += 1
                value = reader.peek()
            if option == "concurrently":
                concurrently = not (arguments and arguments[0].text.lower().strip("'") in _FALSE)
            if value is None:
                raise _Unreadable("unterminated REINDEX option list")
            reader.pos += 1
            if value.text == ")":
                break
    scope = reader.expect(*REINDEX_SCOPES)
    if reader.accept("concurrently"):
        concurrently = True
    following = reader.peek()
    target = (
        reader.qualified_name() if following is not None and following.kind in ("word", "quoted") else None
    )
    if target is None and scope in ("index", "table", "schema"):
        raise _Unreadable(f"REINDEX {scope.upper()} without a name")
    return IndexStatement(
        kind=REINDEX,
        concurrently=concurrently,
        scope=scope,
        index=target if scope == "index" else None,
        table=target if scope == "table" else None,
        schema=target.name if scope == "schema" and target is not None else None,
    )
