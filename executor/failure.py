"""A failed migration as the executor reports it: what a failing statement carries out of the runner
(``StatementFailed``, ``RefusedMidFile``), and the SQLSTATE mapped to an error with its message, the
line and column in the file, and a remedy (``to_error``)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import psycopg2
from psycopg2 import errorcodes

from executor.connection import ResponseDeadline, is_connection_lost
from executor.errors import ConnectionFailure, LockTimeout, PermissionDenied, SchemagateError, SqlError
from executor.headers import Statement, line_and_column
from executor.prepare import Prepared
from executor.settings import ExecutorSettings

if TYPE_CHECKING:
    from psycopg2.extensions import Diagnostics
    from psycopg2.extensions import connection as Connection

    from executor import index_validity

LOCK_NOT_AVAILABLE = errorcodes.LOCK_NOT_AVAILABLE  # lock_timeout expired: retried


class StatementFailed(Exception):
    """A statement (or COMMIT) failed; carries what the error mapping needs."""

    def __init__(
        self,
        exc: psycopg2.Error,
        statement: Statement | None,
        prefix_len: int,
        *,
        retryable: bool,
        at_commit: bool = False,
        doing: str | None = None,
        one_message: bool = False,
    ) -> None:
        super().__init__(str(exc))
        self.exc = exc
        self.statement = statement
        self.prefix_len = prefix_len
        self.retryable = retryable
        self.at_commit = at_commit
        self.doing = doing  # what the executor did for the statement when it failed, if not the statement
        self.one_message = one_message  # lost while the file, its history row and COMMIT were one message
        self.left_invalid: list[index_validity.IndexRow] = []  # INVALID indexes a failed index build left


class RefusedMidFile(Exception):
    """A check between the statements of a file run without the executor's transaction refused to
    go on: an index statement's check refused to run it or found its index INVALID afterwards, or
    a file run as written (``own_transactions``) ended inside a transaction it opened."""

    def __init__(self, error: SchemagateError, *, partial: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.partial = partial  # something of the file may have taken effect: record a failed row


def to_error(
    failed: StatementFailed,
    p: Prepared,
    *,
    conn: Connection,
    deadline: ResponseDeadline | None,
    settings: ExecutorSettings,
    attempts: int,
    partial: bool,
) -> SchemagateError:
    """The error a failed statement of migration ``p`` is reported as: its class, message (the
    server's, with where in the file and what became of the file), remedy and context."""
    exc, entry, sql = failed.exc, p.entry, p.sql
    lost = is_connection_lost(exc, conn)
    overdue = deadline.overdue if deadline is not None else None
    if lost and overdue is not None:
        stalled = (
            f"no answer from the server for {overdue.seconds:g}s while {overdue.what} (statement_timeout "
            f"{p.statement_timeout} plus network_timeout {settings.network_timeout}): the network "
            "path stalled, so the executor closed the connection"
        )
    else:
        stalled = " ".join(str(exc).split())
    if lost and failed.one_message:
        return ConnectionFailure(
            f"lost the connection to the database while applying {entry.file}, whose statements, history "
            f"row and COMMIT went to the server in one message: it may or may not be applied ({stalled})",
            file=entry.file,
            remedy=(
                "the migration and its history row commit together: run `schemagate info` to see whether "
                "it is applied (PostgreSQL rolls back a transaction whose COMMIT it did not reach), "
                "check the server and the network, then apply again"
            ),
            context={"sqlstate": exc.pgcode, "stalled": overdue is not None, "may_be_applied": True},
        )
    if lost and failed.at_commit:
        return ConnectionFailure(
            f"lost the connection to the database during the COMMIT of {entry.file}: it may or may not "
            f"be applied ({stalled})",
            file=entry.file,
            remedy=(
                "the migration and its history row commit together: run `schemagate info` to see whether "
                "it is applied, then apply again"
            ),
        )
    if lost:
        return ConnectionFailure(
            f"lost the connection to the database while applying {entry.file}: {stalled}",
            file=entry.file,
            remedy=(
                "PostgreSQL rolls back the open transaction of a session whose client is gone (an idle "
                f"one within network_timeout, {settings.network_timeout}), releasing its locks; "
                "check the server and the network, then apply again"
                if entry.transactional
                else "the file runs outside a transaction: check which of its statements took effect, "
                "then apply again (an INVALID index its CREATE INDEX CONCURRENTLY left is dropped and "
                "built again)"
            ),
            context={"sqlstate": exc.pgcode, "stalled": overdue is not None},
        )
    diag = exc.diag
    line, column, where = locate(sql, failed, diag)
    primary = (diag.message_primary or exc.pgerror or str(exc)).strip()
    message = f"{primary} (SQLSTATE {exc.pgcode})"
    if diag.message_detail:
        message += f"; detail: {diag.message_detail.strip()}"
    if diag.message_hint:
        message += f"; hint: {diag.message_hint.strip()}"
    if where:
        message += f"; {where}"
    if failed.doing:
        message += f"; while {failed.doing}"
    if failed.left_invalid:  # only a non-transactional index statement's failure (executor.stepwise)
        from executor.index_validity import describe_left_behind

        message += f"; {describe_left_behind(failed.left_invalid)}"
    if entry.transactional:
        message += f"; {entry.file} was rolled back: the database is as it was before it"
    elif partial:
        message += (
            f"; {entry.file} is not transactional: what ran before the failure stayed applied (a "
            "CONCURRENTLY statement, CALL or DO may have committed part of its work) and a success = "
            "false "
            "history row records the failure"
        )
    else:
        message += f"; {entry.file} failed on its first statement, which was rolled back: "
        message += "nothing of it took effect"
    context: dict[str, Any] = {
        "sqlstate": exc.pgcode,
        "message": primary,
        "detail": diag.message_detail,
        "hint": diag.message_hint,
        "where": diag.context,
        "statement_line": (line_and_column(sql, failed.statement.start)[0] if failed.statement else None),
        "transactional": entry.transactional,
        "partial": partial,
        "attempts": attempts,
    }
    if failed.left_invalid:
        from executor.index_validity import REMEDY_REBUILD

        context["invalid_indexes"] = [r.to_dict() for r in failed.left_invalid]
        remedy = REMEDY_REBUILD
    elif partial:
        remedy = (
            "inspect the database and undo or finish what the file changed (a failed CREATE INDEX "
            "CONCURRENTLY leaves an INVALID index: DROP INDEX CONCURRENTLY it), fix the file, then run "
            "`schemagate repair` and apply again"
        )
    elif exc.pgcode == LOCK_NOT_AVAILABLE:
        remedy = (
            f"another session held a conflicting lock for longer than lock_timeout ({p.lock_timeout}) "
            f"on {attempts} attempt(s): find it in pg_stat_activity / pg_locks, apply at a quieter time, "
            "or raise the limit with `-- schemagate:set lock_timeout=30s lock_retries=5` in the file "
            "header"
        )
    elif exc.pgcode == errorcodes.QUERY_CANCELED and p.capped:
        remedy = (
            f"statement_timeout was capped at {p.statement_timeout}, the time the Lambda executor had "
            "left: a migration that needs longer belongs to the CodeBuild executor (`executor: "
            '"codebuild"` for the environment, see docs/deploy.md), or in smaller migrations'
        )
    elif exc.pgcode == errorcodes.QUERY_CANCELED:
        remedy = (
            f"the statement ran longer than statement_timeout ({p.statement_timeout}): raise it for this "
            "file with `-- schemagate:set statement_timeout=2h`, or split the work into smaller "
            "migrations"
        )
    elif exc.pgcode == errorcodes.ACTIVE_SQL_TRANSACTION:
        remedy = (
            "this statement cannot run inside a transaction: the file must be `transactional: false` in "
            "the bundle (`schemagate validate` marks files with CREATE INDEX CONCURRENTLY and similar), "
            "ideally holding that one statement"
        )
    else:
        remedy = (
            f"fix {entry.file} (it was not applied, so it may still be edited), build and approve a new "
            "bundle, and apply again"
        )
    cls: type[SchemagateError] = SqlError
    if exc.pgcode == LOCK_NOT_AVAILABLE:
        cls = LockTimeout
    elif exc.pgcode == errorcodes.INSUFFICIENT_PRIVILEGE:
        cls = PermissionDenied
    return cls(message, file=entry.file, line=line, column=column, remedy=remedy, context=context)


def locate(sql: str, failed: StatementFailed, diag: Diagnostics) -> tuple[int | None, int | None, str]:
    """Line and column in the file of the failure, and a phrase saying how precise that is."""
    st = failed.statement
    if failed.at_commit:
        return None, None, "at COMMIT (a deferred constraint or trigger failed; the line is unknown)"
    if st is None:
        return None, None, "while writing the history row (the line is unknown)"
    position = diag.statement_position
    if position and position.isdigit():
        offset = st.start + int(position) - 1 - failed.prefix_len
        if st.start <= offset <= st.end:
            line, column = line_and_column(sql, offset)
            return line, column, ""
    if diag.context and st.body_start is not None:
        m = re.search(r"\bline (\d+)\b", diag.context)
        if m:
            line = line_and_column(sql, st.body_start)[0] + int(m.group(1)) - 1
            return (
                line,
                None,
                f"at line {line} (inside the function body: {' '.join(diag.context.split())})",
            )
    line = line_and_column(sql, st.start)[0]
    return line, None, f"in the statement starting at line {line}"
