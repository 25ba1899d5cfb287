"""``schemagate import --from TOOL``: take over a database that another tool migrated.

How a take-over goes (``take_over``):

1. the tool's history table is found (``PreviousTool.locate``) and read exactly as the tool wrote it;
   it is never changed;
2. the tool's reader maps every applied migration to its file in the bundle and refuses, as data,
   what must not be adopted silently (failed, dirty or unfinished migrations, a checksum the tool
   recorded that today's file no longer matches, an applied migration without a file);
3. with the executor's advisory lock held, the rows are compared with ``schemagate_history``: rows that
   are there already with the same checksum are skipped (a second import changes nothing and says so),
   a row that disagrees (another checksum, a failed row, another baseline) refuses the whole import;
4. the missing rows are written in one transaction, type ``IMPORTED`` (``BASELINE`` for a baseline the
   old tool recorded), with the old tool's timestamps and users, and ``run_id = import:<tool>``.

Nothing is written when anything refuses.  After an import ``apply`` applies only what the old tool
had not applied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module

from executor.adopt.base import Adoption, ImportedRow, PreviousTool
from executor.bundle import Bundle
from executor.errors import ConfigurationError, MigrationRefused, SchemagateError, combined
from executor.history import HistoryType, ensure_history_table, history_exists, read_history
from executor.lock import AdvisoryLock, rollback_if_open
from executor.session import autocommit
from executor.settings import ExecutorSettings

# --from name -> "module:class"
TOOLS: dict[str, str] = {
    "flyway": "executor.adopt.flyway:FlywayHistory",
    "prisma": "executor.adopt.prisma:PrismaHistory",
    "drizzle": "executor.adopt.drizzle:DrizzleHistory",
    "diesel": "executor.adopt.diesel:DieselHistory",
    "golang-migrate": "executor.adopt.golang_migrate:GolangMigrateHistory",
    "dbmate": "executor.adopt.dbmate:DbmateHistory",
}


def get_tool(name: str) -> PreviousTool:
    target = TOOLS.get(name)
    if target is None:
        raise ConfigurationError(
            f"schemagate cannot import from {name!r}", remedy=f"--from one of: {', '.join(TOOLS)}"
        )
    module, _, cls = target.partition(":")
    return getattr(import_module(module), cls)()


@dataclass
class TakeOver:
    """What an import did (or, with ``dry_run``, would do)."""

    tool: str
    table: str
    to_write: list[ImportedRow] = field(default_factory=list)
    already: list[ImportedRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    written: bool = False

    @property
    def up_to_date(self) -> bool:
        return not self.to_write

    def summary(self) -> str:
        title = get_tool(self.tool).title
        if self.up_to_date:
            return (
                f"nothing to import: the {len(self.already)} migration(s) {title} applied are already in "
                "schemagate's history"
            )
        verb = "imported" if self.written else "would import"
        text = f"{verb} {len(self.to_write)} migration(s) from {title}'s {self.table}"
        if self.already:
            text += f" ({len(self.already)} already imported)"
        return text


def _compare(adoption: Adoption, existing: list, settings: ExecutorSettings, tool: PreviousTool) -> TakeOver:
    """Split the adopted rows into already present and to write; refuse rows that disagree."""
    refusals: list[SchemagateError] = []
    failed = [r for r in existing if not r.success]
    for r in failed:
        refusals.append(
            MigrationRefused(
                f"{settings.qualified_table} has a failed row for {r.script} (rank {r.installed_rank})",
                rule="import-history-failed",
                remedy="fix the database and run `schemagate repair`, then import again",
            )
        )
    by_key = {}
    for r in existing:
        if r.success and r.type in (
            HistoryType.IMPORTED,
            HistoryType.SQL,
            HistoryType.REPEATABLE,
            HistoryType.BASELINE,
        ):
            by_key[(r.version, r.script) if r.type != HistoryType.BASELINE else ("baseline", r.version)] = r
    baselines = [r for r in existing if r.type == HistoryType.BASELINE and r.success]
    take = TakeOver(tool=tool.name, table="")
    for row in adoption.rows:
        key = ("baseline", row.version) if row.type == HistoryType.BASELINE else row.key
        present = by_key.get(key)
        if present is None and row.type == HistoryType.BASELINE and baselines:
            refusals.append(
                MigrationRefused(
                    f"{settings.qualified_table} already has a baseline at version {baselines[-1].version}; "
                    f"{tool.title} recorded one at {row.version}",
                    rule="import-history-disagrees",
                    remedy="take over a database once, from the tool that really migrated it",
                )
            )
            continue
        if present is None:
            take.to_write.append(row)
        elif row.type != HistoryType.BASELINE and (present.checksum or None) != row.checksum:
            refusals.append(
                MigrationRefused(
                    f"{settings.qualified_table} already records {row.script} with checksum "
                    f"{present.checksum}, "
                    f"but today's file, which {tool.title} applied, has {row.checksum}",
                    file=row.script,
                    rule="import-history-disagrees",
                    remedy="schemagate's history and the old tool's table describe different files: find out "
                    "which one is right before importing (`schemagate info` shows schemagate's view)",
                )
            )
        else:
            take.already.append(row)
    if refusals:
        raise combined(refusals)
    take.notes = list(adoption.notes)
    return take


def _insert(cur, settings: ExecutorSettings, rows: list[ImportedRow], tool: str, bundle_sha256: str) -> None:
    table = settings.qualified_table
    for row in rows:
        cur.execute(
            f"INSERT INTO {table} (installed_rank, version, description, type, script, checksum, "
            "installed_by, "
            "installed_on, execution_time_ms, success, bundle_sha256, run_id) "
            f"SELECT coalesce(max(installed_rank), 0) + 1, %s, %s, %s, %s, %s, coalesce(%s, current_user), "
            f"coalesce(%s, now()), %s, true, %s, %s FROM {table}",
            (
                row.version,
                row.description,
                row.type,
                row.script,
                row.checksum,
                row.installed_by,
                row.installed_on,
                max(0, int(row.execution_time_ms or 0)),
                bundle_sha256,
                f"import:{tool}",
            ),
        )


def _read_adoption(conn, bundle: Bundle, tool: PreviousTool, table: str | None) -> tuple[str, Adoption]:
    located = table or tool.locate(conn)
    if located is None:
        raise MigrationRefused(
            f"this database has no {tool.title} history table ({tool.default_table}): there is "
            "nothing to import "
            f"from {tool.title}",
            rule="import-no-table",
            remedy=f"check the database URL and the schema; if {tool.title} keeps its table elsewhere, pass "
            "--table SCHEMA.TABLE; a database no tool migrated needs no import (`schemagate apply` "
            "starts it)",
            context={"tool": tool.name},
        )
    rows = tool.read(conn, located)
    adoption = tool.adopt(rows, bundle)
    if adoption.refusals:
        raise combined(adoption.refusals)
    return located, adoption


def take_over(
    conn,
    bundle: Bundle,
    tool_name: str,
    settings: ExecutorSettings,
    *,
    table: str | None = None,
    dry_run: bool = False,
    confirm: Callable[[TakeOver], bool] | None = None,
) -> TakeOver:
    """Import the tool's history into ``schemagate_history`` (see the module doc).

    ``dry_run``: read and compare only (no lock, nothing created).  ``confirm(plan)``: asked before
    writing; False leaves the database as it was.  Raises MigrationRefused (exit 1) listing every
    refusal, ConfigurationError (exit 2) for a tool whose layout the bundle does not use."""
    tool = get_tool(tool_name)
    if bundle.manifest.layout != tool.layout:
        raise ConfigurationError(
            f"--from {tool.name} reads {tool.title}'s history, which names {tool.title} migrations, but the "
            f"migrations are in the {bundle.manifest.layout} layout",
            remedy=f"point --migrations at the {tool.title} migrations directory (or set layout = "
            f'"{tool.layout}" under [tool.schemagate])',
        )
    with autocommit(conn, exclusive=True):
        if dry_run:
            located, adoption = _read_adoption(conn, bundle, tool, table)
            existing = read_history(conn, settings) if history_exists(conn, settings) else []
            result = _compare(adoption, existing, settings, tool)
            result.table = located
            return result
        with AdvisoryLock(conn, settings):
            located, adoption = _read_adoption(conn, bundle, tool, table)
            existing = read_history(conn, settings)
            result = _compare(adoption, existing, settings, tool)
            result.table = located
            if result.up_to_date or (confirm is not None and not confirm(result)):
                return result
            ensure_history_table(conn, settings)
            with conn.cursor() as cur:
                try:
                    cur.execute("BEGIN")
                    _insert(cur, settings, result.to_write, tool.name, bundle.bundle_sha256)
                    cur.execute("COMMIT")
                except BaseException:
                    rollback_if_open(conn)
                    raise
            result.written = True
            return result


__all__ = ["TOOLS", "ImportedRow", "PreviousTool", "TakeOver", "get_tool", "take_over"]
