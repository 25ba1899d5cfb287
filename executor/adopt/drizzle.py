"""Drizzle's ``drizzle.__drizzle_migrations``, as drizzle-orm's PostgreSQL migrator writes it
(drizzle-orm ``src/pg-core/dialect.ts``, ``PgDialect.migrate``; ``src/migrator.ts``,
``readMigrationFiles``; read in drizzle-orm 0.45):

- ``CREATE SCHEMA IF NOT EXISTS "drizzle"`` and ``CREATE TABLE IF NOT EXISTS "drizzle"."__drizzle_migrations"
  (id SERIAL PRIMARY KEY, hash text NOT NULL, created_at bigint)``; the schema and table names are the
  ``migrationsSchema`` / ``migrationsTable`` options (``--table SCHEMA.TABLE`` here);
- one row per migration it ran: ``hash`` = SHA-256 (hex) of the file's content as read
  (``fs.readFileSync(...).toString()``), ``created_at`` = the journal entry's ``when`` (the time of
  ``drizzle-kit generate``, not of the migration's run: drizzle records no run time);
- what counts as applied: drizzle-orm reads only the row with the greatest ``created_at`` and runs the
  journal entries whose ``when`` is later; every entry up to it counts as done, with a row or not.

Mapping: a row is the migration whose journal ``when`` equals its ``created_at`` when the journal is
at hand (``import --migrations DIR``: the bundle's source directory holds ``meta/_journal.json``),
otherwise (a built bundle carries the SQL files, not the journal) the migration with the same hash, in
journal order.  Refused, with nothing written:

- a row whose hash does not match today's file (edited after drizzle applied it; both hashes shown);
- a row that matches no migration of the journal (its file or entry was removed);
- a migration drizzle-orm skipped: no row, but listed before one that has a row (its ``when`` is not
  later than the last applied one, usually after a merge), so its SQL never ran.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from executor.adopt.base import (
    Adoption,
    ImportedRow,
    PreviousTool,
    columns_of,
    find_table,
    qualified,
    read_rows,
)
from executor.bundle import Bundle
from executor.errors import MigrationRefused
from executor.layouts.drizzle import JOURNAL, JournalError, drizzle_hash, read_journal
from executor.manifest import ManifestEntry

TABLE = "__drizzle_migrations"
SCHEMA = "drizzle"


def _created_at(row: dict[str, Any]) -> int:
    return int(row["created_at"] or 0)  # drizzle-orm: Number(lastDbMigration.created_at)


class DrizzleHistory(PreviousTool):
    name = "drizzle"
    title = "Drizzle"
    layout = "drizzle"
    default_table = f"{SCHEMA}.{TABLE}"

    def locate(self, conn: Any, schema: str | None = None) -> str | None:
        if schema:
            return find_table(conn, TABLE, [schema])
        return find_table(conn, TABLE, [SCHEMA]) or find_table(conn, TABLE)

    def read(self, conn: Any, table: str) -> list[dict[str, Any]]:
        name = self._resolve_table(conn, table)
        return read_rows(conn, f"SELECT id, hash, created_at FROM {name} ORDER BY created_at NULLS FIRST, id")

    def _resolve_table(self, conn: Any, table: str) -> str:
        """``table`` (as located, or as given to --table, quoted or not; without a schema: drizzle's)
        as a quoted name; refuses a table that does not exist or is not shaped like drizzle's."""
        candidates = [table] if "." in table else [table, f"{SCHEMA}.{table}"]
        found = None
        with conn.cursor() as cur:
            for candidate in candidates:
                cur.execute(
                    "SELECT n.nspname, c.relname FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
                    (candidate,),
                )
                found = cur.fetchone()
                if found:
                    break
            if found is None:
                raise MigrationRefused(
                    f"this database has no table {table}: there is no Drizzle history to import",
                    rule="import-no-table",
                    remedy="pass the table drizzle-orm's migrator was given (migrationsSchema."
                    "migrationsTable, default drizzle.__drizzle_migrations) as --table SCHEMA.TABLE",
                    context={"tool": self.name, "table": table},
                )
            name = qualified(found[0], found[1])
        columns = columns_of(conn, name)
        if not {"id", "hash", "created_at"} <= columns:
            raise MigrationRefused(
                f"{name} is not a drizzle-orm migrations table: its columns are "
                f"{', '.join(sorted(columns))}, not id, hash and created_at",
                rule="import-no-table",
                remedy="pass the table drizzle-orm's migrator writes as --table SCHEMA.TABLE",
                context={"tool": self.name, "table": name},
            )
        return name

    def adopt(self, rows: list[dict[str, Any]], bundle: Bundle) -> Adoption:
        entries = sorted(
            (e for e in bundle.manifest.versioned if e.version is not None),
            key=lambda e: e.required_version,
        )
        hashes = [drizzle_hash(bundle.files[e.file]) for e in entries]
        whens = journal_whens(bundle)
        if whens and all(e.file in whens for e in entries):
            return self._by_when(rows, entries, hashes, whens)
        return self._by_position(rows, entries, hashes)

    # the journal is at hand: created_at is the entry's `when` ---------------------------------------

    def _by_when(
        self,
        rows: list[dict[str, Any]],
        entries: list[ManifestEntry],
        hashes: list[str],
        whens: dict[str, int],
    ) -> Adoption:
        out = Adoption()
        at: dict[int, list[int]] = {}  # when -> entries (two entries of a merge may share one)
        for i, e in enumerate(entries):
            at.setdefault(whens[e.file], []).append(i)
        by_hash: dict[str, list[int]] = {}
        for i, h in enumerate(hashes):
            by_hash.setdefault(h, []).append(i)
        done: set[int] = set()
        for row in rows:
            same_when = at.get(_created_at(row), [])
            k = next((j for j in same_when if hashes[j] == row["hash"] and j not in done), None)
            if k is None and same_when and not any(j not in done for j in by_hash.get(row["hash"], [])):
                edited = next((j for j in same_when if j not in done), same_when[0])
                out.refusals.append(self._edited(row, entries[edited], hashes[edited]))
                done.add(edited)
                continue
            if k is None:
                k = next((j for j in by_hash.get(row["hash"], []) if j not in done), None)
                if k is not None:
                    out.notes.append(
                        f"{entries[k].file}: Drizzle recorded it with created_at {_created_at(row)}, but its "
                        f"journal entry says when {whens[entries[k].file]} (the journal was edited after it "
                        "ran); matched by its hash"
                    )
            if k is None:
                out.refusals.append(self._no_file(row))
                continue
            if k in done:
                out.notes.append(f"Drizzle recorded {entries[k].file} twice (id {row['id']}); imported once")
                continue
            done.add(k)
            out.rows.append(self._row(row, entries[k]))
        last = max((_created_at(r) for r in rows), default=None)
        for k, e in enumerate(entries):
            if k not in done and last is not None and whens[e.file] <= last:
                out.refusals.append(
                    self._skipped(
                        e,
                        f"its journal `when` {whens[e.file]} is not later than "
                        f"the last created_at {last} drizzle-orm recorded",
                    )
                )
        out.rows.sort(key=lambda r: _journal_position(entries, r))
        return out

    # a bundle without the journal: the same hash, in journal order -----------------------------------

    def _by_position(
        self, rows: list[dict[str, Any]], entries: list[ManifestEntry], hashes: list[str]
    ) -> Adoption:
        out = Adoption()
        later = Counter(r["hash"] for r in rows)
        pos = 0
        skipped: list[int] = []
        for row in rows:
            later[row["hash"]] -= 1
            k = next((j for j in range(pos, len(entries)) if hashes[j] == row["hash"]), None)
            if k is not None:
                skipped += range(pos, k)
                out.rows.append(self._row(row, entries[k]))
                pos = k + 1
            elif pos < len(entries) and later[hashes[pos]] <= 0:
                # the next migration's content is recorded by no later row: it is this row's file, edited
                out.refusals.append(self._edited(row, entries[pos], hashes[pos], by_position=True))
                pos += 1
            else:
                out.refusals.append(self._no_file(row))
        for k in skipped:
            out.refusals.append(
                self._skipped(entries[k], "it is listed before migrations drizzle-orm applied")
            )
        return out

    # rows and refusals --------------------------------------------------------------------------------

    def _row(self, row: dict[str, Any], entry: ManifestEntry) -> ImportedRow:
        # created_at is when the migration was generated, not when it ran: installed_on is left to now()
        return self.imported(
            entry,
            origin=f"{entry.file} (id {row['id']}, created_at {row['created_at']})",
            installed_on=None,
            installed_by=None,
        )

    def _edited(
        self, row: dict[str, Any], entry: ManifestEntry, actual: str, *, by_position: bool = False
    ) -> MigrationRefused:
        refusal = self.edited(f"id {row['id']} (created_at {row['created_at']})", entry, row["hash"], actual)
        if by_position:
            refusal.message += (
                " (matched by its place in the journal, as no file has the recorded content; if "
                f"{entry.file} is a migration Drizzle has not applied yet, the applied file was deleted)"
            )
        return refusal

    def _no_file(self, row: dict[str, Any]) -> MigrationRefused:
        return self.no_file(
            f"a migration with hash {row['hash']} (id {row['id']}, created_at {row['created_at']})"
        )

    def _skipped(self, entry: ManifestEntry, why: str) -> MigrationRefused:
        return MigrationRefused(
            f"Drizzle never applied {entry.file}: its table has no row for it, and {why}; drizzle-orm's "
            "migrator only runs journal entries later than its last row, so it skipped this one and its "
            "SQL is not in the database",
            file=entry.file,
            rule="import-skipped-migration",
            remedy=f"let Drizzle apply it first: move its entry to the end of {JOURNAL} with a `when` later "
            "than every applied one (`Date.now()`), run `drizzle-kit migrate`, then import again; or, if "
            "it is not wanted, remove it with `drizzle-kit drop`",
            context={"tool": self.name, "migration": entry.file},
        )


def _journal_position(entries: list[ManifestEntry], row: ImportedRow) -> int:
    return next(k for k, e in enumerate(entries) if e.script == row.script)


def journal_whens(bundle: Bundle) -> dict[str, int]:
    """File -> journal ``when``, when the bundle was made from a directory that holds the journal
    (``import --migrations DIR``); empty for a built bundle (it carries the SQL files only)."""
    source = bundle.manifest.source or {}
    if source.get("kind") != "directory" or not source.get("path"):
        return {}
    path = Path(str(source["path"])) / JOURNAL
    try:
        journal = read_journal(path.read_bytes())
    except (OSError, JournalError):
        return {}
    return {e.rel: e.when for e in journal.entries}
