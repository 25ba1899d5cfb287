"""Baseline: mark an existing database as being at a version, so the files up to it are never applied."""

from __future__ import annotations

from typing import TYPE_CHECKING

from executor.bundle import Bundle
from executor.errors import ConfigurationError, MigrationRefused
from executor.history import BASELINE_SCRIPT, HistoryType, ensure_history_table, insert_row, read_history
from executor.lock import AdvisoryLock, rollback_if_open
from executor.manifest import ManifestEntry
from executor.naming import Version
from executor.session import autocommit, executor_session, poll_interval
from executor.settings import ExecutorSettings

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

_USER_OBJECTS = """
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%%'
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.oid IS DISTINCT FROM to_regclass(%s)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
"""


def baseline(
    conn: Connection,
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
        autocommit(conn, exclusive=True),
        executor_session(conn, settings, "writing the baseline"),
        AdvisoryLock(conn, settings, max_poll_interval_s=poll_interval(settings)),
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
            (objects,) = cur.fetchone() or (None,)  # count(*): always one row
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
                        type=HistoryType.BASELINE,
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
                        type=HistoryType.BASELINE,
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
