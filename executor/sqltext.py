"""Characters in a migration file that the parts of schemagate and PostgreSQL would not read alike.

The validator judges a file with PostgreSQL's parser (libpg_query, through pglast) and sqlfluff;
the executor cuts it into statements with its own lexer (``executor.headers``) and sends them
through libpq to a server that may be an older PostgreSQL than the parser.  A few characters make
these readers disagree, so what was checked is not what runs:

- NUL (0x00): libpg_query and libpq take C strings and stop reading at it.  ``SELECT 1; -- note``
  NUL ``DROP TABLE x;`` parses as ``SELECT 1`` alone while the executor's lexer, which ends the
  comment at the line feed, sends the ``DROP TABLE``;
- vertical tab (0x0B): white space to the parser the validator uses (PostgreSQL 17's), a syntax
  error to older servers, and to Python;
- a carriage return not followed by a line feed: PostgreSQL ends a ``--`` comment at it, while
  editors, diffs and the line numbers schemagate reports do not all see a line break, so SQL after
  it can look like part of a comment;
- the other C0 control characters (0x01-0x08, 0x0E-0x1F), DEL (0x7F) and the C1 controls
  (U+0080-U+009F): invisible in an editor and in code review, white space or line breaks to
  Python (``str.isspace``, ``str.splitlines``) but part of a name to PostgreSQL.

Such a character is refused anywhere in the file, inside string literals and comments too: one
check over the raw bytes needs no lexer of its own (so it cannot disagree with one), and a control
character a migration really needs is written as an escape (``E'\\x01'``, ``chr(1)``), which every
reader sees the same way.  Tab, line feed, form feed and the CR of a CRLF line ending are allowed.
Invalid UTF-8 is refused separately (the file cannot be decoded at all).

The validator (``validator.discovery``) reports the first such character as an error finding; the
executor refuses the file before running anything, even when a manifest lists it as valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from executor.checksum import UTF8_BOM

RULE = "control-character"
REMEDY = (
    "delete the character at that offset (`cat -A FILE` shows it, as ^@ for NUL, ^M for a carriage return); "
    "inside a string literal write it as an escape instead, e.g. E'\\x01' or chr(1); save line endings "
    "as LF or CRLF"
)

# C0 controls except tab, line feed, form feed and CR; CR not followed by LF; DEL; the C1 controls
# (U+0080-U+009F, 0xC2 0x80-0x9F in UTF-8: 0xC2 is only ever a lead byte, so this is exact)
_FORBIDDEN = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]|\r(?!\n)|\xc2[\x80-\x9f]")
# the first byte of each of them: one set, which re scans for in C (an alternation of a set and two
# sequences is tried at every byte); where none occurs, no file holds a refused character
_FIRST_BYTES = re.compile(rb"[\x00-\x08\x0b\x0d-\x1f\x7f\xc2]")

_NAMES = {
    0x00: "NUL",
    0x08: "backspace",
    0x0B: "vertical tab",
    0x0D: "carriage return not followed by a line feed",
    0x1B: "escape",
    0x7F: "DEL",
}
_WHY = {
    0x00: "PostgreSQL's parser stops reading at a NUL byte, so the SQL after it would escape every check "
    "and could still be run",
    0x0B: "newer PostgreSQL parsers (the one validation uses) read it as white space and older servers "
    "as a syntax error",
    0x0D: "PostgreSQL ends a -- comment at a lone carriage return while editors and diffs may not show a "
    "line break, so SQL after it can pass for part of a comment",
}
_WHY_OTHER = (
    "it is invisible in an editor and in code review, and the tools read it differently (Python "
    "as white space or a line break, PostgreSQL as part of a name)"
)


@dataclass(frozen=True)
class ControlCharacter:
    """The first refused character of a file, and how many the file holds."""

    code: int  # the code point
    offset: int  # byte offset in the file as stored (a BOM counts)
    line: int  # 1-based
    column: int  # 1-based, in characters of the decoded line (as an editor counts them)
    count: int  # refused characters in the whole file

    @property
    def name(self) -> str:
        known = _NAMES.get(self.code)
        if known:
            return f"{known} (0x{self.code:02X})"
        return (
            f"C1 control character U+{self.code:04X}"
            if self.code >= 0x80
            else f"control character 0x{self.code:02X}"
        )

    @property
    def why(self) -> str:
        return _WHY.get(self.code, _WHY_OTHER)

    def describe(self) -> str:
        """``"NUL (0x00) at byte offset 19 (line 1, column 20), and 2 more"``."""
        text = f"{self.name} at byte offset {self.offset} (line {self.line}, column {self.column})"
        if self.count > 1:
            text += f", and {self.count - 1} more refused control character{'s' if self.count > 2 else ''}"
        return text

    def message(self, file: str) -> str:
        return f"{file} holds a {self.describe()}: {self.why}"


def byte_line_and_column(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column of the byte at ``offset`` in a file's bytes: the column counts the
    characters before it on its line (a byte that does not decode counts as one), not bytes, and
    not the UTF-8 BOM."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    if line_start == 0 and data.startswith(UTF8_BOM):
        line_start = len(UTF8_BOM)
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def find_invalid_utf8(data: bytes) -> tuple[int, int] | None:
    """The byte offset (in the file as stored) and line of the first byte that is not UTF-8, or None."""
    skip = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    try:
        data[skip:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = exc.start + skip
        return offset, data.count(b"\n", 0, offset) + 1
    return None


def find_control_character(data: bytes) -> ControlCharacter | None:
    """The first character of ``data`` (a migration file's bytes) that schemagate refuses, or None."""
    candidate = _FIRST_BYTES.search(data)
    if candidate is None:
        return None
    first = _FORBIDDEN.search(data, candidate.start())
    if first is None:
        return None
    offset = first.start()
    matched = first.group()
    code = matched[0] if len(matched) == 1 else matched[1]  # C1: the second byte is the code point
    line, column = byte_line_and_column(data, offset)
    return ControlCharacter(
        code=code,
        offset=offset,
        line=line,
        column=column,
        count=sum(1 for _ in _FORBIDDEN.finditer(data)),
    )
