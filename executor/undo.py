"""Undo: apply ``U<version>`` to reverse the most recently applied versioned migration, on explicit
request."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from executor.bundle import Bundle
from executor.errors import MigrationRefused, combined
from executor.history import ensure_history_table, read_history
from executor.lock import AdvisoryLock
from executor.naming import VERSIONED, Version
from executor.prepare import prepare
from executor.progress import AppliedMigration, ApplyHooks, Event
from executor.runner import Runner
from executor.session import NoticeSink, autocommit, executor_session, notices_to, poll_interval
from executor.settings import ExecutorSettings
from executor.state import MigrationState, build_info, refusals
from executor.vocabulary import EventKind

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection


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
    conn: Connection,
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
    sink = NoticeSink(emit)
    with (
        autocommit(conn, exclusive=True),
        notices_to(conn, sink),
        executor_session(conn, settings, "undoing") as deadline,
        AdvisoryLock(
            conn,
            settings,
            on_wait=lambda message: emit(Event(EventKind.WAITING_FOR_LOCK, message=message)),
            max_poll_interval_s=poll_interval(settings),
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
        runner = Runner(conn, bundle, settings, emit, ApplyHooks(), sink, deadline)
        return runner.run(prepare(bundle, entry, f"undo of {latest.file}", settings, scs))
