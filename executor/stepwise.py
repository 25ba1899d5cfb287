"""A migration statement by statement: in one transaction (``in_transaction``: BEGIN and the settings
with the first statement, the history row with the last, then COMMIT), or, for a
``transactional: false`` file, each statement committing on its own (``without_transaction``, with
``executor.index_validity``'s checks around each index statement)."""

from __future__ import annotations

import time
from contextlib import suppress
from typing import TYPE_CHECKING

import psycopg2

from executor.connection import is_connection_lost
from executor.errors import MigrationRefused, SchemagateError
from executor.failure import RefusedMidFile, StatementFailed
from executor.headers import Statement, line_and_column
from executor.lock import rollback_if_open
from executor.prepare import Prepared
from executor.progress import Event
from executor.session import IDLE
from executor.vocabulary import EventKind

if TYPE_CHECKING:
    from psycopg2.extensions import cursor as Cursor

    from executor import index_validity
    from executor.sender import Sender


def in_transaction(runner: Sender, p: Prepared) -> None:
    """Statement by statement: BEGIN + settings with the first statement, history row with the
    last, then COMMIT."""
    prefix = "BEGIN;" + runner.settings_sql(p, local=True) + "\n"
    history_sql = runner.history_sql(p, success=True, execution_time_ms=None)
    queries: list[tuple[str, Statement | None, int]] = []
    statements = p.statements
    if not statements:
        queries.append((prefix + history_sql, None, len(prefix)))
    for index, st in enumerate(statements):
        head = prefix if index == 0 else ""
        text = head + st.text
        if index == len(statements) - 1:
            text += ("\n" if st.text.rstrip().endswith(";") else "\n;") + history_sql
        queries.append((text, st, len(head)))
    cur = runner.cur
    try:
        for text, statement, prefix_len in queries:
            try:
                with runner.bound(p, runner.where(p, statement)):
                    cur.execute(text)
            except psycopg2.Error as exc:
                raise StatementFailed(exc, statement, prefix_len, retryable=True) from None
        rank = _rank(cur)  # the history row went last
        if runner.hooks.before_commit is not None:
            runner.hooks.before_commit(cur, p.entry)
        runner.commit(p)
    except BaseException:
        runner.rollback()
        raise
    runner.row_written(rank)


def without_transaction(runner: Sender, p: Prepared, started: float) -> None:
    """A ``transactional: false`` file: each statement commits on its own.  Around each index
    statement, ``executor.index_validity`` drops its leftover INVALID index and checks the result
    (imported here: the files that run in a transaction, nearly all of them, do not need it)."""
    from executor import index_validity

    cur = runner.cur
    cur.execute(runner.settings_sql(p, local=False))
    try:
        for index, st in enumerate(p.statements):
            check = _index_check(runner, p, st, index)
            try:
                with runner.bound(p, runner.where(p, st)):
                    cur.execute(st.text)
            except psycopg2.Error as exc:
                failed = StatementFailed(exc, st, 0, retryable=index == 0 and not st.may_commit_partially)
                if (check is not None or p.entry.own_transactions) and not is_connection_lost(
                    exc, runner.conn
                ):
                    with suppress(psycopg2.Error):
                        rollback_if_open(runner.conn)  # the file's own transaction, if it opened one
                        if check is not None:
                            failed.left_invalid = index_validity.left_behind(cur, check)
                raise failed from None
            if check is not None:
                problem = index_validity.after_statement(cur, check)
                if problem is not None:
                    raise RefusedMidFile(problem, partial=True)
        if p.entry.own_transactions and runner.conn.get_transaction_status() != IDLE:
            raise RefusedMidFile(_left_open(runner, p), partial=True)
        elapsed = int((time.monotonic() - started) * 1000)
        try:
            cur.execute(runner.history_sql(p, success=True, execution_time_ms=elapsed))
        except psycopg2.Error as exc:
            raise StatementFailed(exc, None, 0, retryable=False) from None
        runner.row_written(_rank(cur))
    finally:
        runner.reset_session(p)


def _left_open(runner: Sender, p: Prepared) -> SchemagateError:
    """A file run as written (``own_transactions``) that ended inside a transaction it opened: that
    transaction is rolled back (as psql's would be when its session ends); what it committed before
    stays."""
    opened = [
        st for st in p.statements if st.is_transaction_control and st.words[:1] in (("begin",), ("start",))
    ]
    line = line_and_column(p.sql, opened[-1].start)[0] if opened else None
    with suppress(psycopg2.Error):  # here, not later: the RESET of the session settings must not be
        rollback_if_open(runner.conn)  # inside the open transaction, which would roll it back too
    return MigrationRefused(
        f"{p.entry.file} ends inside a transaction it opened"
        + (f" (the BEGIN at line {line} has no COMMIT)" if line else "")
        + ": the statements after its last COMMIT were rolled back; those it committed before stay",
        file=p.entry.file,
        line=line,
        rule="transaction-left-open",
        remedy="the file ran as written (accepted history with BEGIN and COMMIT of its own): check what it "
        "committed, then `schemagate repair` to clear its failed history row and run it again",
    )


def _rank(cur: Cursor) -> int | None:
    """The installed_rank the server gave the history row just inserted (``RETURNING``)."""
    row = cur.fetchone() if cur.description else None
    return None if row is None else int(row[0])


def _index_check(runner: Sender, p: Prepared, st: Statement, index: int) -> index_validity.IndexCheck | None:
    """Before an index statement of a non-transactional file: drop its leftover INVALID index."""
    from executor import index_validity
    from executor.index_statement import is_index_statement, parse_index_statement

    if not is_index_statement(st.words):
        return None
    parsed = parse_index_statement(st.text)
    if parsed is None:
        return None
    line = line_and_column(p.sql, st.start)[0]

    def dropped(row: index_validity.IndexRow) -> None:
        runner.emit(
            Event(
                EventKind.INVALID_INDEX_DROPPED,
                file=p.entry.file,
                message=(
                    f"dropped the INVALID index {row.qualified} on {row.qualified_table} (left by an "
                    f"interrupted or failed earlier run of {p.entry.file}:{line}); building it again"
                ),
            )
        )

    try:
        with runner.bound(p, f"dropping a leftover INVALID index before line {line} of {p.entry.file}"):
            return index_validity.before_statement(
                runner.cur, parsed, file=p.entry.file, line=line, on_drop=dropped
            )
    except SchemagateError as refusal:
        raise RefusedMidFile(refusal, partial=index > 0) from None
    except psycopg2.Error as exc:
        doing = "looking for (and dropping) an INVALID index an earlier run of it left"
        raise StatementFailed(exc, st, 0, retryable=index == 0, doing=doing) from None
