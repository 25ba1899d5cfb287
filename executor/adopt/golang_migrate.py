"""golang-migrate's ``schema_migrations``, as its PostgreSQL driver writes it
(``database/postgres/postgres.go`` in golang-migrate/migrate):

``CREATE TABLE IF NOT EXISTS "<current schema>"."schema_migrations" (version bigint not null primary key,
dirty boolean not null)`` (another name with ``x-migrations-table``; pass it as ``--table``).  The table
holds ONE row: before each migration golang-migrate truncates it and inserts ``(V, true)``, runs the file,
then writes ``(V, false)``; ``migrate down`` to nothing leaves it empty.

Mapping: the row says the database is at version V, so every up file of the bundle with a version up to
V counts as applied (golang-migrate applies them in order and records nothing per file: no checksum, no
time, no user).  V itself must have a file.  ``dirty = true`` means the migration V failed or was
interrupted part-way: refused, until the database is fixed by hand and golang-migrate is told with
``migrate force V``.
"""

from __future__ import annotations

from typing import Any

from executor.adopt import schema_migrations
from executor.adopt.base import Adoption, PreviousTool, read_rows
from executor.bundle import Bundle
from executor.errors import MigrationRefused
from executor.naming import VERSIONED


class GolangMigrateHistory(PreviousTool):
    name = "golang-migrate"
    title = "golang-migrate"
    layout = "golang-migrate"
    default_table = "schema_migrations"

    def locate(self, conn: Any, schema: str | None = None) -> str | None:
        if schema is not None:
            return schema_migrations.resolve_table(conn, f'"{schema}"."{self.default_table}"')
        return schema_migrations.locate(conn, schema_migrations.GOLANG_MIGRATE)

    def read(self, conn: Any, table: str) -> list[dict[str, Any]]:
        """The table's rows (``version``, ``dirty``), each with ``table``: the qualified name read, for
        messages.  Refuses a table that is not golang-migrate's (dbmate's has no ``dirty``)."""
        qualified = schema_migrations.require_table_of(conn, table, schema_migrations.GOLANG_MIGRATE)
        return [
            {**row, "table": qualified}
            for row in read_rows(conn, f"SELECT version, dirty FROM {qualified} ORDER BY version")
        ]

    def adopt(self, rows: list[dict[str, Any]], bundle: Bundle) -> Adoption:
        out = Adoption()
        if not rows:
            out.notes.append(
                "golang-migrate's table is empty: it has applied nothing (or migrated all the way down)"
            )
            return out
        table = rows[0].get("table", self.default_table)
        if len(rows) > 1:
            versions = ", ".join(str(r["version"]) for r in rows)
            out.refusals.append(
                MigrationRefused(
                    f"{table} holds {len(rows)} rows (versions {versions}); golang-migrate keeps exactly "
                    "one, so something else wrote this table and the version the database is at is unknown",
                    rule="import-dirty",
                    remedy="find out which version the database really is at, then set it with "
                    "`migrate -path DIR -database URL force V` (it leaves one row) and import again",
                    context={"tool": self.name, "table": table, "versions": [r["version"] for r in rows]},
                )
            )
            return out
        version, dirty = int(rows[0]["version"]), bool(rows[0]["dirty"])
        ups = sorted(
            (e for e in bundle.manifest.migrations if e.kind == VERSIONED and e.version is not None),
            key=lambda e: e.required_version,
        )
        current = next((e for e in ups if e.required_version.parts == (version,)), None)
        if dirty:
            what = f"version {version} ({current.file})" if current else f"version {version}"
            previous = [e.version for e in ups if e.required_version.parts[0] < version]
            before = previous[-1] if previous else None
            out.refusals.append(
                MigrationRefused(
                    f"golang-migrate's state is dirty at {what}: that migration failed or was interrupted "
                    "part-way, so the database may hold part of it",
                    file=current.file if current else None,
                    rule="import-dirty",
                    remedy=f"fix the database by hand (finish what version {version} started, or undo it), "
                    f"then tell golang-migrate: `migrate -path DIR -database URL force {version}` if it is "
                    "now fully applied"
                    + (f", `force {before}` if you undid it" if before else "")
                    + "; check `migrate version` no longer says (dirty), then import again",
                    context={"tool": self.name, "table": table, "version": version, "dirty": True},
                )
            )
            return out
        if version < 0:  # golang-migrate's NilVersion, written only together with dirty
            return out
        if current is None:
            out.refusals.append(self.no_file(f"version {version} (the version golang-migrate is at)", table))
            return out
        for entry in ups:
            if entry.required_version.parts[0] > version:
                break
            out.rows.append(
                self.imported(entry, origin=f"version {entry.version}", installed_on=None, installed_by=None)
            )
        out.notes.append(
            f"golang-migrate is at version {version}: every migration up to it counts as applied "
            f"({len(out.rows)}); golang-migrate records no checksums, so an edit made to one of them "
            "after it ran cannot be detected, and no times or users (the rows get the time of this import)"
        )
        pending = [e for e in ups if e.required_version.parts[0] > version]
        if pending:
            out.notes.append(
                f"{len(pending)} migration(s) above version {version} are not applied yet "
                f"(first: {pending[0].file}); `schemagate apply` runs them"
            )
        return out
