"""The history table (its columns: ``COLUMNS`` below): one row per applied script.

``read_history`` never creates anything (``plan`` and ``info`` change nothing); ``ensure_history_table``
is called by the executor on its first apply, while it holds the advisory lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from executor.connection import scalar
from executor.errors import ConfigurationError, PermissionDenied
from executor.settings import ExecutorSettings


class HistoryType(StrEnum):
    """The ``type`` column of a history row: each value is the string written in the table."""

    SQL = "SQL"  # a versioned migration
    REPEATABLE = "REPEATABLE"
    BASELINE = "BASELINE"
    UNDO = "UNDO"
    IMPORTED = "IMPORTED"  # taken over from another tool's history table by `schemagate import`


BASELINE_SCRIPT = "<< schemagate baseline >>"

COLUMNS = (
    "installed_rank",
    "version",
    "description",
    "type",
    "script",
    "checksum",
    "installed_by",
    "installed_on",
    "execution_time_ms",
    "success",
    "bundle_sha256",
    "run_id",
)

_CREATE_TABLE = """
CREATE TABLE {table} (
    installed_rank    integer     PRIMARY KEY,
    version           text,
    description       text        NOT NULL,
    type              text        NOT NULL,
    script            text        NOT NULL,
    checksum          char(64),
    installed_by      text        NOT NULL,
    installed_on      timestamptz NOT NULL DEFAULT now(),
    execution_time_ms integer     NOT NULL,
    success           boolean     NOT NULL,
    bundle_sha256     char(64),
    run_id            text
)"""


@dataclass(frozen=True)
class HistoryRow:
    """One row of the history table, as read."""

    installed_rank: int
    version: str | None
    description: str
    type: str  # a HistoryType's value, as read from the table
    script: str
    checksum: str | None
    installed_by: str
    installed_on: datetime | None
    execution_time_ms: int
    success: bool
    bundle_sha256: str | None
    run_id: str | None

    def to_dict(self) -> dict[str, Any]:
        data = {c: getattr(self, c) for c in COLUMNS}
        data["installed_on"] = self.installed_on.isoformat() if self.installed_on else None
        return data


def _permission_error(exc: psycopg2.Error, settings: ExecutorSettings, doing: str) -> PermissionDenied:
    return PermissionDenied(
        f"permission denied while {doing} {settings.qualified_table}: {(exc.pgerror or str(exc)).strip()}",
        remedy=(
            f"grant the executor's role USAGE and CREATE on schema {settings.schema} and SELECT, INSERT, "
            "UPDATE, "
            f"DELETE on {settings.qualified_table}, or run it as the schema owner"
        ),
        context={"sqlstate": exc.pgcode},
    )


def history_exists(conn, settings: ExecutorSettings) -> bool:
    with conn.cursor() as cur:
        return bool(scalar(cur, "SELECT to_regclass(%s) IS NOT NULL", (settings.qualified_table,)))


def ensure_history_table(conn, settings: ExecutorSettings) -> bool:
    """Create the schema and the history table when absent; True when it created the table.

    Call it holding the advisory lock (two executors must not race on CREATE TABLE).
    """
    if history_exists(conn, settings):
        return False
    table = settings.qualified_table
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (settings.schema,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE SCHEMA "{settings.schema}"')
            cur.execute(_CREATE_TABLE.format(table=table))
            cur.execute(
                f"COMMENT ON TABLE {table} IS 'schemagate migration history: one row per applied script'"
            )
        if not conn.autocommit:
            conn.commit()
    except psycopg2.errors.InsufficientPrivilege as exc:
        if not conn.autocommit:
            conn.rollback()
        raise _permission_error(exc, settings, "creating") from None
    return True


def read_history(conn, settings: ExecutorSettings) -> list[HistoryRow]:
    """All rows in installed_rank order; empty when the table does not exist (creates nothing)."""
    return read_history_if_present(conn, settings) or []


def read_history_if_present(conn, settings: ExecutorSettings) -> list[HistoryRow] | None:
    """All rows in installed_rank order, or None when the table does not exist (creates nothing).

    One query: the SELECT itself, its "relation does not exist" meaning no table.  Inside a transaction
    the caller opened, an error would abort the caller's work, so there the table's existence is asked
    first (two queries)."""
    select = f"SELECT {', '.join(COLUMNS)} FROM {settings.qualified_table} ORDER BY installed_rank"
    own_transaction = conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    if not own_transaction and not history_exists(conn, settings):
        return None
    try:
        with conn.cursor() as cur:
            cur.execute(select)
            rows = cur.fetchall()
    except psycopg2.errors.UndefinedTable:
        if not own_transaction:
            raise
        if not conn.autocommit:
            conn.rollback()  # the transaction the SELECT opened, not the caller's
        return None
    except psycopg2.errors.UndefinedColumn as exc:
        if not conn.autocommit:
            conn.rollback()
        reason = (exc.pgerror or str(exc)).strip()
        raise ConfigurationError(
            f"{settings.qualified_table} exists but is not a schemagate history table: {reason}",
            remedy="point the executor at another schema or table name (settings schema/table)",
        ) from None
    except psycopg2.errors.InsufficientPrivilege as exc:
        if not conn.autocommit:
            conn.rollback()
        raise _permission_error(exc, settings, "reading") from None
    return [
        HistoryRow(
            installed_rank=r[0],
            version=r[1],
            description=r[2],
            type=r[3],
            script=r[4],
            checksum=r[5].strip() if r[5] else None,
            installed_by=r[6],
            installed_on=r[7],
            execution_time_ms=r[8],
            success=r[9],
            bundle_sha256=r[10].strip() if r[10] else None,
            run_id=r[11],
        )
        for r in rows
    ]


# Server-side duration of the current transaction: the history row of a transactional migration is
# written in the same round trip as its last statement, before the client could time it.
ELAPSED_IN_TRANSACTION_MS = "(extract(epoch FROM clock_timestamp() - now()) * 1000)::integer"


def insert_row_sql(
    cur,
    settings: ExecutorSettings,
    *,
    version: str | None,
    description: str,
    type: HistoryType,
    script: str,
    checksum: str | None,
    execution_time_ms: int | None,
    success: bool,
    bundle_sha256: str | None,
    rank: int | None = None,
) -> str:
    """The INSERT for one history row as SQL text (to batch with other statements).

    ``installed_rank`` is ``rank`` when the caller knows it (the runner counts the rows it writes
    under the advisory lock); otherwise the server numbers the row, the next after the table's
    highest (callers hold the lock), and the INSERT ends in ``RETURNING installed_rank``.  Numbering
    on the server costs it more than the rest of the row (the ``max()`` subquery is planned for every
    row): about a tenth of the server's work for a small migration.  ``installed_by`` is
    ``current_user``; ``execution_time_ms=None`` means "time since the transaction began".
    """
    elapsed = ELAPSED_IN_TRANSACTION_MS if execution_time_ms is None else str(int(execution_time_ms))
    table = settings.qualified_table
    columns = (
        "installed_rank, version, description, type, script, checksum, installed_by, execution_time_ms, "
        "success, bundle_sha256, run_id"
    )
    values = f"%s, %s, %s, %s, %s, current_user, {elapsed}, %s, %s, %s"
    params: tuple[object, ...] = (
        version,
        description,
        type,
        script,
        checksum,
        success,
        bundle_sha256,
        settings.run_id,
    )
    if rank is None:
        query = (
            f"INSERT INTO {table} ({columns}) SELECT coalesce(max(installed_rank), 0) + 1, {values} "
            f"FROM {table} RETURNING installed_rank"
        )
    else:
        query = f"INSERT INTO {table} ({columns}) VALUES (%s, {values})"
        params = (rank, *params)
    return cur.mogrify(query, params).decode("utf-8")


def insert_row(cur, settings: ExecutorSettings, **values: Any) -> None:
    """Insert one history row (see insert_row_sql for the values)."""
    cur.execute(insert_row_sql(cur, settings, **values))


def delete_rows(cur, settings: ExecutorSettings, ranks: list[int]) -> None:
    cur.execute(f"DELETE FROM {settings.qualified_table} WHERE installed_rank = ANY(%s)", (list(ranks),))


def update_checksum(cur, settings: ExecutorSettings, rank: int, checksum: str) -> None:
    cur.execute(
        f"UPDATE {settings.qualified_table} SET checksum = %s WHERE installed_rank = %s", (checksum, rank)
    )
