"""Runs one prepared migration on the executor's connection (autocommit, holding the lock): the loop
of attempts around it (a lock timeout retried with doubling back-off), its events, the history row
of a failure that may have changed something, and the SQL every path shares (the settings, the
history row, the client's bounded wait per message).  How the migration goes to the server is
``executor.whole_message`` (transactional, one simple-query message) or ``executor.stepwise``
(statement by statement)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext, suppress
from typing import TYPE_CHECKING

import psycopg2

from executor import stepwise, whole_message
from executor.bundle import Bundle
from executor.connection import ResponseDeadline
from executor.errors import SchemagateError
from executor.failure import LOCK_NOT_AVAILABLE, RefusedMidFile, StatementFailed, to_error
from executor.headers import Statement, line_and_column
from executor.history import HistoryType, insert_row_sql
from executor.lock import rollback_if_open
from executor.naming import REPEATABLE, UNDO
from executor.prepare import Prepared
from executor.progress import AppliedMigration, ApplyHooks, Event
from executor.session import NoticeSink
from executor.settings import ExecutorSettings, duration_seconds
from executor.vocabulary import EventKind

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection


class Runner:
    """Applies prepared migrations on one autocommit connection holding the lock."""

    def __init__(
        self,
        conn: Connection,
        bundle: Bundle,
        settings: ExecutorSettings,
        emit: Callable[[Event], None],
        hooks: ApplyHooks,
        sink: NoticeSink,
        deadline: ResponseDeadline | None = None,
        next_rank: int | None = None,
    ) -> None:
        self.conn = conn
        self.bundle = bundle
        self.settings = settings
        self.emit = emit
        self.hooks = hooks
        self.sink = sink
        self.deadline = deadline
        self.cur = conn.cursor()
        # the installed_rank of the next history row, counted here from the history read under the
        # lock (None: unknown, the server numbers each row); see row_written
        self.next_rank = next_rank
        self._settings_sql: dict[tuple[str, str, bool], str] = {}

    def bound(self, p: Prepared, what: str, *, statements: int = 1) -> AbstractContextManager[None]:
        """The client's wait for one message: statement_timeout for each of its ``statements`` (the
        server times each statement of a multi-statement message on its own) plus network_timeout."""
        network = self.settings.network_timeout_s
        statement = duration_seconds(p.statement_timeout)
        seconds = None if network is None or statement is None else statement * statements + network
        if self.deadline is None:
            return nullcontext()
        return self.deadline.bound(seconds, what)

    def pause(self, seconds: float) -> None:
        """Sleep between lock retries without leaving the session idle past idle_session_timeout."""
        network = self.settings.network_timeout_s
        step = seconds if network is None else max(0.5, network / 2)
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(step, left))
            if end - time.monotonic() > 0:
                self.cur.execute("SELECT 1")

    def settings_sql(self, p: Prepared, *, local: bool) -> str:
        key = (p.lock_timeout, p.statement_timeout, local)  # most files share the executor's settings
        text = self._settings_sql.get(key)
        if text is None:
            text = self._settings_sql[key] = self._build_settings_sql(p, local=local)
        return text

    def _build_settings_sql(self, p: Prepared, *, local: bool) -> str:
        flag = "true" if local else "false"
        parts = [f"set_config('lock_timeout', %s, {flag})", f"set_config('statement_timeout', %s, {flag})"]
        params = [p.lock_timeout, p.statement_timeout]
        if self.settings.search_path:
            parts.append(f"set_config('search_path', %s, {flag})")
            params.append(self.settings.search_path)
        return self.cur.mogrify("SELECT " + ", ".join(parts) + ";", params).decode("utf-8")

    def history_sql(
        self, p: Prepared, *, success: bool, execution_time_ms: int | None, rank: int | None = None
    ) -> str:
        e = p.entry
        return insert_row_sql(
            self.cur,
            self.settings,
            version=e.version,
            description=e.description,
            type={REPEATABLE: HistoryType.REPEATABLE, UNDO: HistoryType.UNDO}.get(e.kind, HistoryType.SQL),
            script=e.script,
            checksum=e.sha256,
            execution_time_ms=execution_time_ms,
            success=success,
            bundle_sha256=self.bundle.manifest.bundle_sha256,
            rank=rank,
        )

    def row_written(self, rank: int | None) -> None:
        """A migration's history row was committed as ``rank`` (None: numbered by the server and not
        read back).  The next row is numbered after it: the one message carries its number, so that
        the server does not look for the highest.  Should a row the count does not know of take that
        number (a writer that ignored the lock), the one message fails on the primary key, is rolled
        back, and the statement-by-statement re-run, numbered by the server, sets the count right."""
        self.next_rank = None if rank is None else rank + 1

    def run(self, p: Prepared) -> AppliedMigration:
        entry = p.entry
        if self.hooks.before_migration is not None:
            self.hooks.before_migration(self.conn, entry)
        self.emit(Event(EventKind.START, file=entry.file, message=f"applying {entry.file} ({p.why})"))
        p.statement_timeout, p.capped = self.settings.capped_statement_timeout(p.statement_timeout)
        attempt = 0
        self.sink.file = entry.file
        self.sink.collected = []
        one_message = whole_message.allowed(p, self.conn)
        try:
            while True:
                started = time.monotonic()
                try:
                    if one_message:
                        one_message = False  # a retry, or the re-run of a failure: statement by statement
                        # it failed and was rolled back: find where, as statement by statement does
                        if not whole_message.send(self, p):
                            stepwise.in_transaction(self, p)
                    elif entry.transactional:
                        stepwise.in_transaction(self, p)
                    else:
                        stepwise.without_transaction(self, p, started)
                    break
                except StatementFailed as failed:
                    code = failed.exc.pgcode
                    if code == LOCK_NOT_AVAILABLE and failed.retryable and attempt < p.lock_retries:
                        delay = self.settings.lock_retry_backoff_s * (2**attempt)
                        attempt += 1
                        self.emit(
                            Event(
                                EventKind.RETRY,
                                file=entry.file,
                                message=(
                                    f"lock_timeout ({p.lock_timeout}) expired waiting for a lock; "
                                    f"retry {attempt} of {p.lock_retries} in {delay:g}s"
                                ),
                            )
                        )
                        self.pause(delay)
                        continue
                    # retryable == nothing of the file took effect (always so for a transactional one)
                    partial = not failed.retryable
                    error = to_error(
                        failed,
                        p,
                        conn=self.conn,
                        deadline=self.deadline,
                        settings=self.settings,
                        attempts=attempt + 1,
                        partial=partial,
                    )
                    self._failed(p, started, error, partial=partial)
                    raise error from None
                except RefusedMidFile as problem:
                    self._failed(p, started, problem.error, partial=problem.partial)
                    raise problem.error from None
                except Exception as exc:  # a hook refused, or something unexpected: rolled back already
                    self.emit(
                        Event(
                            EventKind.FAILED, file=entry.file, message=f"{entry.file} was rolled back: {exc}"
                        )
                    )
                    raise
        finally:
            self.sink.file = None
        duration = int((time.monotonic() - started) * 1000)
        applied = AppliedMigration(
            entry=entry, duration_ms=duration, notices=list(self.sink.collected), attempts=attempt + 1
        )
        self.emit(
            Event(
                EventKind.APPLIED,
                file=entry.file,
                message=f"applied {entry.file} in {duration} ms",
                duration_ms=duration,
            )
        )
        if self.hooks.after_migration is not None:
            self.hooks.after_migration(self.conn, entry, applied)
        return applied

    def commit(self, p: Prepared) -> None:
        try:
            with self.bound(p, f"committing {p.entry.file}"):
                self.cur.execute("COMMIT")
        except psycopg2.Error as exc:
            raise StatementFailed(exc, None, 0, retryable=True, at_commit=True) from None

    @staticmethod
    def where(p: Prepared, st: Statement | None) -> str:
        if st is None:
            return f"writing the history row of {p.entry.file}"
        return f"running the statement at line {line_and_column(p.sql, st.start)[0]} of {p.entry.file}"

    def reset_session(self, p: Prepared) -> None:
        if self.conn.closed:
            return
        resets = "RESET lock_timeout; RESET statement_timeout;" + (
            " RESET search_path;" if self.settings.search_path else ""
        )
        with suppress(psycopg2.Error):
            self.cur.execute(resets)

    def rollback(self) -> None:
        if self.conn.closed:
            return
        with suppress(psycopg2.Error):
            rollback_if_open(self.conn)

    def _failed(self, p: Prepared, started: float, error: SchemagateError, *, partial: bool) -> None:
        """A migration that failed: its ``success = false`` row when part of it may have taken
        effect, and the FAILED event."""
        if partial:
            self._record_failure(p, started, error)
        self.emit(
            Event(
                EventKind.FAILED,
                file=p.entry.file,
                message=str(error),
                duration_ms=int((time.monotonic() - started) * 1000),
            )
        )

    def _record_failure(self, p: Prepared, started: float, error: SchemagateError) -> None:
        """Write the success=false row of a non-transactional file (it may have changed something)."""
        elapsed = int((time.monotonic() - started) * 1000)
        try:
            self.rollback()
            self.cur.execute(self.history_sql(p, success=False, execution_time_ms=elapsed))
            error.context["failed_row_written"] = True
        except psycopg2.Error as exc:
            error.context["failed_row_written"] = False
            error.message += (
                f" (the success = false history row could not be written either: "
                f"{(exc.pgerror or str(exc)).strip()})"
            )
            error.args = (error.message,)
