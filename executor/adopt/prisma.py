"""Prisma Migrate's ``_prisma_migrations``, as Prisma's schema engine writes it.

Sources followed (prisma/prisma-engines):

- ``schema-engine/connectors/sql-schema-connector/src/flavour/postgres.rs`` (``create_migrations_table``,
  in the schema of the datasource URL, ``public`` by default)::

      CREATE TABLE _prisma_migrations (
          id                      VARCHAR(36) PRIMARY KEY NOT NULL,
          checksum                VARCHAR(64) NOT NULL,
          finished_at             TIMESTAMPTZ,
          migration_name          VARCHAR(255) NOT NULL,
          logs                    TEXT,
          rolled_back_at          TIMESTAMPTZ,
          started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
          applied_steps_count     INTEGER NOT NULL DEFAULT 0
      );

- ``schema-engine/connectors/sql-schema-connector/src/sql_migration_persistence.rs``: ``migrate deploy``
  inserts (a random UUID v4 ``id``, ``checksum``, ``started_at``, ``migration_name``) before running the
  script, then adds 1 to ``applied_steps_count`` and sets ``finished_at``; a failing script gets ``logs``
  and no ``finished_at``.  ``migrate resolve --applied`` inserts a finished row with ``logs = ''`` and
  ``started_at = finished_at``; ``migrate resolve --rolled-back`` sets ``rolled_back_at`` on the failed
  rows of a migration;
- ``schema-engine/core/src/commands/apply_migrations.rs``: rows are read ordered by ``started_at``; a row
  with neither ``finished_at`` nor ``rolled_back_at`` is a failed migration and blocks ``migrate deploy``
  (P3009); a migration counts as applied when it has a row that is not rolled back; rolled-back rows are
  ignored (a rolled-back migration is applied again by the next deploy);
- ``schema-engine/connectors/schema-connector/src/checksum.rs``: ``checksum`` is the SHA-256 hex of the
  UTF-8 bytes of ``migration.sql`` exactly as read (BOM and line endings included, no normalisation);
  a recorded checksum matches when it is the checksum of the script, of the script with CRLF turned
  into LF, or with LF turned into CRLF (git's line endings), and checksums of an old engine that were
  not zero-padded (not 64 characters long) are compared in that old form.

Mapping: a migration is the bundle's migration whose history script (its directory name) is Prisma's
``migration_name``; its checksum must match today's ``migration.sql`` as above, or the import refuses
and shows both.  A failed (or still running) migration refuses the import; one that was rolled back
and applied again later is imported from its successful row; one only rolled back is pending.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from executor.adopt.base import (
    Adoption,
    ImportedRow,
    PreviousTool,
    columns_of,
    existing_table,
    find_table,
    read_rows,
)
from executor.bundle import Bundle
from executor.errors import MigrationRefused
from executor.manifest import ManifestEntry
from executor.naming import VERSIONED

TABLE = "_prisma_migrations"
COLUMNS = (
    "id",
    "checksum",
    "finished_at",
    "migration_name",
    "logs",
    "rolled_back_at",
    "started_at",
    "applied_steps_count",
)
CHECKSUM_LENGTH = 64


def prisma_checksum(script: bytes) -> str:
    """The checksum Prisma records for a migration script: SHA-256 hex of its exact bytes."""
    return hashlib.sha256(script).hexdigest()


def prisma_checksum_matches(script: bytes, recorded: str) -> bool:
    """Whether ``recorded`` is Prisma's checksum of ``script`` (line-ending agnostic, as Prisma is)."""
    variants = (script, script.replace(b"\r\n", b"\n"), script.replace(b"\n", b"\r\n"))
    for variant in variants:
        digest = hashlib.sha256(variant).digest()
        if recorded and len(recorded) != CHECKSUM_LENGTH:  # an old engine did not zero-pad the bytes
            rendered = "".join(f"{byte:x}" for byte in digest)
        else:
            rendered = digest.hex()
        if rendered == recorded:
            return True
    return False


class PrismaHistory(PreviousTool):
    name = "prisma"
    title = "Prisma"
    layout = "prisma"
    default_table = TABLE

    def locate(self, conn: Any, schema: str | None = None) -> str | None:
        return find_table(conn, TABLE, [schema] if schema else None)

    def read(self, conn: Any, table: str) -> list[dict[str, Any]]:
        found = existing_table(conn, table)
        if found is None:
            raise MigrationRefused(
                f"there is no table {table} in this database",
                rule="import-no-table",
                remedy=f"check --table (SCHEMA.TABLE of {self.title}'s {TABLE}), or leave it out to look "
                f"for {TABLE} in every schema",
                context={"tool": self.name, "table": table},
            )
        table = found
        missing = set(COLUMNS) - columns_of(conn, table)
        if missing:
            raise MigrationRefused(
                f"{table} is not Prisma's migrations table: it has no column {', '.join(sorted(missing))}",
                rule="import-no-table",
                remedy="pass --table SCHEMA.TABLE naming the _prisma_migrations table Prisma created (in "
                "the schema of its datasource URL's ?schema= parameter, public by default)",
                context={"tool": self.name, "table": table},
            )
        return read_rows(conn, f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY started_at, id")

    def adopt(self, rows: list[dict[str, Any]], bundle: Bundle) -> Adoption:
        out = Adoption()
        by_name: dict[str, ManifestEntry] = {
            e.script: e for e in bundle.manifest.migrations if e.kind == VERSIONED
        }
        applied: dict[str, dict[str, Any]] = {}  # migration_name -> its counting row (the latest)
        rolled_back: dict[str, dict[str, Any]] = {}
        for row in rows:
            name = str(row["migration_name"])
            if row["rolled_back_at"] is not None:
                rolled_back[name] = row
            elif row["finished_at"] is None:
                out.refusals.append(self._not_finished(row))
            else:
                if name in applied:
                    out.notes.append(
                        f"Prisma recorded {name} as applied twice (ids {applied[name]['id']} and "
                        f"{row['id']}); the later row is imported"
                    )
                applied[name] = row
        for name, row in sorted(applied.items(), key=lambda kv: kv[1]["started_at"]):
            entry = by_name.get(name)
            if entry is None:
                out.refusals.append(self._no_directory(name))
                continue
            script = bundle.files[entry.file]
            if not prisma_checksum_matches(script, str(row["checksum"])):
                out.refusals.append(self._edited(name, entry, str(row["checksum"]), prisma_checksum(script)))
                continue
            out.rows.append(self._row(row, entry))
            if not row["applied_steps_count"] and row["logs"] == "":
                out.notes.append(
                    f"{name} was marked as applied with `prisma migrate resolve --applied` (Prisma did not "
                    "run it); it is imported as applied, as Prisma counts it"
                )
        for name in sorted(set(rolled_back) - set(applied)):
            if name in by_name:
                out.notes.append(
                    f"Prisma rolled back {name} (`prisma migrate resolve --rolled-back`) and has not applied "
                    "it again: it is pending, and `schemagate apply` runs it (as `prisma migrate deploy` "
                    "would)"
                )
        return out

    def _row(self, row: dict[str, Any], entry: ManifestEntry) -> ImportedRow:
        started, finished = row["started_at"], row["finished_at"]
        elapsed = 0
        if isinstance(started, datetime) and isinstance(finished, datetime):
            elapsed = max(0, int((finished - started).total_seconds() * 1000))
        return self.imported(
            entry,
            origin=str(row["migration_name"]),
            installed_on=finished,
            installed_by=None,
            execution_time_ms=elapsed,
        )

    def _not_finished(self, row: dict[str, Any]) -> MigrationRefused:
        name = str(row["migration_name"])
        logs = (row["logs"] or "").strip()
        failed = bool(logs)
        what = (
            f"failed (finished_at and rolled_back_at are empty; Prisma's log: {_condensed(logs)})"
            if failed
            else "started but never finished (finished_at and rolled_back_at are empty, no log: it may "
            "still be running, or its process died)"
        )
        return MigrationRefused(
            f"Prisma's migration {name} (started {row['started_at']}, id {row['id']}, "
            f"{row['applied_steps_count']} step(s) applied) {what}: the database may hold part of it",
            file=name,
            rule="import-failed-migration" if failed else "import-unfinished",
            remedy=f"settle it with Prisma first: make the database match the migration by hand, then run "
            f"`prisma migrate resolve --applied {name}`; or undo what it did, run `prisma migrate resolve "
            f"--rolled-back {name}` and let schemagate apply it after the import; `prisma migrate status` "
            "must report no failed migration before importing again",
            context={"tool": self.name, "migration": name, "id": str(row["id"])},
        )

    def _edited(self, name: str, entry: ManifestEntry, recorded: str, actual: str) -> MigrationRefused:
        refusal = self.edited(name, entry, recorded, actual)
        refusal.remedy = (
            f"restore {entry.file} exactly as Prisma applied it (from version control) and put the change "
            "in a new migration; Prisma has no command that accepts an edited migration (`prisma migrate "
            "dev` only warns), so if the edit really changes nothing in the database, record the new "
            f"checksum in {TABLE} first (UPDATE {TABLE} SET checksum = '{actual}' WHERE migration_name = "
            f"'{name}'), then import again"
        )
        return refusal

    def _no_directory(self, name: str) -> MigrationRefused:
        refusal = self.no_file(name, TABLE)
        refusal.remedy = (
            f"restore the directory {name}/ with the migration.sql Prisma applied (from version control), "
            "then import again; Prisma itself reports it as applied but missing from the migrations "
            "directory (`prisma migrate status`)"
        )
        return refusal


def _condensed(text: str, limit: int = 400) -> str:
    """Prisma's multi-line log on one line, cut at ``limit`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
