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
with pglast on every file.

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
from dataclasses import dataclass, field
from typing import Any

from pglast import ast, enums
from pglast.parser import ParseError, parse_plpgsql_json, parse_sql, scan

from executor.errors import ConfigurationError
from executor.headers import (
    SET_DIRECTIVE,
    LineCounter,
    migration_statements,
    parse_header_settings,
    wrapper_role,
)
from executor.sqltext import find_control_character
from validator.discovery import MigrationFile, skip_sql_trivia
from validator.findings import ERROR, Finding

FAMILY = "syntax"
PG_DOCS = "https://www.postgresql.org/docs/current"
_POISON = "\n;\n!!schemagate!!"  # ends any open statement, then fails with a message of its own


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


def parse_file(mf: MigrationFile) -> ParsedFile:
    """Parse one migration file: statements, syntax findings, transactional flag, header settings."""
    text = mf.text
    if text is None:  # not UTF-8: discovery already reported it
        return ParsedFile(file=mf, text="", statements=[], transactional=True, findings=[], settings={})
    lines = LineCounter(text)
    settings, findings = read_header_settings(mf.rel, text)
    parsed = ParsedFile(
        file=mf, text=text, statements=[], transactional=True, findings=findings, settings=settings
    )
    try:
        raw_statements = parse_sql(text)
    except ParseError as exc:
        parsed.findings.append(_syntax_error(mf.rel, text, lines, exc))
        return parsed

    for index, raw in enumerate(raw_statements):
        start = skip_sql_trivia(text, raw.stmt_location)
        end = raw.stmt_location + raw.stmt_len if raw.stmt_len else _end_of_last_statement(text, start)
        line, column = lines.position(start)
        stmt = Statement(
            index=index, text=text[start:end], node=raw.stmt, start=start, end=end, line=line, column=column
        )
        parsed.statements.append(stmt)
        _classify(parsed, stmt, lines)
    parsed.wrapper = _transaction_wrapper(parsed.statements)
    _check_transaction_statements(parsed)
    mark_committing_calls(parsed, parsed.committing_procedures)
    if find_control_character(mf.data) is None:  # else discovery reports the cause of any disagreement
        _check_executor_split(parsed)
    return parsed


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


# --- transactions ------------------------------------------------------------------------------

_TX = enums.TransactionStmtKind
_OPENING = (_TX.TRANS_STMT_BEGIN, _TX.TRANS_STMT_START)
_SAVEPOINTS = (_TX.TRANS_STMT_SAVEPOINT, _TX.TRANS_STMT_RELEASE, _TX.TRANS_STMT_ROLLBACK_TO)
_TRANSACTION_RULES = ("non-transactional-in-transaction", "needs-transaction-block")


def _is_transaction(stmt: Statement, kinds: tuple[Any, ...]) -> bool:
    return isinstance(stmt.node, ast.TransactionStmt) and stmt.node.kind in kinds


def _transaction_wrapper(statements: list[Statement]) -> tuple[Statement, Statement] | None:
    """The plain BEGIN and COMMIT around the whole file, recognised from the words by the executor's
    own function (so both sides agree) and confirmed by the parse tree."""
    if len(statements) < 2:
        return None
    first, last = statements[0], statements[-1]
    if (
        _is_transaction(first, _OPENING)
        and _is_transaction(last, (_TX.TRANS_STMT_COMMIT,))
        and wrapper_role(first.text) == "open"
        and wrapper_role(last.text) == "close"
    ):
        return first, last
    return None


def apply_transaction_rules(parsed: ParsedFile) -> None:
    """Set ``parsed.transactional`` from the statements the executor runs, and the findings about
    statements that cannot run the way the file will be run."""
    parsed.findings = [f for f in parsed.findings if f.rule not in _TRANSACTION_RULES]
    outside = [s for s in parsed.body if not s.transactional]
    parsed.transactional = not outside
    if not outside:
        return
    if parsed.wrapper is not None:
        begin, commit = parsed.wrapper
        for stmt in outside:
            parsed.findings.append(
                _transaction_finding(
                    parsed,
                    stmt,
                    "non-transactional-in-transaction",
                    f"{stmt.non_transactional} cannot run inside a transaction block, but this file wraps "
                    f"it in BEGIN (line {begin.line}) ... COMMIT (line {commit.line}): PostgreSQL would "
                    "refuse it when the file is applied",
                    "remove the BEGIN and COMMIT lines: schemagate runs a file holding such a statement "
                    "without a transaction, each statement committing on its own (or move the statement "
                    "into a migration of its own)",
                    f"{PG_DOCS}/sql-createindex.html#SQL-CREATEINDEX-CONCURRENTLY",
                )
            )
        return
    first = outside[0]
    for stmt in parsed.body:
        problem = needs_transaction_block(stmt.node)
        if problem is not None:
            parsed.findings.append(
                _transaction_finding(
                    parsed,
                    stmt,
                    "needs-transaction-block",
                    f"{problem}, but this file runs without a transaction because of "
                    f"{first.non_transactional} at line {first.line}",
                    "move this statement into a separate migration, which runs in a transaction, or move "
                    f"the {first.non_transactional} into a file of its own; set timeouts with a "
                    f"`-- {SET_DIRECTIVE} lock_timeout=10s statement_timeout=1h` header line, not SET LOCAL",
                    f"{PG_DOCS}/sql-set.html",
                )
            )


def needs_transaction_block(node: Any) -> str | None:
    """Why ``node`` fails or does nothing outside a transaction block, or None (it runs alike)."""
    if isinstance(node, ast.LockStmt):
        return "LOCK TABLE can only be used in a transaction block (PostgreSQL refuses it outside one)"
    if isinstance(node, ast.DeclareCursorStmt) and not node.options & enums.CURSOR_OPT_HOLD:
        return "DECLARE CURSOR without WITH HOLD can only be used in a transaction block"
    if isinstance(node, ast.VariableSetStmt) and node.is_local:
        return "SET LOCAL has no effect outside a transaction block (PostgreSQL only warns)"
    if (
        isinstance(node, ast.VariableSetStmt)
        and node.kind == enums.VariableSetKind.VAR_SET_MULTI
        and node.name == "TRANSACTION"
    ):
        return "SET TRANSACTION has no effect outside a transaction block (PostgreSQL only warns)"
    if isinstance(node, ast.ConstraintsSetStmt):
        return "SET CONSTRAINTS has no effect outside a transaction block (PostgreSQL only warns)"
    on_commit = None
    if isinstance(node, ast.CreateStmt):
        on_commit = node.oncommit
    elif isinstance(node, ast.CreateTableAsStmt) and node.into is not None:
        on_commit = node.into.onCommit
    if on_commit in (enums.OnCommitAction.ONCOMMIT_DROP, enums.OnCommitAction.ONCOMMIT_DELETE_ROWS):
        return (
            "a temporary table ON COMMIT DROP / DELETE ROWS loses its content when its own statement "
            "commits, before the next statement can use it"
        )
    return None


def _transaction_finding(
    parsed: ParsedFile, stmt: Statement, rule: str, message: str, help: str, docs: str
) -> Finding:
    return Finding(
        rule=rule,
        family=FAMILY,
        severity=ERROR,
        file=parsed.rel,
        line=stmt.line,
        column=stmt.column,
        message=message,
        help=help,
        docs=docs,
    )


def _check_transaction_statements(parsed: ParsedFile) -> None:
    """An ``explicit-transaction-control`` error for every transaction statement but the wrapper.

    A file that begins with BEGIN and ends with a transaction statement but is no plain wrapper gets
    one error, on the end that makes it so (``COMMIT AND CHAIN``, ``ROLLBACK``; ``BEGIN ISOLATION
    LEVEL ...``), not a second one on the other end."""
    statements = parsed.statements
    wrapper = parsed.wrapper or ()
    if parsed.wrapper is not None and parsed.file.layout_transactional is False:
        parsed.findings.append(
            _transaction_finding(
                parsed,
                parsed.wrapper[0],
                "explicit-transaction-control",
                "BEGIN ... COMMIT around a file that its tool's settings run without a transaction "
                "(dbmate `transaction:false`, Diesel `run_in_transaction = false`): the two contradict "
                "each other, and the executor refuses such a file",
                "remove the BEGIN and COMMIT lines (each statement then commits on its own), or the "
                "setting (schemagate then runs the file in a transaction of its own, history row included)",
                f"{PG_DOCS}/tutorial-transactions.html",
            )
        )
    first, last = (statements[0], statements[-1]) if statements else (None, None)
    near_wrapper = (
        len(statements) >= 2
        and _is_transaction(statements[0], _OPENING)
        and isinstance(statements[-1].node, ast.TransactionStmt)
    )
    for stmt in statements:
        if not isinstance(stmt.node, ast.TransactionStmt) or any(stmt is w for w in wrapper):
            continue
        if near_wrapper and stmt is first and wrapper_role(stmt.text) == "open":
            continue  # the end of the file is what is wrong
        if near_wrapper and stmt is last and wrapper_role(stmt.text) == "close":
            continue  # the BEGIN is what is wrong
        message, help = _transaction_control_text(stmt, near_wrapper and (stmt is first or stmt is last))
        parsed.findings.append(
            _transaction_finding(
                parsed,
                stmt,
                "explicit-transaction-control",
                message,
                help,
                f"{PG_DOCS}/tutorial-transactions.html",
            )
        )


def _transaction_control_text(stmt: Statement, wrapping: bool) -> tuple[str, str]:
    node = stmt.node
    keyword = _transaction_keyword(node)
    if node.kind in _SAVEPOINTS:
        return (
            f"{keyword} in a migration: the executor stops at the first statement that fails, so ROLLBACK TO "
            "SAVEPOINT can never recover from an error (it could only undo statements that succeeded)",
            f"remove the {keyword} statement; to go on after an expected error, catch it in a DO block "
            "(BEGIN ... EXCEPTION WHEN ... END), which runs in a savepoint of its own",
        )
    if wrapping and node.kind == _TX.TRANS_STMT_ROLLBACK:
        return (
            "ROLLBACK at the end of a file that starts with BEGIN: run by psql, the file changes nothing, "
            "so it is a test or a dry run, not a migration",
            "end the file with COMMIT to apply it (schemagate then runs it in its own transaction instead "
            "of the BEGIN ... COMMIT), or delete the file",
        )
    if wrapping:
        return (
            f"{keyword} with options around this file: schemagate removes only a plain `BEGIN; ... COMMIT;` "
            "around a whole file and runs it in its own transaction, which would not have them",
            "write a plain BEGIN (or START TRANSACTION) and COMMIT (or END): a migration runs at the "
            "database's default isolation level; or remove both",
        )
    return (
        f"{keyword} in a migration: the executor runs each file in a transaction of its own and records it "
        "in the same transaction; a file that opens, ends or splits transactions part-way breaks that "
        "guarantee",
        f"remove the {keyword} statement; a file wrapped as a whole in one plain `BEGIN; ... COMMIT;` is "
        "accepted (the executor runs it in its own transaction instead), and a file whose statements cannot "
        "run in a transaction (CREATE INDEX CONCURRENTLY, ...) is detected and run without one automatically",
    )


def mark_committing_calls(parsed: ParsedFile, procedures: set[str]) -> None:
    """Mark ``CALL p()`` non-transactional when ``p`` (by unqualified name) commits, then re-apply
    the transaction rules.  ``check_structure`` calls this again with the procedures of all files."""
    for stmt in parsed.statements:
        if isinstance(stmt.node, ast.CallStmt) and stmt.transactional:
            name = _last_name(stmt.node.funccall.funcname)
            if name in procedures:
                stmt.non_transactional = f"CALL {name}() (its body issues COMMIT/ROLLBACK)"
    apply_transaction_rules(parsed)


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
        return  # judged with the whole file in view: _check_transaction_statements
    if isinstance(node, (ast.DoStmt, ast.CreateFunctionStmt)):
        _check_plpgsql(parsed, stmt, lines)
        return
    stmt.non_transactional = non_transactional_reason(node)


def non_transactional_reason(node: Any) -> str | None:
    """Why PostgreSQL refuses ``node`` inside a transaction block, or None."""
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(node, ast.DropStmt) and node.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if isinstance(node, ast.ReindexStmt):
        if any(_defname(opt) == "concurrently" and _bool_option(opt) for opt in node.params or ()):
            return "REINDEX ... CONCURRENTLY"
        kind = enums.ReindexObjectType
        if node.kind in (kind.REINDEX_OBJECT_SYSTEM, kind.REINDEX_OBJECT_DATABASE):
            return f"REINDEX {node.kind.name.removeprefix('REINDEX_OBJECT_')}"
        return None
    if isinstance(node, ast.VacuumStmt) and node.is_vacuumcmd:
        return "VACUUM"
    if isinstance(node, ast.CreatedbStmt):
        return "CREATE DATABASE"
    if isinstance(node, ast.DropdbStmt):
        return "DROP DATABASE"
    if isinstance(node, ast.AlterDatabaseStmt) and _option(node.options, "tablespace") is not None:
        return "ALTER DATABASE ... SET TABLESPACE"
    if isinstance(node, ast.AlterSystemStmt):
        return "ALTER SYSTEM"
    if isinstance(node, ast.CreateTableSpaceStmt):
        return "CREATE TABLESPACE"
    if isinstance(node, ast.DropTableSpaceStmt):
        return "DROP TABLESPACE"
    if isinstance(node, ast.ClusterStmt) and node.relation is None:
        return "CLUSTER (without a table)"
    if isinstance(node, ast.CreateSubscriptionStmt):
        creates_slot = all(
            not (_defname(o) == "create_slot" and not _bool_option(o)) for o in node.options or ()
        )
        return "CREATE SUBSCRIPTION (it creates a replication slot)" if creates_slot else None
    if isinstance(node, ast.DropSubscriptionStmt):
        return "DROP SUBSCRIPTION"
    if isinstance(node, ast.AlterTableStmt):
        for cmd in node.cmds or ():
            if (
                isinstance(cmd, ast.AlterTableCmd)
                and cmd.subtype == enums.AlterTableType.AT_DetachPartition
                and isinstance(cmd.def_, ast.PartitionCmd)
                and cmd.def_.concurrent
            ):
                return "ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY"
    return None


def _transaction_keyword(node: ast.TransactionStmt) -> str:
    kind = enums.TransactionStmtKind
    return {
        kind.TRANS_STMT_BEGIN: "BEGIN",
        kind.TRANS_STMT_START: "START TRANSACTION",
        kind.TRANS_STMT_COMMIT: "COMMIT",
        kind.TRANS_STMT_ROLLBACK: "ROLLBACK",
        kind.TRANS_STMT_SAVEPOINT: "SAVEPOINT",
        kind.TRANS_STMT_RELEASE: "RELEASE SAVEPOINT",
        kind.TRANS_STMT_ROLLBACK_TO: "ROLLBACK TO SAVEPOINT",
        kind.TRANS_STMT_PREPARE: "PREPARE TRANSACTION",
        kind.TRANS_STMT_COMMIT_PREPARED: "COMMIT PREPARED",
        kind.TRANS_STMT_ROLLBACK_PREPARED: "ROLLBACK PREPARED",
    }.get(node.kind, "transaction control")


def _defname(option: Any) -> str | None:
    return option.defname if isinstance(option, ast.DefElem) else None


def _bool_option(option: ast.DefElem) -> bool:
    """The value of a boolean option (``concurrently``, ``create_slot = false``); absent means true."""
    arg = option.arg
    if arg is None:
        return True
    if isinstance(arg, ast.Boolean):
        return bool(arg.boolval)
    if isinstance(arg, ast.Integer):
        return arg.ival != 0
    if isinstance(arg, ast.String):
        return arg.sval.lower() not in ("false", "off", "no", "0")
    return True


def _last_name(names: Any) -> str:
    parts = [n.sval for n in names or () if isinstance(n, ast.String)]
    return parts[-1].lower() if parts else ""


# --- PL/pgSQL bodies --------------------------------------------------------------------------


def _option(options: Any, name: str) -> ast.DefElem | None:
    for opt in options or ():
        if _defname(opt) == name:
            return opt
    return None


def _check_plpgsql(parsed: ParsedFile, stmt: Statement, lines: LineCounter) -> None:
    node = stmt.node
    options = node.args if isinstance(node, ast.DoStmt) else node.options
    language = _option(options, "language")
    lang = "plpgsql" if language is None and isinstance(node, ast.DoStmt) else ""
    if language is not None and isinstance(language.arg, ast.String):
        lang = language.arg.sval.lower()
    body_opt = _option(options, "as")
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
        line, column = _plpgsql_error_position(stmt, body_opt, body_arg.sval, message, lines)
        what = (
            "DO block"
            if isinstance(node, ast.DoStmt)
            else ("procedure" if node.is_procedure else "function") + f" {_last_name(node.funcname)}"
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
        parsed.committing_procedures.add(_last_name(node.funcname))


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
            return exc.args[0] == message
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
