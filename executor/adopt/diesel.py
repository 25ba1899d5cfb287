"""Diesel's ``__diesel_schema_migrations``, as diesel_migrations writes it.

Source followed: diesel-rs/diesel ``diesel/src/migration/setup_migration_table.sql`` (the table, created
with ``CREATE TABLE IF NOT EXISTS`` in the connection's first schema before every command) and
``diesel_migrations/src/migration_harness.rs`` (``run_migration`` inserts only ``version``, in the
migration's transaction unless ``run_in_transaction = false``; ``revert_migration`` deletes the row;
``applied_migrations`` selects ``version`` ordered by it)::

    CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (
           version VARCHAR(50) PRIMARY KEY NOT NULL,
           run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
    );

Diesel records no checksum, no user and no duration, and a row exists only for a migration that
finished (a failed one rolls back with its row, or, outside a transaction, never gets one).  So:

- every row is an applied migration; it maps to the directory whose version string (the directory
  name up to the first ``_``, dashes removed) equals ``version`` exactly, as Diesel compares them;
- a version without a directory refuses the import (``diesel migration revert`` would fail on it
  too: ``UnknownMigrationVersion``);
- no checksum to compare: the imported row gets today's checksum, so drift is detected from now on;
- ``installed_on`` is ``run_on`` (a timestamp without time zone, read in this session's time zone);
  application order is ``run_on``, then version (one ``diesel migration run`` applies many in the
  same second).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from executor.adopt.base import Adoption, PreviousTool, columns_of, existing_table, find_table, read_rows
from executor.bundle import Bundle
from executor.errors import MigrationRefused
from executor.manifest import ManifestEntry
from executor.naming import VERSIONED, Version

TABLE = "__diesel_schema_migrations"
COLUMNS = {"version", "run_on"}


class DieselHistory(PreviousTool):
    name = "diesel"
    title = "Diesel"
    layout = "diesel"
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
        missing = COLUMNS - columns_of(conn, table)
        if missing:
            raise MigrationRefused(
                f"{table} is not Diesel's history table: it has no column {', '.join(sorted(missing))}",
                rule="import-no-table",
                remedy="pass --table SCHEMA.TABLE naming the table diesel_migrations created "
                f"({TABLE} in the schema Diesel's connection used)",
                context={"tool": self.name, "table": table},
            )
        return read_rows(conn, f"SELECT version, run_on FROM {table} ORDER BY version")

    def adopt(self, rows: list[dict[str, Any]], bundle: Bundle) -> Adoption:
        out = Adoption()
        by_version: dict[str, ManifestEntry] = {
            e.version: e for e in bundle.manifest.migrations if e.kind == VERSIONED and e.version is not None
        }
        for row in sorted(rows, key=_application_order):
            version = str(row["version"])
            entry = by_version.get(version)
            if entry is None:
                out.refusals.append(self._no_directory(version))
                continue
            out.rows.append(
                self.imported(
                    entry,
                    origin=f"{entry.script} (version {version})",
                    installed_on=row["run_on"],
                    installed_by=None,
                    execution_time_ms=0,
                )
            )
        pending = sorted(set(by_version) - {str(r["version"]) for r in rows}, key=Version.parse)
        if pending and out.rows:
            out.notes.append(
                f"Diesel has not applied {len(pending)} migration(s) of the directory "
                f"({', '.join(by_version[v].script for v in pending[:3])}"
                f"{', …' if len(pending) > 3 else ''}): they stay pending, and `schemagate apply` runs them"
            )
        return out

    def _no_directory(self, version: str) -> MigrationRefused:
        refusal = self.no_file(f"version {version}", TABLE)
        refusal.remedy = (
            f"restore the migration directory whose name starts with version {version} (as "
            f"`{_dashed_hint(version)}_<name>/` or `{version}_<name>/`, with the up.sql Diesel ran, from "
            "version control), then import again; if the migration was removed on purpose, revert it "
            "with Diesel first (`diesel migration revert` while its directory still exists)"
        )
        return refusal


def _application_order(row: dict[str, Any]) -> tuple:
    run_on = row["run_on"] if isinstance(row["run_on"], datetime) else datetime.min
    text = str(row["version"])
    try:
        parts: tuple[int, ...] = Version.parse(text).parts
    except ValueError:
        parts = ()
    return (run_on, parts, text)


def _dashed_hint(version: str) -> str:
    if len(version) == 14 and version.isdigit():
        return f"{version[:4]}-{version[4:6]}-{version[6:8]}-{version[8:]}"
    return version
