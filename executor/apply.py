"""Apply a verified bundle to PostgreSQL: plan, refusals, the apply loop, repair and baseline.

How a run goes (``apply``):

1. one connection in autocommit; the executor's session-level advisory lock is taken (waiting up
   to ``advisory_lock_wait_s``), so no transaction is open while we wait or while a
   ``CREATE INDEX CONCURRENTLY`` runs;
2. the history table is read (one query) *after* taking the lock (another executor may have applied
   migrations while we waited), and created if absent;
3. the plan joins bundle and history (``executor.state``), and ``on_plan`` sees it; any refusal
   (drift, missing, out of order, failed row, a header error, a transaction statement or a control
   character inside a file) is raised before anything runs;
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
   - ``own_transactions`` (accepted history with BEGIN / COMMIT of its own, which the validator
     marks ``transactional: false`` too): as ``transactional: false``, every statement sent as
     written, the file's transaction control included; a file that ends inside a transaction it
     opened has it rolled back and fails;
   - the history rows are numbered by the runner (``Runner.row_written``) from the history read in
     step 2, not by ``max() + 1`` on the server;
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

The parts, one module each: ``executor.session`` (the session: autocommit, bounded waits, the
server-side timeouts, notices), ``executor.planning`` (plan and info), ``executor.prepare`` (one
file's SQL, settings and statements, and what is refused before anything runs),
``executor.runner`` (one migration: attempts, retries, events, the failure row),
``executor.whole_message`` and ``executor.stepwise`` (how it goes to the server),
``executor.failure`` (SQLSTATE to error), ``executor.undo``, ``executor.repair``,
``executor.baseline``; ``executor.progress`` holds the events and hooks.  This module is the
loop, and keeps every public name of the executor's core importable from ``executor.apply``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from executor.baseline import baseline
from executor.bundle import Bundle
from executor.errors import SchemagateError, combined
from executor.history import ensure_history_table, read_history_if_present
from executor.lock import AdvisoryLock
from executor.manifest import ManifestEntry
from executor.planning import Plan, info, invalid_indexes, plan, plan_from
from executor.prepare import Prepared, prepare
from executor.progress import AppliedMigration, ApplyHooks, Event
from executor.repair import RepairResult, repair
from executor.runner import Runner
from executor.session import NoticeSink, autocommit, executor_session, notices_to, poll_interval
from executor.settings import ExecutorSettings
from executor.state import build_info
from executor.undo import undo
from executor.vocabulary import EventKind

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

# The executor's core calls, importable from here as they always were (the CLI and the rehearsal do):
# each is defined in the module of its part.

__all__ = [
    "AppliedMigration",
    "ApplyHooks",
    "ApplyResult",
    "Event",
    "Plan",
    "RepairResult",
    "apply",
    "baseline",
    "info",
    "invalid_indexes",
    "plan",
    "repair",
    "undo",
]


@dataclass
class ApplyResult:
    """What an apply did: its plan, the migrations it committed, and those left for the next run."""

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


def apply(
    conn: Connection,
    bundle: Bundle,
    settings: ExecutorSettings,
    *,
    on_event: Callable[[Event], None] | None = None,
    should_continue: Callable[[], bool] | None = None,
    hooks: ApplyHooks | None = None,
    on_plan: Callable[[Plan], bool] | None = None,
) -> ApplyResult:
    """Apply the bundle's pending migrations (see the module docstring for the protocol).

    Raises the first refusal (with the others in its context) before applying anything;
    SqlError / LockTimeout / PermissionDenied / ConnectionFailure when a migration fails (that
    migration is rolled back; earlier ones of this run stay applied and are listed in the error's
    ``context["applied_before_failure"]``).  ``settings.dry_run`` only plans (refusals are in
    ``result.plan.refusals``, nothing is raised or changed).

    ``on_plan(plan)``: called with the plan made under the lock, before anything of it runs (and
    before its refusals are raised, so that it can raise them its own way); False applies nothing.
    A caller that shows the plan and asks nobody (``schemagate apply --yes``) shows it from here,
    instead of reading the history once more to plan before the lock.
    """
    emit = on_event or (lambda event: None)
    hooks = hooks or ApplyHooks()
    settings = settings.for_manifest(bundle.manifest)
    if settings.dry_run:
        p = plan(conn, bundle, settings)
        return ApplyResult(plan=p, applied=[], stopped_early=False, remaining=[e for e, _ in p.to_apply])
    sink = NoticeSink(emit)
    with (
        autocommit(conn, exclusive=True),
        notices_to(conn, sink),
        executor_session(conn, settings, "applying") as deadline,
    ):
        lock = AdvisoryLock(
            conn,
            settings,
            on_wait=lambda message: emit(Event(EventKind.WAITING_FOR_LOCK, message=message)),
            max_poll_interval_s=poll_interval(settings),
        )
        with lock:
            emit(
                Event(
                    EventKind.LOCK_ACQUIRED,
                    message=f"holding the migration lock on {settings.qualified_table}",
                    duration_ms=int(lock.waited_s * 1000),
                )
            )
            rows = read_history_if_present(conn, settings)
            if rows is None:
                ensure_history_table(conn, settings)
                rows = []
            p = plan_from(build_info(bundle.manifest, rows, settings), settings)
            if on_plan is not None and not on_plan(p):
                return ApplyResult(plan=p, applied=[], stopped_early=False, remaining=[])
            if p.refusals:
                raise combined(p.refusals, all_listed_by="`schemagate info`")
            scs = conn.get_parameter_status("standard_conforming_strings") != "off"
            prepared = _prepare_all(conn, bundle, p, settings, scs)
            next_rank = max((r.installed_rank for r in rows), default=0) + 1
            runner = Runner(conn, bundle, settings, emit, hooks, sink, deadline, next_rank)
            applied: list[AppliedMigration] = []
            for index, item in enumerate(prepared):
                if applied and should_continue is not None and not should_continue():
                    remaining = [x.entry for x in prepared[index:]]
                    emit(
                        Event(
                            EventKind.STOPPED,
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


def _prepare_all(
    conn: Connection, bundle: Bundle, p: Plan, settings: ExecutorSettings, scs: bool
) -> list[Prepared]:
    """Every pending migration read and checked before the first one runs (a file that must not run
    refuses the run while nothing has changed).  That takes a while on a long history on a busy
    machine, and the session holds the migration lock meanwhile: a ``SELECT 1`` now and then keeps
    it from being ended by ``idle_session_timeout``, which is there for a client that stalls."""
    every = poll_interval(settings)
    last = time.monotonic()
    prepared = []
    for entry, why in p.to_apply:
        prepared.append(prepare(bundle, entry, why, settings, scs))
        if time.monotonic() - last >= every:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
            last = time.monotonic()
    return prepared
