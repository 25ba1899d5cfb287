"""``schemagate validate --database-url URL``: the migrations on disk against what a database recorded,
the way ``flyway validate`` checks them.  Reads the history table only; changes nothing.

The files are joined with ``<schema>.schemagate_history`` exactly as ``apply`` joins them
(``executor.state``), and everything ``apply`` would refuse becomes an error finding of family
``integrity`` with the rule ``apply`` reports: ``checksum-drift`` (an applied file was edited),
``missing-migration`` (an applied version has no file), ``failed-migration`` (a ``success = false``
row), ``out-of-order`` (a pending version below the highest applied one).  Each pending migration
is a ``pending-migration`` warning: ``flyway validate`` fails on it by default, but a change under
review is expected to bring pending migrations, so here it blocks only with
``blocking_severity = "warning"``.

The report gets a "Database" section with the count of each state.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from executor.errors import SchemagateError
from executor.manifest import Manifest
from executor.settings import ExecutorSettings
from executor.state import MigrationInfo, MigrationState, build_info, refusals
from validator.findings import ERROR, WARNING, Finding, docs_link

if TYPE_CHECKING:
    from psycopg2.extensions import connection as Connection

    from validator.findings import JSONObject
    from validator.reports import JUnitCase
    from validator.structural import StructuralResult

FAMILY = "integrity"
RULE_PENDING = "pending-migration"


def _docs(rule: str) -> str:
    return docs_link("checks.md", rule)


@dataclass
class DatabaseCheck:
    """The result, and the report section ``validator.reports`` renders."""

    target: str  # the database, as the user reads it (password masked)
    table: str  # the history table, qualified
    infos: list[MigrationInfo] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    history_rows: int = 0

    title = "Database"

    def counts(self) -> dict[str, int]:
        return dict(Counter(i.state.value for i in self.infos))

    def markdown(self) -> str:
        counts = ", ".join(f"{n} {state}" for state, n in self.counts().items()) or "nothing recorded"
        lines = [
            "### Database",
            "",
            f"The files compared with the history of {self.target} (`{self.table}`, "
            f"{self.history_rows} rows): {counts}.",
        ]
        problems = [f for f in self.findings if f.severity == ERROR]
        if problems:
            lines += ["", f"{len(problems)} would stop `schemagate apply` (listed with the findings)."]
        return "\n".join(lines)

    def to_json(self) -> JSONObject:
        return {
            "target": self.target,
            "table": self.table,
            "history_rows": self.history_rows,
            "states": self.counts(),
            "migrations": [i.to_dict() for i in self.infos],
        }

    def junit_suite(self) -> tuple[str, list[JUnitCase]]:
        from validator.reports import JUnitCase

        out = "\n".join(f"{i.file}: {i.state.value}" for i in self.infos) or None
        case = JUnitCase(name=f"history of {self.target}", classname="schemagate.database", system_out=out)
        return "database", [case]


def _refusal_finding(error: SchemagateError) -> Finding:
    assert error.rule is not None  # every refusal of executor.state names its rule
    return Finding(
        rule=error.rule,
        family=FAMILY,
        severity=ERROR,
        file=error.file,
        line=None,
        column=None,
        message=error.message.replace("the bundle has", "the file has").replace(
            "missing from the bundle", "has no file in the migrations directory"
        ),
        help=error.remedy or "",
        docs=_docs(error.rule),
    )


def _pending_finding(info: MigrationInfo, target: str) -> Finding:
    outdated = info.state is MigrationState.OUTDATED
    what = "changed since it was applied: apply runs it again" if outdated else ""
    return Finding(
        rule=RULE_PENDING,
        family=FAMILY,
        severity=WARNING,
        file=info.file,
        line=None,
        column=None,
        message=f"{info.file} is not applied to {target} yet"
        if not what
        else f"{info.file} (repeatable) {what} on {target}",
        help="`schemagate apply` applies it; nothing to do when this change is not deployed yet",
        docs=_docs(RULE_PENDING),
    )


def check_against_database(
    conn: Connection, structural: StructuralResult, settings: ExecutorSettings, *, target: str
) -> DatabaseCheck:
    """Join ``structural`` (the files, checked structurally) with the history ``conn`` holds."""
    from executor.history import read_history

    entries = [entry for entry, _ in structural.manifest_entries()]
    manifest = Manifest(migrations=entries, layout=structural.layout)
    try:
        rows = read_history(conn, settings)
    finally:
        if not conn.autocommit:
            conn.rollback()  # leave no transaction open on the user's database
    infos = build_info(manifest, rows, settings)
    findings = [_refusal_finding(error) for error in refusals(infos, settings)]
    findings += [
        _pending_finding(i, target)
        for i in infos
        if i.state is MigrationState.PENDING or (i.state is MigrationState.OUTDATED and i.kind != "undo")
    ]
    return DatabaseCheck(
        target=target,
        table=f"{settings.schema}.{settings.table}",
        infos=infos,
        findings=findings,
        history_rows=len(rows),
    )
