"""Flyway's ``flyway_schema_history``, as Flyway (9, 10, 11) writes it:

``installed_rank`` integer primary key, ``version`` varchar(50) (null for repeatables), ``description``,
``type`` (``SQL``; ``BASELINE`` with script ``<< Flyway Baseline >>``; ``SCHEMA`` when Flyway created the
schemas; ``DELETE`` when ``flyway repair`` marked a missing migration deleted; ``UNDO_SQL``; ``JDBC`` /
``SPRING_JDBC`` / ``SCRIPT`` for Java and script migrations), ``script``, ``checksum`` integer (CRC32 of the
file's lines, see ``flyway_checksum``), ``installed_by``, ``installed_on`` timestamp, ``execution_time``
(ms) and ``success``.

Mapping: a versioned row is the bundle's file with the same version (compared numerically, as Flyway
does); its CRC32 must match today's file.  A repeatable counts by its latest row; when the file changed
since, it is not imported (schemagate applies it again on the next run, as Flyway would).  A baseline row
becomes schemagate's baseline at the same version.  ``success = false`` refuses the import (Flyway itself
refuses to migrate until ``flyway repair``).
"""

from __future__ import annotations

import re
import zlib
from typing import Any

from executor.adopt.base import Adoption, PreviousTool, find_table, read_rows
from executor.bundle import Bundle
from executor.checksum import UTF8_BOM
from executor.errors import MigrationRefused
from executor.history import BASELINE_SCRIPT, HistoryType
from executor.manifest import ManifestEntry
from executor.naming import REPEATABLE, VERSIONED, Version

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
SQL_TYPES = ("SQL",)
CODE_TYPES = ("JDBC", "SPRING_JDBC", "SCRIPT", "CUSTOM")


def flyway_checksum(data: bytes) -> int:
    """Flyway's checksum of a migration file: CRC32 over the UTF-8 bytes of its lines without their
    line endings (Java's ``BufferedReader.readLine``: ``\\n``, ``\\r`` or ``\\r\\n``), the BOM removed from
    the first line, as a signed 32-bit integer."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    crc = zlib.crc32(_LINE_BREAK.sub(b"", data))
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def _version(text: Any) -> Version | None:
    try:
        return Version.parse(str(text).strip())
    except ValueError:
        return None


class FlywayHistory(PreviousTool):
    name = "flyway"
    title = "Flyway"
    layout = "flyway"
    default_table = "flyway_schema_history"

    def locate(self, conn: Any, schema: str | None = None) -> str | None:
        return find_table(conn, "flyway_schema_history", [schema] if schema else None)

    def read(self, conn: Any, table: str) -> list[dict[str, Any]]:
        return read_rows(
            conn,
            "SELECT installed_rank, version, description, type, script, checksum, installed_by, "
            "installed_on, "
            f"execution_time, success FROM {table} ORDER BY installed_rank",
        )

    def adopt(self, rows: list[dict[str, Any]], bundle: Bundle) -> Adoption:
        out = Adoption()
        versioned: dict[Version, ManifestEntry] = {}
        for e in bundle.manifest.migrations:
            if e.kind == VERSIONED and e.parsed_version is not None:
                versioned[e.parsed_version] = e
        repeatables = {e.description: e for e in bundle.manifest.migrations if e.kind == REPEATABLE}
        applied: dict[Version, dict[str, Any]] = {}  # version -> its counting row
        latest_repeatable: dict[str, dict[str, Any]] = {}
        baseline: dict[str, Any] | None = None
        for row in rows:
            kind, version = str(row["type"]).upper(), _version(row["version"])
            where = f"installed_rank {row['installed_rank']} ({row['script']})"
            if not row["success"]:
                out.refusals.append(
                    MigrationRefused(
                        f"Flyway recorded {row['script']} (version {row['version']}) as failed "
                        f"(success = false, {where}): the database may hold part of it",
                        file=row["script"],
                        rule="import-failed-migration",
                        remedy="finish or undo the failed migration by hand, run `flyway repair` (it "
                        "removes the "
                        "failed row), check `flyway info` is clean, then import again",
                        context={"tool": self.name, "installed_rank": row["installed_rank"]},
                    )
                )
            elif kind == "SCHEMA":
                out.notes.append(f"Flyway created the schemas {row['script']!s} ({where}); nothing to import")
            elif kind == "BASELINE":
                baseline = row
            elif (kind == "DELETE" and version is not None) or (kind == "UNDO_SQL" and version is not None):
                applied.pop(version, None)
            elif version is None:
                latest_repeatable[str(row["description"])] = row
            elif kind in CODE_TYPES:
                out.refusals.append(
                    MigrationRefused(
                        f"Flyway applied {row['script']} (version {row['version']}) as a {kind} migration: "
                        "schemagate applies SQL files only, so no file of the bundle can stand for it",
                        rule="import-no-file",
                        remedy="write the migration's effect as a V file with the same version and "
                        "description "
                        "(the Java code already ran; the SQL file only documents it), or baseline above it",
                        context={"tool": self.name},
                    )
                )
            else:
                applied[version] = row
        if baseline is not None:
            out.rows.append(
                self._baseline_row(baseline),
            )
        for version, row in sorted(applied.items(), key=lambda kv: kv[1]["installed_rank"]):
            entry = versioned.get(version)
            if entry is None:
                out.refusals.append(self.no_file(f"{row['script']} (version {row['version']})"))
                continue
            self._check(row, entry, bundle, out)
        for description, row in sorted(latest_repeatable.items(), key=lambda kv: kv[1]["installed_rank"]):
            entry = repeatables.get(description)
            if entry is None:
                out.notes.append(
                    f"Flyway applied the repeatable {row['script']}, which is no longer in the migrations; "
                    "its objects stay in the database"
                )
                continue
            if row["checksum"] is not None and flyway_checksum(bundle.files[entry.file]) != row["checksum"]:
                out.notes.append(
                    f"{entry.file} changed since Flyway last applied it: schemagate applies it on the "
                    "next run, "
                    "as Flyway would"
                )
                continue
            out.rows.append(self._row(row, entry))
        return out

    def _check(self, row: dict[str, Any], entry: ManifestEntry, bundle: Bundle, out: Adoption) -> None:
        recorded = row["checksum"]
        if recorded is not None:
            actual = flyway_checksum(bundle.files[entry.file])
            if actual != recorded:
                out.refusals.append(
                    self.edited(f"version {row['version']}", entry, str(recorded), str(actual))
                )
                return
        out.rows.append(self._row(row, entry))

    def _row(self, row: dict[str, Any], entry: ManifestEntry):
        return self.imported(
            entry,
            origin=str(row["script"]),
            installed_on=row["installed_on"],
            installed_by=row["installed_by"],
            execution_time_ms=int(row["execution_time"] or 0),
        )

    def _baseline_row(self, row: dict[str, Any]):
        from executor.adopt.base import ImportedRow

        return ImportedRow(
            version=str(row["version"]),
            description=str(row["description"] or "baseline"),
            script=BASELINE_SCRIPT,
            checksum=None,
            installed_on=row["installed_on"],
            installed_by=row["installed_by"],
            type=HistoryType.BASELINE,
            origin=str(row["script"]),
        )
