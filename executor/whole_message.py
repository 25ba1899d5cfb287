"""A transactional migration as one simple-query message, one round trip: BEGIN, the ``SET LOCAL``
settings, the file's statements, its history row and COMMIT (``send``), when the file allows it
(``allowed``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg2

from executor.connection import is_connection_lost
from executor.failure import LOCK_NOT_AVAILABLE, StatementFailed
from executor.prepare import Prepared
from executor.session import IDLE

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

    from executor.sender import Sender


def allowed(p: Prepared, conn: Connection) -> bool:
    """Can this migration go to the server as one message (``send``)?

    Not a ``transactional: false`` file (each statement commits on its own, with index checks in
    between); not a file with ``lock_retries = 0`` (a lock timeout in the one message could only be
    located by running the file again, which would be the retry the file forbids); not a file with
    a COPY (psycopg2 answers COPY ... STDIN/STDOUT only on its own); not on PostgreSQL before 13,
    which applies statement_timeout to a whole multi-statement message instead of each statement.
    """
    return (
        p.entry.transactional
        and p.lock_retries > 0
        and conn.server_version >= 130000
        and not any(st.words[:1] == ("copy",) for st in p.statements)
    )


def send(runner: Sender, p: Prepared) -> bool:
    """BEGIN, the settings, the file's statements, its history row and COMMIT as one simple-query
    message: one round trip.  True when applied.

    False when the server refused it: PostgreSQL stopped at the failing statement and the
    transaction the message opened is rolled back here, so nothing of it stays; the caller then runs
    the file statement by statement (``executor.stepwise.in_transaction``) to report the exact
    statement, line and column.  The notices of this attempt are held until its outcome is known,
    so a re-run does not report them twice.  A lock timeout is raised into the retry loop instead
    (the retry runs statement by statement), and so is a lost connection: with COMMIT in the
    message, the migration may or may not be applied.  With a ``before_commit`` hook, COMMIT is a
    second message, after the hook, inside the still open transaction.
    """
    hook = runner.hooks.before_commit
    parts = ["BEGIN;", runner.settings_sql(p, local=True)]
    parts += [st.text if st.text.rstrip().endswith(";") else st.text + "\n;" for st in p.statements]
    rank = runner.next_rank
    parts.append(runner.history_sql(p, success=True, execution_time_ms=None, rank=rank) + ";")
    if hook is None:
        parts.append("COMMIT;")
    text = "\n".join(parts)
    what = (
        f"running {p.entry.file} ({len(p.statements)} statement(s), its history row"
        + (" and COMMIT" if hook is None else "")
        + " in one message)"
    )
    runner.sink.hold()
    try:
        with runner.bound(p, what, statements=len(p.statements) + 1):
            runner.cur.execute(text)
    except psycopg2.Error as exc:
        runner.sink.discard()
        if is_connection_lost(exc, runner.conn):
            raise StatementFailed(exc, None, 0, retryable=True, one_message=hook is None) from None
        runner.rollback()
        if exc.pgcode == LOCK_NOT_AVAILABLE:
            raise StatementFailed(exc, None, 0, retryable=True) from None
        return False
    except BaseException:
        runner.sink.discard()
        runner.rollback()
        raise
    if hook is None and runner.conn.get_transaction_status() != IDLE:
        # the COMMIT did not run (the server read the text differently from the executor's splitter):
        # nothing is committed; the statement-by-statement run reports what the server makes of it
        runner.sink.discard()
        runner.rollback()
        return False
    runner.sink.release()
    if hook is not None:
        try:
            hook(runner.cur, p.entry)
            runner.commit(p)
        except BaseException:
            runner.rollback()
            raise
    runner.row_written(rank)
    return True
