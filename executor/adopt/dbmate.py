"""dbmate's ``schema_migrations``, as its PostgreSQL driver writes it (``pkg/driver/postgres/postgres.go``
in amacneil/dbmate): ``create table if not exists <schema>.schema_migrations (version varchar primary
key)`` (``varchar(255)`` in dbmate 1.x; another name with ``--migrations-table``, pass it as ``--table``),
in the first schema of the URL's ``search_path``, else the current schema.  ``dbmate up`` inserts the
file's version (the leading digits of its name, as written) in the same transaction as the up section
(right after it for a ``transaction:false`` section); ``dbmate rollback`` deletes it.  No checksum, no
time, no user.

Mapping: each row is the migration of the bundle whose version is that string (dbmate compares the
strings; a row that matches no file refuses the import).  Files dbmate has not applied stay pending;
dbmate itself would also apply one whose version is below applied ones (it does unless ``--strict``),
which schemagate refuses unless ``out_of_order = true``: the import says so.
"""

from __future__ import annotations

from typing import Any

from executor.adopt import schema_migrations
from executor.adopt.base import Adoption, PreviousTool, columns_of, read_rows
from executor.bundle import Bundle
from executor.manifest import ManifestEntry
from executor.naming import VERSIONED


class DbmateHistory(PreviousTool):
    name = "dbmate"
    title = "dbmate"
    layout = "dbmate"
    default_table = "schema_migrations"

    def locate(self, conn: Any, schema: str | None = None) -> str | None:
        if schema is not None:
            return schema_migrations.resolve_table(conn, f'"{schema}"."{self.default_table}"')
        return schema_migrations.locate(conn, schema_migrations.DBMATE)

    def read(self, conn: Any, table: str) -> list[dict[str, Any]]:
        """The table's versions, each row with ``table`` (the qualified name read) and ``other_columns``
        (any column besides ``version``, for a note).  Refuses golang-migrate's table (it has ``dirty``)."""
        qualified = schema_migrations.require_table_of(conn, table, schema_migrations.DBMATE)
        extra = sorted(columns_of(conn, qualified) - {"version"})
        rows = read_rows(conn, f"SELECT version::text AS version FROM {qualified} ORDER BY version")
        return [{**row, "table": qualified, "other_columns": extra} for row in rows]

    def adopt(self, rows: list[dict[str, Any]], bundle: Bundle) -> Adoption:
        out = Adoption()
        if not rows:
            out.notes.append("dbmate's table is empty: it has applied nothing (or rolled everything back)")
            return out
        table = rows[0].get("table", self.default_table)
        if rows[0].get("other_columns"):
            out.notes.append(
                f"{table} has columns besides version ({', '.join(rows[0]['other_columns'])}); schemagate "
                "reads only the version"
            )
        ups: dict[str, ManifestEntry] = {
            e.version: e for e in bundle.manifest.migrations if e.kind == VERSIONED and e.version is not None
        }
        applied: set[str] = set()
        for row in rows:
            version = str(row["version"])
            entry = ups.get(version)
            if entry is None:
                out.refusals.append(self.no_file(f"version {version}", table))
                continue
            applied.add(version)
        if out.refusals:
            return out
        for version, entry in sorted(ups.items(), key=lambda kv: kv[1].required_version):
            if version in applied:
                out.rows.append(self.imported(entry, origin=version, installed_on=None, installed_by=None))
        out.notes.append(
            f"dbmate applied {len(out.rows)} migration(s); it records no checksums, so an edit made to one "
            "of them after it ran cannot be detected, and no times or users (the rows get the time of this "
            "import)"
        )
        highest = max(ups[v].required_version for v in applied)
        skipped = sorted(
            (e for v, e in ups.items() if v not in applied and e.required_version < highest),
            key=lambda e: e.required_version,
        )
        if skipped:
            out.notes.append(
                f"{len(skipped)} migration(s) dbmate has not applied have a version below the highest it "
                f"applied (first: {skipped[0].file}); dbmate would apply them (unless --strict), schemagate "
                "refuses them as out of order unless `out_of_order = true`"
            )
        return out
