"""Taking over a database that another migration tool migrated: what every tool's reader provides.

A ``PreviousTool`` reads the tool's own history table exactly as that tool writes it (``read``: the
database part, read-only) and turns its rows into schemagate history rows (``adopt``: a pure function
over the rows and the bundle, so every refusal is unit-tested without PostgreSQL).  ``adopt`` maps
each applied migration to its file in the bundle, compares the checksum the tool recorded (where it
records one) with today's file, and returns refusals as data:

- a migration the tool marks failed, dirty, unfinished or rolled back;
- a recorded checksum that does not match today's file (edited after it was applied);
- an applied migration that has no file in the bundle.

The core (``executor.adopt.take_over``) finds the table, holds the executor's lock, compares with
rows already in ``schemagate_history`` and writes the rows; the old table is never changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from executor.bundle import Bundle
from executor.errors import MigrationRefused, SchemagateError
from executor.history import HistoryType
from executor.manifest import ManifestEntry


@dataclass(frozen=True)
class ImportedRow:
    """One schemagate_history row written by ``import`` (type IMPORTED, or BASELINE)."""

    version: str | None  # the layout's own identifier; None for a repeatable
    description: str
    script: str
    checksum: str | None  # schemagate's SHA-256 of today's file (None for a baseline row)
    installed_on: datetime | None  # when the old tool applied it (None: now)
    installed_by: str | None  # who the old tool says applied it (None: the current user)
    execution_time_ms: int = 0
    type: HistoryType = HistoryType.IMPORTED
    origin: str = ""  # how the old tool names it, for messages ("20240101120000_init")

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.version, self.script)


@dataclass
class Adoption:
    """What ``adopt`` makes of the old table: rows to write, and refusals (nothing is written if any)."""

    rows: list[ImportedRow] = field(default_factory=list)
    refusals: list[SchemagateError] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # things worth saying that do not block


class PreviousTool:
    """One migration tool whose history schemagate can take over."""

    name: ClassVar[str] = ""  # as given to --from
    title: ClassVar[str] = ""  # as the tool's users spell it
    layout: ClassVar[str] = ""  # the directory layout its migrations use (executor.layouts)
    default_table: ClassVar[str] = ""  # where the tool keeps its history, e.g. "public.flyway_schema_history"

    def locate(self, conn: Any, schema: str | None = None) -> str | None:
        """The qualified name of the tool's history table in this database, or None."""
        raise NotImplementedError

    def read(self, conn: Any, table: str) -> list[dict[str, Any]]:
        """The table's rows as the tool wrote them (column -> value), in the tool's own order."""
        raise NotImplementedError

    def adopt(self, rows: list[dict[str, Any]], bundle: Bundle) -> Adoption:
        raise NotImplementedError

    # shared by the readers --------------------------------------------------------------------

    def imported(self, entry: ManifestEntry, *, origin: str, **values: Any) -> ImportedRow:
        return ImportedRow(
            version=entry.version,
            description=entry.description,
            script=entry.script,
            checksum=entry.sha256,
            origin=origin,
            **values,
        )

    def no_file(self, origin: str, table: str | None = None) -> MigrationRefused:
        return MigrationRefused(
            f"{self.title} recorded {origin} as applied, but no migration file of the bundle matches it",
            rule="import-no-file",
            remedy=f"restore the file of {origin} in the migrations directory exactly as {self.title} "
            "applied "
            "it (from version control), then import again",
            context={"tool": self.name, "migration": origin, "table": table},
        )

    def edited(self, origin: str, entry: ManifestEntry, recorded: str, actual: str) -> MigrationRefused:
        return MigrationRefused(
            f"{entry.file} was changed after {self.title} applied it as {origin}: {self.title} recorded "
            f"checksum {recorded}, today's file has {actual}",
            file=entry.file,
            rule="import-checksum-mismatch",
            remedy=f"restore {entry.file} exactly as it was applied (from version control) and put "
            "the change in "
            f"a new migration; or, if the edit changes nothing in the database, let {self.title} accept it "
            "first (Flyway: `flyway repair`; Prisma: `prisma migrate resolve`), then import again",
            context={"tool": self.name, "expected": recorded, "actual": actual, "migration": origin},
        )


def sql_identifier(name: str) -> str:
    """``name`` quoted as a PostgreSQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, table: str) -> str:
    return f"{sql_identifier(schema)}.{sql_identifier(table)}"


def find_table(conn: Any, table: str, schemas: list[str] | None = None) -> str | None:
    """The qualified name of ``table`` in the first of ``schemas`` that has it (all schemas, in
    search_path order, when None)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = %s AND c.relkind IN ('r', 'p') "
            "ORDER BY array_position(current_schemas(false), n.nspname::text) NULLS LAST, n.nspname",
            (table,),
        )
        found = [r[0] for r in cur.fetchall()]
    for schema in schemas or found:
        if schema in found:
            return qualified(schema, table)
    return None


def existing_table(conn: Any, table: str) -> str | None:
    """``table`` as a user wrote it (``--table SCHEMA.TABLE``) in PostgreSQL's own quoting, or None when
    no such table exists; the result is safe to put into a query."""
    with conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)::text", (table,))
        row = cur.fetchone()
    return row[0] if row and row[0] else None


def read_rows(conn: Any, query: str) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(query)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def columns_of(conn: Any, table: str) -> set[str]:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT "
            "attisdropped",
            (table,),
        )
        return {r[0] for r in cur.fetchall()}
