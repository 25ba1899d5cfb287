"""Repair: remove the ``success = false`` rows of the history (after a person fixed the database), and
realign the recorded checksums of drifted files with the bundle's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from executor import history as history_table
from executor.bundle import Bundle
from executor.errors import ConfigurationError
from executor.history import read_history
from executor.lock import AdvisoryLock, rollback_if_open
from executor.session import autocommit, executor_session, poll_interval
from executor.settings import ExecutorSettings
from executor.state import MigrationInfo, MigrationState, build_info

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection


@dataclass
class RepairResult:
    """What ``repair`` changed: the failed rows it removed, the checksums it realigned (files)."""

    removed_failed: list[str]
    realigned: list[str]


def repair(
    conn: Connection, bundle: Bundle | None, settings: ExecutorSettings, *, realign_checksums: bool = False
) -> RepairResult:
    """Remove ``success = false`` rows (after a person fixed the database); with
    ``realign_checksums`` also record the bundle's checksum for drifted files."""
    if realign_checksums and bundle is None:
        raise ConfigurationError(
            "realigning checksums needs the bundle", remedy="pass --bundle DIR or --migrations DIR"
        )
    with (
        autocommit(conn, exclusive=True),
        executor_session(conn, settings, "repairing the history"),
        AdvisoryLock(conn, settings, max_poll_interval_s=poll_interval(settings)),
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
