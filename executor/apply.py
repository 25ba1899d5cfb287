"""Apply a verified bundle to PostgreSQL: plan, refusals, the apply loop, repair and baseline.

How a run goes (``apply``):

1. one connection in autocommit; the executor's session-level advisory lock is taken (waiting up
   to ``advisory_lock_wait_s``), so no transaction is open while we wait or while a
   ``CREATE INDEX CONCURRENTLY`` runs;
2. the history table is read (one query) *after* taking the lock (another executor may have applied
   migrations while we waited), and created if absent;
3. the plan joins bundle and history (``executor.state``); any refusal (drift, missing, out of
   order, failed row, a header error, a transaction statement or a control character inside a
   file) is raised before anything runs;
4. each migration runs as psql would run it:
   - transactional (the default): one simple-query message, one round trip, holds ``BEGIN``, the
     ``SET LOCAL`` lock_timeout / statement_timeout / search_path, the file's statements, the
     history row and ``COMMIT``; PostgreSQL stops at a failing statement, and the transaction is
     rolled back, migration *and* history row together.  The file then runs again statement by
     statement in a new transaction (BEGIN and the settings with the first statement, the history
     row with the last one, then COMMIT), which finds the failing statement, its line and column
     (or succeeds, when the failure was transient), and is rolled back in turn.  Statement by
     statement from the start: a file with ``lock_retries = 0``, with a COPY, on PostgreSQL before
     13, and a retry after a lock timeout; with a ``before_commit`` hook COMMIT is a message of its
     own.  A plain ``BEGIN; ... COMMIT;`` around the whole file is not sent (this transaction takes
     its place);
   - ``transactional: false``: autocommit, session-level timeouts reset afterwards, history row
     written after the last statement succeeded.  **A failure after anything of the file may have
     taken effect writes a ``success = false`` row** — that is, any failure except one of its first
     statement when that statement is not CONCURRENTLY, CALL or DO (one statement in autocommit is
     atomic; those three commit part of their work).  The row blocks later runs until a person
     checks the database and runs ``schemagate repair``; without a row the file simply stays
     pending.  Around each CREATE INDEX / REINDEX statement ``executor.index_validity`` drops the
     INVALID index an interrupted or failed earlier run of it left (and builds it again), and
     afterwards checks that the index it names is valid: an INVALID index is a failure, never
     a success row;
   - a lock_timeout (SQLSTATE 55P03) is retried ``lock_retries`` times with doubling back-off
     (for a non-transactional file only when nothing of it took effect, as above);
5. ``should_continue()`` is asked between migrations (the Lambda stops before its time runs out);
6. the lock is released in ``finally``; if the process dies, the session ends and PostgreSQL
   rolls back the open transaction and releases the lock.

Bounded waits (``network_timeout``, default 10s): for the run the session sets
``idle_in_transaction_session_timeout`` and (PostgreSQL 14+) ``idle_session_timeout`` to it, so a
run whose network stalled, between two statements of a migration or between two migrations,
loses its session, its open transaction and all its locks within ``network_timeout``; plus
``client_connection_check_interval`` (2s, PostgreSQL 14+: a vanished client during a long
statement) and server-side TCP keepalives / ``tcp_user_timeout``.  On the client side every query
waits at most ``network_timeout`` for its answer, a migration's statements their
``statement_timeout`` on top (each statement's, for a migration sent as one message)
(``executor.connection.ResponseDeadline``); then the connection is closed and the run fails with
CONNECTION_ERROR.  A connection lost at any point is a ``ConnectionFailure``; lost while the one
message of a migration (which holds its COMMIT) was unanswered, the error says that it may or may
not be applied (``schemagate info`` tells).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg2
import psycopg2.extensions

from executor import history as history_table
from executor import index_validity, sqltext
from executor.bundle import Bundle
from executor.connection import (
    NETWORK_OPTIONS,
    ResponseDeadline,
    connection_errors,
    is_connection_lost,
)
from executor.errors import (
    ConfigurationError,
    ConnectionFailure,
    LockTimeout,
    MigrationRefused,
    PermissionDenied,
    SchemagateError,
    SecurityViolation,
    SqlError,
    combined,
)
from executor.headers import (
    HEADER_KEYS,
    Statement,
    line_and_column,
    migration_statements,
    parse_header_settings,
)
from executor.history import (
    BASELINE_SCRIPT,
    TYPE_BASELINE,
    TYPE_REPEATABLE,
    TYPE_SQL,
    TYPE_UNDO,
    ensure_history_table,
    insert_row,
    insert_row_sql,
    read_history,
    read_history_if_present,
)
from executor.index_statement import is_index_statement, parse_index_statement
from executor.lock import AdvisoryLock, rollback_if_open
from executor.manifest import ManifestEntry
from executor.naming import REPEATABLE, UNDO, VERSIONED, Version
from executor.settings import ExecutorSettings, duration_seconds
from executor.state import MigrationInfo, MigrationState, build_info, refusals

_IDLE = psycopg2.extensions.TRANSACTION_STATUS_IDLE
LOCK_NOT_AVAILABLE = "55P03"
DEAD_CLIENT_CHECK = "2s"  # client_connection_check_interval (PostgreSQL 14+) for the executor's session

WHY_PENDING = "pending"
WHY_OUT_OF_ORDER = "out of order"
WHY_REPEATABLE_CHANGED = "repeatable changed"
WHY_REPEATABLE_NEW = "repeatable new"


@dataclass
class Event:
    """Progress of a run: waiting_for_lock, lock_acquired, start, notice, retry, invalid_index_dropped,
    applied, failed, stopped."""

    kind: str
    file: str | None = None
    message: str = ""
    duration_ms: int | None = None


@dataclass
class AppliedMigration:
    entry: ManifestEntry
    duration_ms: int
    notices: list[str] = field(default_factory=list)
    attempts: int = 1


@dataclass
class ApplyHooks:
    """Optional calls around each migration (the rehearsal uses them).

    before_migration(conn, entry): before the migration starts, no transaction open.
    before_commit(cursor, entry): transactional migrations only — after its SQL and its history row,
        inside its transaction, before COMMIT; raising rolls the migration back and stops the run.
    after_migration(conn, entry, applied): after it was committed.
    """

    before_migration: Callable[[Any, ManifestEntry], None] | None = None
    before_commit: Callable[[Any, ManifestEntry], None] | None = None
    after_migration: Callable[[Any, ManifestEntry, AppliedMigration], None] | None = None


@dataclass
class Plan:
    infos: list[MigrationInfo]
    to_apply: list[tuple[ManifestEntry, str]]  # (entry, why): pending | out of order | repeatable changed/new
    refusals: list[SchemagateError]

    def summary(self) -> str:
        if self.refusals:
            return f"{len(self.refusals)} refusal(s): nothing will be applied"
        if not self.to_apply:
            return "the database is up to date: nothing to apply"
        return f"{len(self.to_apply)} migration(s) to apply: " + ", ".join(e.file for e, _ in self.to_apply)


@dataclass
class ApplyResult:
    plan: Plan
    applied: list[AppliedMigration]
    stopped_early: bool
    remaining: list[ManifestEntry]

    @property
    def up_to_date(self) -> bool:
        return not self.plan.to_apply

    def summary(self) -> str:
        if self.up_to_date:
            return "the database is up to date: nothing to apply"
        text = f"applied {len(self.applied)} migration(s) in {sum(a.duration_ms for a in self.applied)} ms"
        if self.stopped_early:
            text += f"; stopped early, {len(self.remaining)} left for the next run"
        return text


@dataclass
class RepairResult:
    removed_failed: list[str]
    realigned: list[str]


# --------------------------------------------------------------------------------------------
# session handling


@contextmanager
def _autocommit(conn, *, exclusive: bool) -> Iterator[None]:
    """Run in autocommit on an idle connection; restores the caller's setting afterwards.

    ``exclusive``: the caller must not be inside a transaction (apply, repair, baseline).  A read
    (plan, info) inside the caller's transaction is allowed and left to the caller.
    """
    if conn.get_transaction_status() != _IDLE:
        if exclusive:
            raise ConfigurationError(
                "the connection has an open transaction; the executor manages its own transactions",
                remedy="commit or roll back first, or pass a fresh connection (executor.connection.connect)",
            )
        yield
        return
    saved = conn.autocommit
    conn.autocommit = True
    try:
        yield
    finally:
        if not conn.closed:
            try:
                rollback_if_open(conn)
                conn.autocommit = saved
            except psycopg2.Error:
                pass


def _session_timeouts(conn, settings: ExecutorSettings) -> dict[str, str]:
    """The server-side bounds of the executor's session (see the module docstring, step 6)."""
    version = conn.server_version
    values: dict[str, str] = {}
    if version >= 140000:  # notice a vanished client during a long statement
        values["client_connection_check_interval"] = DEAD_CLIENT_CHECK
    network = settings.network_timeout_s
    if network:
        ms = str(int(network * 1000))
        values["idle_in_transaction_session_timeout"] = ms
        if version >= 140000:
            values["idle_session_timeout"] = ms  # the session holds the advisory lock between migrations
        values["tcp_keepalives_idle"] = NETWORK_OPTIONS["keepalives_idle"]
        values["tcp_keepalives_interval"] = NETWORK_OPTIONS["keepalives_interval"]
        values["tcp_keepalives_count"] = NETWORK_OPTIONS["keepalives_count"]
        if version >= 120000:
            values["tcp_user_timeout"] = NETWORK_OPTIONS["tcp_user_timeout"]
    return values


@contextmanager
def _bounded(conn, settings: ExecutorSettings, doing: str) -> Iterator[ResponseDeadline]:
    """Every query inside waits at most network_timeout for its answer (the runner allows a migration's
    statements their statement_timeout on top), and a lost connection is a ConnectionFailure."""
    deadline = ResponseDeadline(conn)
    saved = conn.cursor_factory
    conn.cursor_factory = deadline.cursor_factory(
        settings.network_timeout_s, f"{doing} (a query of its own)", base=saved
    )
    try:
        with connection_errors(doing, conn, deadline=deadline):
            yield deadline
    finally:
        conn.cursor_factory = saved
        deadline.close()


def _poll_interval(settings: ExecutorSettings) -> float:
    """How often to ask for a busy advisory lock: often enough for idle_session_timeout."""
    network = settings.network_timeout_s
    return 1.0 if network is None else min(1.0, network / 3)


@contextmanager
def _executor_session(conn, settings: ExecutorSettings, doing: str) -> Iterator[ResponseDeadline]:
    """``_bounded`` plus the session's server-side timeouts (reset afterwards); on an idle autocommit
    connection (inside ``_autocommit``)."""
    with _bounded(conn, settings, doing) as deadline:
        values = _session_timeouts(conn, settings)
        if values:
            try:
                with conn.cursor() as cur:
                    cur.execute(
                        "SELECT " + ", ".join("set_config(%s, %s, false)" for _ in values),
                        [x for pair in values.items() for x in pair],
                    )
            except psycopg2.Error as exc:
                if is_connection_lost(exc, conn):
                    raise
                rollback_if_open(conn)  # an old server or a pooler that refuses them: run without
                values = {}
        try:
            yield deadline
        finally:
            if values and not conn.closed:
                with suppress(psycopg2.Error):
                    rollback_if_open(conn)
                    with conn.cursor() as cur:
                        cur.execute("".join(f"RESET {name};" for name in values))


class _NoticeSink:
    """Stands in for ``conn.notices``: psycopg2 appends every server notice here."""

    def __init__(self, emit: Callable[[Event], None]) -> None:
        self.emit = emit
        self.file: str | None = None
        self.collected: list[str] = []

        self.held: list[str] | None = None  # while one attempt's notices wait for its outcome

    def append(self, notice: str) -> None:
        text = " ".join(notice.split())
        if self.held is not None:
            self.held.append(text)
            return
        self.collected.append(text)
        self.emit(Event("notice", file=self.file, message=text))

    def hold(self) -> None:
        """Keep the notices that arrive from now on until ``release`` (the attempt counted) or
        ``discard`` (it failed and the statement-by-statement re-run will send them again)."""
        self.held = []

    def release(self) -> None:
        held, self.held = self.held or [], None
        for text in held:
            self.append(text)

    def discard(self) -> None:
        self.held = None


@contextmanager
def _notices_to(conn, sink: _NoticeSink) -> Iterator[None]:
    saved = conn.notices
    conn.notices = sink
    try:
        yield
    finally:
        conn.notices = saved


# --------------------------------------------------------------------------------------------
# plan and info


def _plan_from(infos: list[MigrationInfo], settings: ExecutorSettings) -> Plan:
    versioned: list[tuple[Version, ManifestEntry, str]] = []
    repeatable: list[tuple[ManifestEntry, str]] = []
    for i in infos:
        if i.entry is None:
            continue
        if i.state is MigrationState.PENDING and i.kind != REPEATABLE:
            versioned.append((i.entry.parsed_version, i.entry, WHY_PENDING))  # type: ignore[arg-type]
        elif i.state is MigrationState.OUT_OF_ORDER and settings.allow_out_of_order:
            versioned.append((i.entry.parsed_version, i.entry, WHY_OUT_OF_ORDER))  # type: ignore[arg-type]
        elif i.state is MigrationState.PENDING:
            repeatable.append((i.entry, WHY_REPEATABLE_NEW))
        elif i.state is MigrationState.OUTDATED:
            repeatable.append((i.entry, WHY_REPEATABLE_CHANGED))
    versioned.sort(key=lambda t: t[0])
    return Plan(
        infos=infos,
        to_apply=[(e, why) for _, e, why in versioned] + repeatable,
        refusals=refusals(infos, settings),
    )


def info(conn, bundle: Bundle | None, settings: ExecutorSettings) -> list[MigrationInfo]:
    """The info list; ``bundle=None`` describes the history alone.  Changes nothing.

    A recorded migration whose index is INVALID in the database lists it in ``invalid_indexes``.
    """
    with _autocommit(conn, exclusive=False), _bounded(conn, settings, "reading the history"):
        rows = read_history(conn, settings)
        infos = build_info(bundle.manifest if bundle else None, rows, settings)
        with conn.cursor() as cur:
            index_validity.annotate(cur, bundle, infos)
    return infos


def invalid_indexes(
    conn, bundle: Bundle | None, settings: ExecutorSettings, infos: list[MigrationInfo]
) -> list[tuple[index_validity.IndexRow, str | None]]:
    """Every INVALID index in the database, with the recorded migration that should have built it
    (its file, or None).  Changes nothing."""
    with (
        _autocommit(conn, exclusive=False),
        _bounded(conn, settings, "looking for INVALID indexes"),
        conn.cursor() as cur,
    ):
        return index_validity.annotate(cur, bundle, infos)


def plan(conn, bundle: Bundle, settings: ExecutorSettings) -> Plan:
    """What ``apply`` would do and why, with its refusals.  Changes nothing, creates no table."""
    return _plan_from(info(conn, bundle, settings), settings)


# --------------------------------------------------------------------------------------------
# apply


@dataclass
class _Prepared:
    entry: ManifestEntry
    why: str
    sql: str
    statements: list[Statement]
    lock_timeout: str
    statement_timeout: str
    lock_retries: int
    capped: bool = False  # statement_timeout was shortened to the executor's deadline


def _prepare(
    bundle: Bundle, entry: ManifestEntry, why: str, settings: ExecutorSettings, scs: bool
) -> _Prepared:
    """Read one file's SQL, header settings and statements; refuse what must not run.

    ``statements`` are what runs: a plain ``BEGIN; ... COMMIT;`` around the whole file is left out
    (the executor's own transaction takes its place).  Refused here, before anything runs: bytes the
    validator's parser would not have seen as PostgreSQL will (``executor.sqltext``: control
    characters, invalid UTF-8), a wrapped file the manifest marks ``transactional: false``, and any
    other transaction statement.
    """
    data = bundle.files[entry.file]
    not_utf8 = sqltext.find_invalid_utf8(data)
    if not_utf8 is not None:
        offset, line = not_utf8
        raise SecurityViolation(
            f"{entry.file} is not valid UTF-8: byte 0x{data[offset]:02x} at byte offset {offset} "
            f"(line {line}) cannot be decoded; nothing was applied",
            file=entry.file,
            line=line,
            rule="not-utf8",
            remedy="save the file as UTF-8, then validate the migrations and build a new bundle "
            "(`schemagate validate` refuses such a file, so this bundle was not written by it)",
            context={"byte_offset": offset},
        )
    control = sqltext.find_control_character(data)
    if control is not None:
        raise SecurityViolation(
            control.message(entry.file) + "; nothing was applied",
            file=entry.file,
            line=control.line,
            column=control.column,
            rule=sqltext.RULE,
            remedy=f"{sqltext.REMEDY}; then validate the migrations and build a new bundle "
            "(`schemagate validate` refuses such a file, so this bundle was not written by it)",
            context={"byte_offset": control.offset, "code_point": control.code, "count": control.count},
        )
    sql = bundle.sql(entry)
    header = {}
    for key, value in entry.settings.items():  # settings the validator recorded in the manifest
        check = HEADER_KEYS.get(key)
        problem = check(str(value)) if check else None
        if problem:
            raise ConfigurationError(
                f"the manifest gives {entry.file} the setting {key}={value!r}; it needs {problem}",
                file=entry.file,
                rule="header-setting",
                remedy="fix the file's `-- schemagate:set` header and rebuild the bundle",
            )
        if check:
            header[key] = str(value)
    header.update(parse_header_settings(sql, file=entry.file))
    split = migration_statements(sql, standard_conforming_strings=scs)
    if split.wrapper is not None and not entry.transactional:
        raise MigrationRefused(
            f"{entry.file} is wrapped in BEGIN ... COMMIT but the manifest marks it `transactional: false`: "
            "its author meant one transaction, which the executor would not give it",
            file=entry.file,
            line=line_and_column(sql, split.wrapper[0].start)[0],
            rule="transaction-control",
            remedy="validate the migrations and build a new bundle (`schemagate validate` marks a wrapped "
            "file transactional, or refuses it when it holds a statement that cannot run in a transaction)",
        )
    for st in split.statements:
        if st.is_transaction_control:
            line, _ = line_and_column(sql, st.start)
            raise MigrationRefused(
                f"{entry.file} contains the transaction control statement {st.text.strip()[:40]!r} "
                f"({st.transaction_control}); it would break the all-or-nothing application of the file "
                "and its history row",
                file=entry.file,
                line=line,
                rule="transaction-control",
                remedy=(
                    "remove it from the file: schemagate runs each migration in a transaction of its own "
                    "(statements that cannot run in one make the file `transactional: false`); only a plain "
                    "`BEGIN; ... COMMIT;` around the whole file is accepted, and left out"
                ),
            )
    try:
        retries = int(header.get("lock_retries", settings.lock_retries))
    except ValueError:
        raise ConfigurationError(
            f"lock_retries {header['lock_retries']!r} is not a number", file=entry.file
        ) from None
    return _Prepared(
        entry=entry,
        why=why,
        sql=sql,
        statements=split.statements,
        lock_timeout=header.get("lock_timeout", settings.lock_timeout),
        statement_timeout=header.get("statement_timeout", settings.statement_timeout),
        lock_retries=retries,
    )


class _StatementFailed(Exception):
    """Internal: a statement (or COMMIT) failed; carries what the error mapping needs."""

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


class _IndexProblem(Exception):
    """Internal: an index statement's check refused to run it, or found its index INVALID afterwards."""

    def __init__(self, error: SchemagateError, *, partial: bool) -> None:
        super().__init__(str(error))
        self.error = error
        self.partial = partial  # something of the file may have taken effect: record a failed row


class _Runner:
    """Applies prepared migrations on one autocommit connection holding the lock."""

    def __init__(
        self,
        conn,
        bundle: Bundle,
        settings: ExecutorSettings,
        emit: Callable[[Event], None],
        hooks: ApplyHooks,
        sink: _NoticeSink,
        deadline: ResponseDeadline | None = None,
    ) -> None:
        self.conn = conn
        self.bundle = bundle
        self.settings = settings
        self.emit = emit
        self.hooks = hooks
        self.sink = sink
        self.deadline = deadline
        self.cur = conn.cursor()

    def _bound(self, p: _Prepared, what: str, *, statements: int = 1):
        """The client's wait for one message: statement_timeout for each of its ``statements`` (the
        server times each statement of a multi-statement message on its own) plus network_timeout."""
        network = self.settings.network_timeout_s
        statement = duration_seconds(p.statement_timeout)
        seconds = None if network is None or statement is None else statement * statements + network
        if self.deadline is None:
            return nullcontext()
        return self.deadline.bound(seconds, what)

    def _pause(self, seconds: float) -> None:
        """Sleep between lock retries without leaving the session idle past idle_session_timeout."""
        network = self.settings.network_timeout_s
        step = seconds if network is None else max(0.5, network / 2)
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(step, left))
            if end - time.monotonic() > 0:
                self.cur.execute("SELECT 1")

    def _settings_sql(self, p: _Prepared, *, local: bool) -> str:
        flag = "true" if local else "false"
        parts = [f"set_config('lock_timeout', %s, {flag})", f"set_config('statement_timeout', %s, {flag})"]
        params = [p.lock_timeout, p.statement_timeout]
        if self.settings.search_path:
            parts.append(f"set_config('search_path', %s, {flag})")
            params.append(self.settings.search_path)
        return self.cur.mogrify("SELECT " + ", ".join(parts) + ";", params).decode("utf-8")

    def _history_sql(self, p: _Prepared, *, success: bool, execution_time_ms: int | None) -> str:
        e = p.entry
        return insert_row_sql(
            self.cur,
            self.settings,
            version=e.version,
            description=e.description,
            type={REPEATABLE: TYPE_REPEATABLE, UNDO: TYPE_UNDO}.get(e.kind, TYPE_SQL),
            script=e.script,
            checksum=e.sha256,
            execution_time_ms=execution_time_ms,
            success=success,
            bundle_sha256=self.bundle.manifest.bundle_sha256,
        )

    def run(self, p: _Prepared) -> AppliedMigration:
        entry = p.entry
        if self.hooks.before_migration is not None:
            self.hooks.before_migration(self.conn, entry)
        self.emit(Event("start", file=entry.file, message=f"applying {entry.file} ({p.why})"))
        p.statement_timeout, p.capped = self.settings.capped_statement_timeout(p.statement_timeout)
        attempt = 0
        self.sink.file = entry.file
        self.sink.collected = []
        one_message = self._one_message_allowed(p)
        try:
            while True:
                started = time.monotonic()
                try:
                    if one_message:
                        one_message = False  # a retry, or the re-run of a failure: statement by statement
                        if not self._one_message(p):
                            self._transactional(p)  # it failed and was rolled back: find where, as today
                    elif entry.transactional:
                        self._transactional(p)
                    else:
                        self._autocommit(p, started)
                    break
                except _StatementFailed as failed:
                    code = failed.exc.pgcode
                    if code == LOCK_NOT_AVAILABLE and failed.retryable and attempt < p.lock_retries:
                        delay = self.settings.lock_retry_backoff_s * (2**attempt)
                        attempt += 1
                        self.emit(
                            Event(
                                "retry",
                                file=entry.file,
                                message=(
                                    f"lock_timeout ({p.lock_timeout}) expired waiting for a lock; "
                                    f"retry {attempt} of {p.lock_retries} in {delay:g}s"
                                ),
                            )
                        )
                        self._pause(delay)
                        continue
                    # retryable == nothing of the file took effect (always so for a transactional one)
                    partial = not failed.retryable
                    error = self._error(p, failed, attempts=attempt + 1, partial=partial)
                    if partial:
                        self._record_failure(p, started, error)
                    self.emit(
                        Event(
                            "failed",
                            file=entry.file,
                            message=str(error),
                            duration_ms=int((time.monotonic() - started) * 1000),
                        )
                    )
                    raise error from None
                except _IndexProblem as problem:
                    error = problem.error
                    if problem.partial:
                        self._record_failure(p, started, error)
                    self.emit(
                        Event(
                            "failed",
                            file=entry.file,
                            message=str(error),
                            duration_ms=int((time.monotonic() - started) * 1000),
                        )
                    )
                    raise error from None
                except Exception as exc:  # a hook refused, or something unexpected: rolled back already
                    self.emit(
                        Event("failed", file=entry.file, message=f"{entry.file} was rolled back: {exc}")
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
                "applied",
                file=entry.file,
                message=f"applied {entry.file} in {duration} ms",
                duration_ms=duration,
            )
        )
        if self.hooks.after_migration is not None:
            self.hooks.after_migration(self.conn, entry, applied)
        return applied

    def _one_message_allowed(self, p: _Prepared) -> bool:
        """Can this migration go to the server as one message (``_one_message``)?

        Not a ``transactional: false`` file (each statement commits on its own, with index checks in
        between); not a file with ``lock_retries = 0`` (a lock timeout in the one message could only be
        located by running the file again, which would be the retry the file forbids); not a file with
        a COPY (psycopg2 answers COPY ... STDIN/STDOUT only on its own); not on PostgreSQL before 13,
        which applies statement_timeout to a whole multi-statement message instead of each statement.
        """
        return (
            p.entry.transactional
            and p.lock_retries > 0
            and self.conn.server_version >= 130000
            and not any(st.words[:1] == ("copy",) for st in p.statements)
        )

    def _one_message(self, p: _Prepared) -> bool:
        """BEGIN, the settings, the file's statements, its history row and COMMIT as one simple-query
        message: one round trip.  True when applied.

        False when the server refused it: PostgreSQL stopped at the failing statement and the
        transaction the message opened is rolled back here, so nothing of it stays; the caller then runs
        the file statement by statement (``_transactional``) to report the exact statement, line and
        column.  The notices of this attempt are held until its outcome is known, so a re-run does not
        report them twice.  A lock timeout is raised into the retry loop instead (the retry runs
        statement by statement), and so is a lost connection: with COMMIT in the message, the migration
        may or may not be applied.  With a ``before_commit`` hook, COMMIT is a second message, after
        the hook, inside the still open transaction.
        """
        hook = self.hooks.before_commit
        parts = ["BEGIN;", self._settings_sql(p, local=True)]
        parts += [st.text if st.text.rstrip().endswith(";") else st.text + "\n;" for st in p.statements]
        parts.append(self._history_sql(p, success=True, execution_time_ms=None) + ";")
        if hook is None:
            parts.append("COMMIT;")
        text = "\n".join(parts)
        what = (
            f"running {p.entry.file} ({len(p.statements)} statement(s), its history row"
            + (" and COMMIT" if hook is None else "")
            + " in one message)"
        )
        self.sink.hold()
        try:
            with self._bound(p, what, statements=len(p.statements) + 1):
                self.cur.execute(text)
        except psycopg2.Error as exc:
            self.sink.discard()
            if is_connection_lost(exc, self.conn):
                raise _StatementFailed(exc, None, 0, retryable=True, one_message=hook is None) from None
            self._rollback()
            if exc.pgcode == LOCK_NOT_AVAILABLE:
                raise _StatementFailed(exc, None, 0, retryable=True) from None
            return False
        except BaseException:
            self.sink.discard()
            self._rollback()
            raise
        if hook is None and self.conn.get_transaction_status() != _IDLE:
            # the COMMIT did not run (the server read the text differently from the executor's splitter):
            # nothing is committed; the statement-by-statement run reports what the server makes of it
            self.sink.discard()
            self._rollback()
            return False
        self.sink.release()
        if hook is not None:
            try:
                hook(self.cur, p.entry)
                self._commit(p)
            except BaseException:
                self._rollback()
                raise
        return True

    def _commit(self, p: _Prepared) -> None:
        try:
            with self._bound(p, f"committing {p.entry.file}"):
                self.cur.execute("COMMIT")
        except psycopg2.Error as exc:
            raise _StatementFailed(exc, None, 0, retryable=True, at_commit=True) from None

    def _transactional(self, p: _Prepared) -> None:
        """Statement by statement: BEGIN + settings with the first statement, history row with the
        last, then COMMIT."""
        prefix = "BEGIN;" + self._settings_sql(p, local=True) + "\n"
        history_sql = self._history_sql(p, success=True, execution_time_ms=None)
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
        cur = self.cur
        try:
            for text, st, prefix_len in queries:
                try:
                    with self._bound(p, self._where(p, st)):
                        cur.execute(text)
                except psycopg2.Error as exc:
                    raise _StatementFailed(exc, st, prefix_len, retryable=True) from None
            if self.hooks.before_commit is not None:
                self.hooks.before_commit(cur, p.entry)
            self._commit(p)
        except BaseException:
            self._rollback()
            raise

    @staticmethod
    def _where(p: _Prepared, st: Statement | None) -> str:
        if st is None:
            return f"writing the history row of {p.entry.file}"
        return f"running the statement at line {line_and_column(p.sql, st.start)[0]} of {p.entry.file}"

    def _autocommit(self, p: _Prepared, started: float) -> None:
        """A ``transactional: false`` file: each statement commits on its own.  Around each index
        statement, ``executor.index_validity`` drops its leftover INVALID index and checks the result."""
        cur = self.cur
        cur.execute(self._settings_sql(p, local=False))
        try:
            for index, st in enumerate(p.statements):
                check = self._index_check(p, st, index)
                try:
                    with self._bound(p, self._where(p, st)):
                        cur.execute(st.text)
                except psycopg2.Error as exc:
                    failed = _StatementFailed(
                        exc, st, 0, retryable=index == 0 and not st.may_commit_partially
                    )
                    if check is not None and not is_connection_lost(exc, self.conn):
                        with suppress(psycopg2.Error):
                            rollback_if_open(self.conn)
                            failed.left_invalid = index_validity.left_behind(cur, check)
                    raise failed from None
                if check is not None:
                    problem = index_validity.after_statement(cur, check)
                    if problem is not None:
                        raise _IndexProblem(problem, partial=True)
            elapsed = int((time.monotonic() - started) * 1000)
            try:
                cur.execute(self._history_sql(p, success=True, execution_time_ms=elapsed))
            except psycopg2.Error as exc:
                raise _StatementFailed(exc, None, 0, retryable=False) from None
        finally:
            self._reset_session(p)

    def _index_check(self, p: _Prepared, st: Statement, index: int) -> index_validity.IndexCheck | None:
        """Before an index statement of a non-transactional file: drop its leftover INVALID index."""
        if not is_index_statement(st.words):
            return None
        parsed = parse_index_statement(st.text)
        if parsed is None:
            return None
        line = line_and_column(p.sql, st.start)[0]

        def dropped(row: index_validity.IndexRow) -> None:
            self.emit(
                Event(
                    "invalid_index_dropped",
                    file=p.entry.file,
                    message=(
                        f"dropped the INVALID index {row.qualified} on {row.qualified_table} (left by an "
                        f"interrupted or failed earlier run of {p.entry.file}:{line}); building it again"
                    ),
                )
            )

        try:
            with self._bound(p, f"dropping a leftover INVALID index before line {line} of {p.entry.file}"):
                return index_validity.before_statement(
                    self.cur, parsed, file=p.entry.file, line=line, on_drop=dropped
                )
        except SchemagateError as refusal:
            raise _IndexProblem(refusal, partial=index > 0) from None
        except psycopg2.Error as exc:
            doing = "looking for (and dropping) an INVALID index an earlier run of it left"
            raise _StatementFailed(exc, st, 0, retryable=index == 0, doing=doing) from None

    def _reset_session(self, p: _Prepared) -> None:
        if self.conn.closed:
            return
        resets = "RESET lock_timeout; RESET statement_timeout;" + (
            " RESET search_path;" if self.settings.search_path else ""
        )
        with suppress(psycopg2.Error):
            self.cur.execute(resets)

    def _rollback(self) -> None:
        if self.conn.closed:
            return
        with suppress(psycopg2.Error):
            rollback_if_open(self.conn)

    def _record_failure(self, p: _Prepared, started: float, error: SchemagateError) -> None:
        """Write the success=false row of a non-transactional file (it may have changed something)."""
        elapsed = int((time.monotonic() - started) * 1000)
        try:
            self._rollback()
            self.cur.execute(self._history_sql(p, success=False, execution_time_ms=elapsed))
            error.context["failed_row_written"] = True
        except psycopg2.Error as exc:
            error.context["failed_row_written"] = False
            error.message += (
                f" (the success = false history row could not be written either: "
                f"{(exc.pgerror or str(exc)).strip()})"
            )
            error.args = (error.message,)

    def _error(
        self, p: _Prepared, failed: _StatementFailed, *, attempts: int, partial: bool
    ) -> SchemagateError:
        exc, entry, sql = failed.exc, p.entry, p.sql
        lost = is_connection_lost(exc, self.conn)
        overdue = self.deadline.overdue if self.deadline is not None else None
        if lost and overdue is not None:
            stalled = (
                f"no answer from the server for {overdue.seconds:g}s while {overdue.what} (statement_timeout "
                f"{p.statement_timeout} plus network_timeout {self.settings.network_timeout}): the network "
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
                    f"one within network_timeout, {self.settings.network_timeout}), releasing its locks; "
                    "check the server and the network, then apply again"
                    if entry.transactional
                    else "the file runs outside a transaction: check which of its statements took effect, "
                    "then apply again (an INVALID index its CREATE INDEX CONCURRENTLY left is dropped and "
                    "built again)"
                ),
                context={"sqlstate": exc.pgcode, "stalled": overdue is not None},
            )
        diag = exc.diag
        line, column, where = self._locate(sql, failed, diag)
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
        if failed.left_invalid:
            message += f"; {index_validity.describe_left_behind(failed.left_invalid)}"
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
        context = {
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
            context["invalid_indexes"] = [r.to_dict() for r in failed.left_invalid]
            remedy = index_validity.REMEDY_REBUILD
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
        elif exc.pgcode == "57014" and p.capped:
            remedy = (
                f"statement_timeout was capped at {p.statement_timeout}, the time the Lambda executor had "
                "left: a migration that needs longer belongs to the CodeBuild executor (`executor: "
                '"codebuild"` for the environment, see docs/deploy.md), or in smaller migrations'
            )
        elif exc.pgcode == "57014":
            remedy = (
                f"the statement ran longer than statement_timeout ({p.statement_timeout}): raise it for this "
                "file with `-- schemagate:set statement_timeout=2h`, or split the work into smaller "
                "migrations"
            )
        elif exc.pgcode == "25001":
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
        elif exc.pgcode == "42501":
            cls = PermissionDenied
        return cls(message, file=entry.file, line=line, column=column, remedy=remedy, context=context)

    @staticmethod
    def _locate(sql: str, failed: _StatementFailed, diag) -> tuple[int | None, int | None, str]:
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


def apply(
    conn,
    bundle: Bundle,
    settings: ExecutorSettings,
    *,
    on_event: Callable[[Event], None] | None = None,
    should_continue: Callable[[], bool] | None = None,
    hooks: ApplyHooks | None = None,
) -> ApplyResult:
    """Apply the bundle's pending migrations (see the module docstring for the protocol).

    Raises the first refusal (with the others in its context) before applying anything;
    SqlError / LockTimeout / PermissionDenied / ConnectionFailure when a migration fails (that
    migration is rolled back; earlier ones of this run stay applied and are listed in the error's
    ``context["applied_before_failure"]``).  ``settings.dry_run`` only plans (refusals are in
    ``result.plan.refusals``, nothing is raised or changed).
    """
    emit = on_event or (lambda event: None)
    hooks = hooks or ApplyHooks()
    settings = settings.for_manifest(bundle.manifest)
    if settings.dry_run:
        p = plan(conn, bundle, settings)
        return ApplyResult(plan=p, applied=[], stopped_early=False, remaining=[e for e, _ in p.to_apply])
    sink = _NoticeSink(emit)
    with (
        _autocommit(conn, exclusive=True),
        _notices_to(conn, sink),
        _executor_session(conn, settings, "applying") as deadline,
    ):
        lock = AdvisoryLock(
            conn,
            settings,
            on_wait=lambda message: emit(Event("waiting_for_lock", message=message)),
            max_poll_interval_s=_poll_interval(settings),
        )
        with lock:
            emit(
                Event(
                    "lock_acquired",
                    message=f"holding the migration lock on {settings.qualified_table}",
                    duration_ms=int(lock.waited_s * 1000),
                )
            )
            rows = read_history_if_present(conn, settings)
            if rows is None:
                ensure_history_table(conn, settings)
                rows = []
            p = _plan_from(build_info(bundle.manifest, rows, settings), settings)
            if p.refusals:
                raise combined(p.refusals, all_listed_by="`schemagate info`")
            scs = conn.get_parameter_status("standard_conforming_strings") != "off"
            prepared = [_prepare(bundle, entry, why, settings, scs) for entry, why in p.to_apply]
            runner = _Runner(conn, bundle, settings, emit, hooks, sink, deadline)
            applied: list[AppliedMigration] = []
            for index, item in enumerate(prepared):
                if applied and should_continue is not None and not should_continue():
                    remaining = [x.entry for x in prepared[index:]]
                    emit(
                        Event(
                            "stopped",
                            file=item.entry.file,
                            message=(
                                f"stopped before {item.entry.file}: {len(remaining)} migration(s) left for "
                                "the next run"
                            ),
                        )
                    )
                    return ApplyResult(plan=p, applied=applied, stopped_early=True, remaining=remaining)
                try:
                    applied.append(runner.run(item))
                except SchemagateError as error:
                    error.context["applied_before_failure"] = [a.entry.file for a in applied]
                    raise
            return ApplyResult(plan=p, applied=applied, stopped_early=False, remaining=[])


def _undo_remedy(bundle: Bundle, version: str | None, file: str) -> str:
    layout = bundle.manifest.layout
    if layout == "flyway":
        return f"add U{version}__<description>.sql that reverses {file}"
    if layout in ("prisma", "drizzle"):
        return (
            f"{layout} keeps no down scripts by default: write a new forward migration that reverses {file}"
            + (" (or add a down.sql beside its migration.sql)" if layout == "prisma" else "")
        )
    return f"add the down script of {file} (see docs/layouts/{layout}.md)"


def undo(
    conn,
    bundle: Bundle,
    settings: ExecutorSettings,
    *,
    version: str | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> AppliedMigration:
    """Apply ``U<version>`` to reverse the most recently applied versioned migration (explicit request).

    Only the latest applied version can be undone (undoing an older one would run its reversal
    under changes made after it).  The undo is recorded as an ``UNDO`` history row, after which
    ``V<version>`` is pending again.  Refuses while the history has any refusal.
    """
    emit = on_event or (lambda event: None)
    settings = settings.for_manifest(bundle.manifest)
    sink = _NoticeSink(emit)
    with (
        _autocommit(conn, exclusive=True),
        _notices_to(conn, sink),
        _executor_session(conn, settings, "undoing") as deadline,
        AdvisoryLock(
            conn,
            settings,
            on_wait=lambda message: emit(Event("waiting_for_lock", message=message)),
            max_poll_interval_s=_poll_interval(settings),
        ),
    ):
        ensure_history_table(conn, settings)
        infos = build_info(bundle.manifest, read_history(conn, settings), settings)
        problems = refusals(infos, settings)
        if problems:
            raise combined(problems, all_listed_by="`schemagate info`")
        applied = [i for i in infos if i.kind == VERSIONED and i.state is MigrationState.APPLIED]
        if not applied:
            raise MigrationRefused(
                "nothing to undo: no versioned migration is applied",
                rule="undo-target",
                remedy="check `schemagate info`",
            )
        latest = max(applied, key=lambda i: i.installed_rank or 0)
        if version is not None and Version.parse(version) != Version.parse(latest.version or "0"):
            raise MigrationRefused(
                f"only the most recently applied version ({latest.version}, {latest.file}) can be "
                "undone, "
                f"not {version}",
                file=latest.file,
                rule="undo-target",
                remedy=f"undo {latest.version} first, or write a new forward migration",
            )
        target = Version.parse(latest.version or "0")
        entry = next((e for e in bundle.manifest.undo if e.parsed_version == target), None)
        if entry is None:
            raise MigrationRefused(
                f"the bundle has no undo file for version {latest.version} ({latest.file})",
                file=latest.file,
                rule="undo-target",
                remedy=_undo_remedy(bundle, latest.version, latest.file),
            )
        scs = conn.get_parameter_status("standard_conforming_strings") != "off"
        runner = _Runner(conn, bundle, settings, emit, ApplyHooks(), sink, deadline)
        return runner.run(_prepare(bundle, entry, f"undo of {latest.file}", settings, scs))


# --------------------------------------------------------------------------------------------
# repair and baseline


def repair(
    conn, bundle: Bundle | None, settings: ExecutorSettings, *, realign_checksums: bool = False
) -> RepairResult:
    """Remove ``success = false`` rows (after a person fixed the database); with
    ``realign_checksums`` also record the bundle's checksum for drifted files."""
    if realign_checksums and bundle is None:
        raise ConfigurationError(
            "realigning checksums needs the bundle", remedy="pass --bundle DIR or --migrations DIR"
        )
    with (
        _autocommit(conn, exclusive=True),
        _executor_session(conn, settings, "repairing the history"),
        AdvisoryLock(conn, settings, max_poll_interval_s=_poll_interval(settings)),
    ):
        rows = read_history(conn, settings)
        failed = [r for r in rows if not r.success]
        drifted: list[MigrationInfo] = []
        if realign_checksums and bundle is not None:
            infos = build_info(bundle.manifest, rows, settings)
            drifted = [i for i in infos if i.state is MigrationState.DRIFTED]
        if not failed and not drifted:
            return RepairResult(removed_failed=[], realigned=[])
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            try:
                if failed:
                    history_table.delete_rows(cur, settings, [r.installed_rank for r in failed])
                for i in drifted:
                    assert i.installed_rank is not None and i.bundle_checksum is not None
                    history_table.update_checksum(cur, settings, i.installed_rank, i.bundle_checksum)
                cur.execute("COMMIT")
            except BaseException:
                rollback_if_open(conn)
                raise
        return RepairResult(removed_failed=[r.script for r in failed], realigned=[i.file for i in drifted])


_USER_OBJECTS = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%%'
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.oid IS DISTINCT FROM to_regclass(%s)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
"""


def baseline(
    conn,
    version: str,
    description: str,
    settings: ExecutorSettings,
    *,
    bundle: Bundle | None = None,
    force: bool = False,
) -> list[ManifestEntry]:
    """Mark an existing database as being at ``version``: files up to it are never applied.

    With a ``bundle`` (the migrations on disk), ``version`` must be one of its versions, and every
    versioned migration up to it gets a BASELINE row with its checksum, so a later edit of one of
    them is drift like any other.  Without one, a single baseline marker row is written.  Refuses
    when the history already has rows (a baseline only starts a history), and on a database that
    holds no tables, views or sequences unless ``force``: baselining an empty database would skip
    migrations that never ran.  Returns the migrations marked."""
    try:
        target = Version.parse(version)
    except ValueError as exc:
        raise ConfigurationError(str(exc), remedy="give a version like 1, 42 or 2024.05.01") from None
    marked: list[ManifestEntry] = []
    if bundle is not None:
        versions = {e.parsed_version: e for e in bundle.manifest.versioned if e.parsed_version is not None}
        if target not in versions:
            below = [str(v) for v in sorted(versions) if v < target][-2:]
            above = [str(v) for v in sorted(versions) if v > target][:2]
            near = ", ".join(below + above) or "none"
            raise MigrationRefused(
                f"cannot baseline at version {version}: no migration has that version (nearest: {near})",
                rule="baseline-unknown-version",
                remedy="give the version of the last migration whose changes the database already holds "
                "(`schemagate info --migrations DIR` lists them)",
                context={"version": version, "nearest": below + above},
            )
        marked = [e for v, e in sorted(versions.items()) if v <= target]
    with (
        _autocommit(conn, exclusive=True),
        _executor_session(conn, settings, "writing the baseline"),
        AdvisoryLock(conn, settings, max_poll_interval_s=_poll_interval(settings)),
    ):
        rows = read_history(conn, settings)
        if rows:
            latest = rows[-1]
            raise MigrationRefused(
                f"cannot baseline at version {version}: {settings.qualified_table} already has {len(rows)} "
                "row(s) "
                f"(the latest: {latest.script}, version {latest.version})",
                rule="baseline-not-empty",
                remedy="baseline only a database that schemagate has never migrated (this one has a history)",
            )
        with conn.cursor() as cur:
            cur.execute(_USER_OBJECTS, (settings.qualified_table,))
            objects = cur.fetchone()[0]
        if objects == 0 and not force:
            raise MigrationRefused(
                f"cannot baseline at version {version}: the database holds no tables, views or sequences, so "
                f"the migrations up to {version} never ran here; a baseline would skip them for good",
                rule="baseline-empty-database",
                remedy="check the database URL (is this the database the old tool migrated?); for an empty "
                "database run `schemagate apply` instead; pass --force if the objects really are elsewhere",
            )
        ensure_history_table(conn, settings)
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            try:
                for entry in marked:
                    insert_row(
                        cur,
                        settings,
                        version=entry.version,
                        description=entry.description,
                        type=TYPE_BASELINE,
                        script=entry.script,
                        checksum=entry.sha256,
                        execution_time_ms=0,
                        success=True,
                        bundle_sha256=bundle.bundle_sha256 if bundle else None,
                    )
                if not marked:
                    insert_row(
                        cur,
                        settings,
                        version=version,
                        description=description or "baseline",
                        type=TYPE_BASELINE,
                        script=BASELINE_SCRIPT,
                        checksum=None,
                        execution_time_ms=0,
                        success=True,
                        bundle_sha256=None,
                    )
                cur.execute("COMMIT")
            except BaseException:
                rollback_if_open(conn)
                raise
    return marked
