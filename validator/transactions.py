"""Which statements of a parsed migration run in a transaction, and the ``syntax`` errors about
transactions (``validator.parse`` describes them and calls this module on every file):
``explicit-transaction-control``, ``non-transactional-in-transaction``, ``needs-transaction-block``.

``transaction_wrapper`` recognises the plain ``BEGIN; ... COMMIT;`` around a whole file;
``non_transactional_reason`` says why PostgreSQL refuses a statement inside a transaction block;
``apply_transaction_rules`` (again from ``mark_committing_calls``, once the procedures of every
file are known) sets ``ParsedFile.transactional`` and the findings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pglast import ast, enums

from executor.headers import SET_DIRECTIVE, wrapper_role
from validator.findings import ERROR, Finding

if TYPE_CHECKING:
    from validator.parsed import ParsedFile, Statement

FAMILY = "syntax"  # validator.parse's family: these checks are part of parsing a file
PG_DOCS = "https://www.postgresql.org/docs/current"


_TX = enums.TransactionStmtKind
_OPENING = (_TX.TRANS_STMT_BEGIN, _TX.TRANS_STMT_START)
_SAVEPOINTS = (_TX.TRANS_STMT_SAVEPOINT, _TX.TRANS_STMT_RELEASE, _TX.TRANS_STMT_ROLLBACK_TO)
_TRANSACTION_RULES = ("non-transactional-in-transaction", "needs-transaction-block")


def _is_transaction(stmt: Statement, kinds: tuple[Any, ...]) -> bool:
    return isinstance(stmt.node, ast.TransactionStmt) and stmt.node.kind in kinds


def transaction_wrapper(statements: list[Statement]) -> tuple[Statement, Statement] | None:
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
    if isinstance(node, ast.DeclareCursorStmt) and not (node.options or 0) & enums.CURSOR_OPT_HOLD:
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


def check_transaction_statements(parsed: ParsedFile) -> None:
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
        "run in a transaction (CREATE INDEX CONCURRENTLY, ...) is detected and run without one "
        "automatically; an old file that is applied already and must not change is accepted history "
        "(`accepted_history`), which runs as written",
    )


def mark_committing_calls(parsed: ParsedFile, procedures: set[str]) -> None:
    """Mark ``CALL p()`` non-transactional when ``p`` (by unqualified name) commits, then re-apply
    the transaction rules.  ``check_structure`` calls this again with the procedures of all files."""
    for stmt in parsed.statements:
        if isinstance(stmt.node, ast.CallStmt) and stmt.node.funccall is not None and stmt.transactional:
            name = last_name(stmt.node.funccall.funcname)
            if name in procedures:
                stmt.non_transactional = f"CALL {name}() (its body issues COMMIT/ROLLBACK)"
    apply_transaction_rules(parsed)


# the statements whose parse tree validator.parse needs (by pglast class name, as libpg_query's JSON
# names them): transaction control, PL/pgSQL bodies, CALLs and the kinds non_transactional_reason
# looks into; CREATE/DROP INDEX and ALTER TABLE, common in every history, are let through when the
# JSON holds none of the fields it refuses (validator.parse._without_trees).  Keep in step with
# non_transactional_reason below.
TREE_NEEDED = frozenset(
    kind.__name__
    for kind in (
        ast.TransactionStmt,
        ast.DoStmt,
        ast.CreateFunctionStmt,
        ast.CallStmt,
        ast.ReindexStmt,
        ast.VacuumStmt,
        ast.CreatedbStmt,
        ast.DropdbStmt,
        ast.AlterDatabaseStmt,
        ast.AlterSystemStmt,
        ast.CreateTableSpaceStmt,
        ast.DropTableSpaceStmt,
        ast.ClusterStmt,
        ast.CreateSubscriptionStmt,
        ast.DropSubscriptionStmt,
    )
)


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
    if isinstance(node, ast.AlterDatabaseStmt) and option_named(node.options, "tablespace") is not None:
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
    keywords: dict[enums.TransactionStmtKind | None, str] = {
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
    }
    return keywords.get(node.kind, "transaction control")


# --- the parse tree, read where its fields vary ---------------------------------------------


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
        return (arg.sval or "").lower() not in ("false", "off", "no", "0")
    return True


def last_name(names: Any) -> str:
    parts = [n.sval for n in names or () if isinstance(n, ast.String) and n.sval is not None]
    return parts[-1].lower() if parts else ""


def option_named(options: Any, name: str) -> ast.DefElem | None:
    for opt in options or ():
        if isinstance(opt, ast.DefElem) and opt.defname == name:
            return opt
    return None
