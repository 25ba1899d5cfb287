"""Parse every migration with PostgreSQL's own parser (pglast / libpg_query), once per file.

What this module finds (family ``syntax``):

- ``syntax-error``: the SQL does not parse; at the 1-based line and column of the file;
- ``plpgsql-syntax-error``: the PL/pgSQL body of a ``DO`` block or of ``CREATE FUNCTION/PROCEDURE
  ... LANGUAGE plpgsql`` does not parse; at the body line where the parser stopped (the
  statement's position when that cannot be found);
- ``explicit-transaction-control``: ``BEGIN``/``COMMIT``/``ROLLBACK``/``SAVEPOINT``... at top level,
  except one plain ``BEGIN; ... COMMIT;`` around the whole file (the executor owns transactions);
- ``non-transactional-in-transaction``: a file wrapped in ``BEGIN; ... COMMIT;`` holds a statement
  that cannot run in a transaction block;
- ``needs-transaction-block``: a file that runs without a transaction holds a statement that only
  works inside one (``LOCK``, ``SET LOCAL``, ``DECLARE`` without ``HOLD``, ...);
- ``executor-split-mismatch``: the executor's own lexer would cut the file into other statements
  than PostgreSQL's parser does (so what runs would not be what was checked);
- ``bad-header-setting``: a ``-- schemagate:set key=value`` header line with an unknown key or a
  bad value.

All are errors.

**Transactions.** The executor runs a file in a transaction of its own, which also writes the
history row.  A file whose whole body is wrapped in one plain ``BEGIN`` (``BEGIN WORK``, ``BEGIN
TRANSACTION``, ``START TRANSACTION``) ... ``COMMIT`` (``COMMIT WORK|TRANSACTION``, ``END``), as
golang-migrate and dbmate histories are written, is accepted: the wrapper is not sent, the
executor's transaction takes its place (``ParsedFile.wrapper``; the statements that run are
``ParsedFile.body``).  Every other transaction statement is an error: a ``BEGIN`` with options
(isolation level, ``READ ONLY``: the executor's transaction would not have them), ``COMMIT AND
CHAIN``, a file that ends with ``ROLLBACK``, anything in the middle of a file, and savepoints (the
executor stops at the first failing statement, so ``ROLLBACK TO SAVEPOINT`` could never recover from
an error; a ``DO`` block with an ``EXCEPTION`` clause does that).  Which statements the executor
sends is decided by ``executor.headers.migration_statements``; this module checks that it agrees
with pglast on every file (the transaction rules are ``validator.transactions``).

A file is ``transactional: false`` when it holds a statement PostgreSQL refuses inside a transaction
block: ``CREATE/DROP INDEX CONCURRENTLY``, ``REINDEX ... CONCURRENTLY`` (and ``REINDEX SYSTEM/DATABASE``),
``VACUUM``, ``CREATE/DROP DATABASE``, ``ALTER DATABASE ... SET TABLESPACE``, ``ALTER SYSTEM``,
``CREATE/DROP TABLESPACE``, ``ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY``, ``CLUSTER`` without
a table, ``CREATE SUBSCRIPTION`` (unless ``create_slot = false``), ``DROP SUBSCRIPTION``, a ``DO``
block whose PL/pgSQL body issues ``COMMIT``/``ROLLBACK``, and a ``CALL`` of a procedure whose body
does (when the procedure is created in one of the migrations: see ``mark_committing_calls``).
Creating such a procedure is itself transactional.  ``ALTER TYPE ... ADD VALUE`` is transactional on
PostgreSQL 12 and later, the only versions schemagate supports.  Such a file may hold other
statements (a Flyway file of several ``CREATE INDEX CONCURRENTLY IF NOT EXISTS``): each commits on
its own, as psql runs them, and a failure part-way leaves a ``success = false`` history row.  The
safety rule ``prefer-robust-stmts`` warns about each statement a re-run after such a failure would
stop at (no ``IF [NOT] EXISTS``); it is a safety rule, not a syntax check, so it judges only new
migrations and can be suppressed with a reason.  Statements that only work inside a transaction
block are refused in such a file (``needs-transaction-block``).

Per-file settings for the executor sit in the leading comment block::

    -- schemagate:set lock_timeout=10s statement_timeout=1h lock_retries=5

Positions: pglast reports statement locations and error positions as 0-based *character* indexes
into the text (it converts libpg_query's byte offsets), so lines and columns are right for
non-ASCII files; the text is the file decoded with its BOM removed and CRLF turned into LF, which
keeps line numbers and columns as an editor shows them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pglast import ast
from pglast.parser import ParseError, parse_plpgsql_json, parse_sql, parse_sql_json, scan

from executor.errors import ConfigurationError
from executor.headers import (
    SET_DIRECTIVE,
    LineCounter,
    migration_statements,
    parse_header_settings,
)
from executor.sqltext import find_control_character
from validator.discovery import MigrationFile, skip_sql_trivia
from validator.findings import ERROR, Finding
from validator.parsed import ParsedFile, Statement
from validator.transactions import (
    TREE_NEEDED,
    check_transaction_statements,
    last_name,
    mark_committing_calls,
    non_transactional_reason,
    option_named,
    transaction_wrapper,
)

FAMILY = "syntax"
PG_DOCS = "https://www.postgresql.org/docs/current"
_POISON = "\n;\n!!schemagate!!"  # ends any open statement, then fails with a message of its own


def parse_file(mf: MigrationFile, *, trees: bool = True) -> ParsedFile:
    """Parse one migration file: statements, syntax findings, transactional flag, header settings.

    ``trees=False`` (``apply --migrations``, which needs the flags, not the trees): a file none of
    whose statements this module looks into (``_without_trees``) is read from libpg_query's JSON
    output, several times cheaper than pglast's Python parse tree, and its ``Statement.node`` is
    None; every other file is parsed as with ``trees=True``.  Either way everything but the trees is
    the same (tests/test_corpus.py compares the two on every migration of the test corpus)."""
    text = mf.text
    if text is None:  # not UTF-8: discovery already reported it
        return ParsedFile(file=mf, text="", statements=[], transactional=True, findings=[], settings={})
    lines = LineCounter(text)
    settings, findings = read_header_settings(mf.rel, text)
    parsed = ParsedFile(
        file=mf, text=text, statements=[], transactional=True, findings=findings, settings=settings
    )
    raw_statements: list[tuple[int, int, Any]] | None = None if trees else _without_trees(text)
    if raw_statements is None:
        try:
            raw_statements = [
                (raw.stmt_location or 0, raw.stmt_len or 0, raw.stmt) for raw in parse_sql(text)
            ]
        except ParseError as exc:
            parsed.findings.append(_syntax_error(mf.rel, text, lines, exc))
            return parsed

    for index, (location, length, node) in enumerate(raw_statements):
        # a location of 0 is the first statement's; a length of 0: the statement runs to the end
        start = skip_sql_trivia(text, location)
        end = location + length if length else _end_of_last_statement(text, start)
        line, column = lines.position(start)
        stmt = Statement(
            index=index, text=text[start:end], node=node, start=start, end=end, line=line, column=column
        )
        parsed.statements.append(stmt)
        _classify(parsed, stmt, lines)
    parsed.wrapper = transaction_wrapper(parsed.statements)
    check_transaction_statements(parsed)
    mark_committing_calls(parsed, parsed.committing_procedures)
    if find_control_character(mf.data) is None:  # else discovery reports the cause of any disagreement
        _check_executor_split(parsed)
    return parsed


def _without_trees(text: str) -> list[tuple[int, int, Any]] | None:
    """Each statement's (location, length, no tree) from libpg_query's JSON, when no statement of the
    file needs its tree: none is of a ``TREE_NEEDED`` kind, no CREATE/DROP INDEX is CONCURRENTLY
    and no ALTER TABLE holds a partition command.  None when one does, when the text does not parse
    (the tree parse reports the error) or is not ASCII (the JSON counts bytes, the trees characters)."""
    if not text.isascii():
        return None
    try:
        tree = json.loads(parse_sql_json(text))
    except ParseError:
        return None
    rows: list[tuple[int, int, Any]] = []
    for raw in tree.get("stmts", ()):
        ((kind, body),) = raw["stmt"].items()
        if (
            kind in TREE_NEEDED
            or (kind in ("IndexStmt", "DropStmt") and body.get("concurrent"))
            or (
                kind == "AlterTableStmt"
                and any(
                    "PartitionCmd" in (cmd.get("AlterTableCmd", {}).get("def") or {})
                    for cmd in body.get("cmds", ())
                )
            )
        ):
            return None
        rows.append((raw.get("stmt_location", 0), raw.get("stmt_len", 0), None))
    return rows


def _check_executor_split(parsed: ParsedFile) -> None:
    """The executor sends a file statement by statement, cut by its own lexer and without the
    ``BEGIN; ... COMMIT;`` wrapper (``executor.headers.migration_statements``, which cannot use
    pglast); make sure it sends exactly the statements PostgreSQL's parser found, so no fragment of
    a statement is ever sent and no statement is hidden inside another."""
    executor = migration_statements(parsed.text)
    ours = [s.start for s in parsed.body]
    theirs = [s.start for s in executor.statements]
    if ours == theirs and (parsed.wrapper is None) == (executor.wrapper is None):
        return
    pairs = enumerate(zip(ours, theirs, strict=False))
    first = next((i for i, (a, b) in pairs if a != b), min(len(ours), len(theirs)))
    # the statement whose end the executor gets wrong
    stmt = parsed.body[max(first - 1, 0)] if parsed.body else parsed.statements[0]
    parsed.findings.append(
        Finding(
            rule="executor-split-mismatch",
            family=FAMILY,
            severity=ERROR,
            file=parsed.rel,
            line=stmt.line,
            column=stmt.column,
            message="the executor would cut this file into statements differently than PostgreSQL's parser "
            "does and send a fragment of this statement on its own, or statements nobody checked",
            help="please report the file (it is a schemagate bug); until it is fixed, quote identifiers "
            'named like keywords (e.g. "end"), or write a function body as a dollar-quoted string',
            docs=f"{PG_DOCS}/sql-syntax-lexical.html",
        )
    )


def _end_of_last_statement(text: str, start: int) -> int:
    """End offset of a statement that runs to the end of the text (pglast's stmt_len == 0):
    after its last token, not counting a trailing semicolon or comments."""
    end = start
    for token in scan(text[start:]):
        if token.name in ("SQL_COMMENT", "C_COMMENT") or token.name == "ASCII_59":
            continue
        end = start + token.end + 1
    return end


# --- statements that cannot run inside a transaction block ----------------------------------


def _classify(parsed: ParsedFile, stmt: Statement, lines: LineCounter) -> None:
    node = stmt.node
    if isinstance(node, ast.TransactionStmt):
        return  # judged with the whole file in view: check_transaction_statements
    if isinstance(node, (ast.DoStmt, ast.CreateFunctionStmt)):
        _check_plpgsql(parsed, stmt, lines)
        return
    stmt.non_transactional = non_transactional_reason(node)


# --- PL/pgSQL bodies --------------------------------------------------------------------------


def _check_plpgsql(parsed: ParsedFile, stmt: Statement, lines: LineCounter) -> None:
    node = stmt.node
    options = node.args if isinstance(node, ast.DoStmt) else node.options
    language = option_named(options, "language")
    lang = "plpgsql" if language is None and isinstance(node, ast.DoStmt) else ""
    if language is not None and isinstance(language.arg, ast.String):
        lang = (language.arg.sval or "").lower()
    body_opt = option_named(options, "as")
    if lang != "plpgsql" or body_opt is None:
        return
    body_arg = body_opt.arg
    if isinstance(body_arg, tuple):
        body_arg = body_arg[0] if body_arg else None
    if not isinstance(body_arg, ast.String):
        return
    try:
        functions = json.loads(parse_plpgsql_json(stmt.text))
    except ParseError as exc:
        message = exc.args[0]
        line, column = _plpgsql_error_position(stmt, body_opt, body_arg.sval or "", message, lines)
        what = (
            "DO block"
            if isinstance(node, ast.DoStmt)
            else ("procedure" if node.is_procedure else "function") + f" {last_name(node.funcname)}"
        )
        parsed.findings.append(
            Finding(
                rule="plpgsql-syntax-error",
                family=FAMILY,
                severity=ERROR,
                file=parsed.rel,
                line=line,
                column=column,
                message=f"PL/pgSQL body of the {what}: {message}; PostgreSQL would refuse the statement",
                help="fix the PL/pgSQL code at this line (the statement starts at line "
                f"{stmt.line}); see the PL/pgSQL manual for the statement's syntax",
                docs=f"{PG_DOCS}/plpgsql-statements.html",
            )
        )
        return
    if not _commits(functions):
        return
    if isinstance(node, ast.DoStmt):
        stmt.non_transactional = "a DO block whose body issues COMMIT/ROLLBACK"
    elif node.is_procedure:
        parsed.committing_procedures.add(last_name(node.funcname))


def _commits(tree: Any) -> bool:
    stack = [tree]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "PLpgSQL_stmt_commit" in item or "PLpgSQL_stmt_rollback" in item:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _plpgsql_error_position(
    stmt: Statement, body_opt: ast.DefElem, body: str, message: str, lines: LineCounter
) -> tuple[int, int]:
    """The file position of a PL/pgSQL error.

    libpg_query gives no position for errors inside the body, so: find the body's string constant
    in the statement, then find the shortest prefix of the body (in lines) that fails with the
    same message (a parser stops at its first error, so prefixes are monotone); that line is where
    the error is.  Falls back to the statement's own position.
    """
    token = _body_token(stmt, body_opt, body)
    if token is None:
        return stmt.line, stmt.column
    tok_start, tok_end = token  # offsets into stmt.text, end exclusive
    raw = stmt.text[tok_start:tok_end]
    opening = re.match(r"\$[^$]*\$|[Ee]?'", raw)
    content_start = stmt.start + tok_start + (len(opening.group(0)) if opening else 0)
    body_lines = body.split("\n")
    tag = "$sgbody$"
    while tag in body:
        tag = tag[:-1] + "x$"

    def fails_same(k: int) -> bool:
        # the first k lines, then a line that is an error wherever the parser is
        prefix = "\n".join(body_lines[:k]) + _POISON
        candidate = stmt.text[:tok_start] + tag + prefix + tag + stmt.text[tok_end:]
        try:
            parse_plpgsql_json(candidate)
        except ParseError as exc:
            return bool(exc.args[0] == message)
        return False

    low, high = 1, len(body_lines)
    if not fails_same(high):
        if "end of input" not in message:
            return stmt.line, stmt.column
        low = high  # the body ends too early (a missing END): point at its last line
    while low < high:
        mid = (low + high) // 2
        if fails_same(mid):
            high = mid
        else:
            low = mid + 1
    body_line = body_lines[low - 1]
    line_in_body = low - 1
    line_no, first_col = lines.position(content_start)
    line_no += line_in_body
    near = re.search(r'at or near "(.*)"$', message)
    index = body_line.find(near.group(1)) if near else -1
    if index < 0:
        index = len(body_line) - len(body_line.lstrip())
    column = index + 1 + (first_col - 1 if line_in_body == 0 else 0)
    return line_no, column


def _body_token(stmt: Statement, body_opt: ast.DefElem, body: str) -> tuple[int, int] | None:
    """Offsets (in stmt.text, end exclusive) of the string constant holding the body."""
    location = getattr(body_opt, "arg_location", None)
    try:
        tokens = [t for t in scan(stmt.text) if t.name == "SCONST"]
    except ParseError:
        return None
    for token in tokens:
        if location is not None and stmt.start + token.start == location:
            return token.start, token.end + 1
    for token in tokens:
        if body in stmt.text[token.start : token.end + 1]:
            return token.start, token.end + 1
    return None


# --- syntax errors --------------------------------------------------------------------------


def _syntax_error(rel: str, text: str, lines: LineCounter, exc: ParseError) -> Finding:
    message, location = exc.args[0], exc.args[1] if len(exc.args) > 1 else None
    if location is None:  # "at end of input": point just after the last character
        location = len(text.rstrip())
    line, column = lines.position(location)
    return Finding(
        rule="syntax-error",
        family=FAMILY,
        severity=ERROR,
        file=rel,
        line=line,
        column=column,
        message=f"{message}; PostgreSQL would refuse this file",
        help="fix the SQL at this position (PostgreSQL's own parser reads the file the way the server will); "
        "psql meta-commands such as \\set or \\i are not SQL and cannot be used in a migration",
        docs=f"{PG_DOCS}/sql-syntax.html",
    )


# --- header settings ------------------------------------------------------------------------


def read_header_settings(rel: str, text: str) -> tuple[dict[str, str], list[Finding]]:
    """``-- schemagate:set key=value ...`` lines of the leading comment block, read by the
    executor's own parser (executor.headers) so that validation accepts exactly what the executor
    will apply; its refusal becomes a ``bad-header-setting`` finding."""
    try:
        return parse_header_settings(text, file=rel), []
    except ConfigurationError as exc:
        line = exc.line or 1
        line_text = text.split("\n")[line - 1] if line <= text.count("\n") + 1 else ""
        column = len(line_text) - len(line_text.lstrip()) + 1
        directive = line_text.find(SET_DIRECTIVE)
        for token in re.finditer(
            r"\S+", line_text[directive + len(SET_DIRECTIVE) :] if directive >= 0 else ""
        ):
            if token.group().partition("=")[0] in exc.message:  # the key the executor complains about
                column = directive + len(SET_DIRECTIVE) + token.start() + 1
                break
        return {}, [
            Finding(
                rule="bad-header-setting",
                family=FAMILY,
                severity=ERROR,
                file=rel,
                line=line,
                column=column,
                message=f"{exc.message}: the executor would refuse this file",
                help=f"{exc.remedy}; for example: -- {SET_DIRECTIVE} lock_timeout=10s statement_timeout=1h "
                "lock_retries=5",
                docs="https://github.com/schemagate/schemagate/blob/main/README.md#configuration",
            )
        ]
