"""What a rehearsal reports: ``RehearsalResult``, a section of the validation report (its
Markdown for report.md, its JSON for report.json, its JUnit suite "rehearsal")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from validator.findings import ERROR, Finding, blocking_findings
from validator.rehearsal import gantt
from validator.rehearsal.base import base_template_name
from validator.rehearsal.findings import FAMILY, RULE_BASE_FAILED
from validator.rehearsal.locks import lock_effect
from validator.rehearsal.outcome import RehearsedMigration

if TYPE_CHECKING:
    from validator.findings import JSONObject
    from validator.reports import JUnitCase

MARKDOWN_MAX_ROWS = 100  # rows in report.md's table (notable ones kept first); report.json has all
MARKDOWN_MAX_DETAILS = 25  # lock tables in report.md


@dataclass
class RehearsalResult:
    findings: list[Finding]
    migrations: list[RehearsedMigration]
    base_reused: bool
    base_seconds: float
    base_files: int = 0
    server: str = ""  # "embedded PostgreSQL under ..." or host:port (never a password)
    server_version: str = ""
    total_seconds: float = 0.0
    database: str = ""  # the throwaway database (dropped when rehearse returns)
    base_key: str = ""  # key of the cached base state (BaseStore.forget(key) drops it)
    blocking_severity: str = ERROR  # config.blocking_severity: which findings fail a JUnit case

    title = "Rehearsal"

    def markdown(self) -> str:
        """The section body (the report adds the "Rehearsal" heading): what the run was, a table
        with one row per new migration, the locks on existing tables over time (a Mermaid gantt
        chart and its table, ``gantt``), and the lock table of every migration worth a look
        (failed, write-blocking, rewriting, non-transactional; all of them when there are few)."""
        n, took = self.base_files, f"{self.base_seconds:.2f} s"
        if n == 0:
            base = "on an empty database"
        elif self.base_reused:
            base = f"after {n} base migration(s), copied from a cached template in {took}"
        else:
            base = f"after {n} base migration(s), applied in {took} (now cached)"
        lines = [
            f"{len(self.migrations)} new migration(s) rehearsed on PostgreSQL {self.server_version} "
            f"({self.server}) {base}; total {self.total_seconds:.2f} s."
            if self.server_version
            else "Nothing was rehearsed: "
            + ("the first new migration has syntax errors." if self.migrations else "no new migration."),
            "",
        ]
        if not self.migrations:
            return lines[0] + "\n"
        ordered = self.migrations  # application order; past the cap, the notable ones are kept
        keep = set(sorted(range(len(ordered)), key=lambda i: not ordered[i].notable)[:MARKDOWN_MAX_ROWS])
        shown = [m for i, m in enumerate(ordered) if i in keep]
        lines += ["| migration | result | time | what it does to existing tables |", "|---|---|---:|---|"]
        for m in shown:
            lines.append(f"| `{m.file}` | {_result_cell(m)} | {_took(m)} | {_md(m.effect())} |")
        if len(ordered) > len(shown):
            more = len(ordered) - len(shown)
            lines.append(f"| … | {more} more, none failed or blocking writes | | (in report.json) |")
        lines.append("")
        lines += _data_probe_markdown(self.migrations)
        lines += gantt.markdown(self.migrations)
        detailed = [m for m in self.migrations if m.locks and (m.notable or len(self.migrations) <= 5)]
        for m in detailed[:MARKDOWN_MAX_DETAILS]:
            kind = "transactional" if m.transactional else "non-transactional"
            lines += [f"#### `{m.file}` — {m.status}, {_took(m)}, {kind}", "", f"**{_md(m.headline())}**", ""]
            if m.note and m.status == "applied":
                lines += [f"_{_md(m.note)}_", ""]
            lines += [
                "| relation | kind | strongest lock | existed before | rewritten | |",
                "|---|---|---|---|---|---|",
            ]
            for li in m.locks:
                warn = lock_effect(li.mode) if li.flagged else ""
                existed = "yes" if li.existed_before else "no (new)"
                rewritten = "yes" if li.relation in m.rewritten else ""
                cells = (f"`{li.relation}`", li.kind, li.mode, existed, rewritten, warn)
                lines.append("| " + " | ".join(_md(c) for c in cells) + " |")
            lines.append("")
        if len(detailed) > MARKDOWN_MAX_DETAILS:
            more = len(detailed) - MARKDOWN_MAX_DETAILS
            lines += [f"Lock tables of {more} more migration(s) are in report.json.", ""]
        return "\n".join(lines).rstrip() + "\n"

    def to_json(self) -> JSONObject:
        return {
            "base_reused": self.base_reused,
            "base_seconds": round(self.base_seconds, 3),
            "base_files": self.base_files,
            "server": self.server,
            "server_version": self.server_version,
            "total_seconds": round(self.total_seconds, 3),
            "base_template": base_template_name(self.base_key) if self.base_key else None,
            "migrations": [m.to_dict() for m in self.migrations],
            "findings": [f.to_dict() for f in self.findings],
        }

    def junit_suite(self) -> tuple[str, list[JUnitCase]]:
        """Suite "rehearsal": a case per new migration.  Like every other suite, a case fails only when
        one of its findings blocks the build (a failed migration; flagged locks and rewrites too
        when ``blocking_severity = "warning"``), so a passing build never shows failed cases;
        warnings and the lock summary are the case's output."""
        from validator.reports import JUnitCase

        cases = []
        for m in self.migrations:
            mine = sorted((f for f in self.findings if f.file == m.file), key=lambda f: f.severity != ERROR)
            blocking = blocking_findings(mine, self.blocking_severity)
            message = text = None
            output = _junit_output(m) if m.notable else None
            if mine and not blocking:
                warnings = "\n".join(f"{f.severity}: {f.location} {f.rule}: {f.message}" for f in mine)
                output = f"{output}\n\n{warnings}" if output else warnings
            if blocking:
                mine = blocking
                message = f"{mine[0].location} {mine[0].rule}: {mine[0].message}"
                if len(mine) > 1:
                    message += f" (and {len(mine) - 1} more)"
                text = "\n\n".join(
                    f"{f.severity}: {f.location} {f.rule}: {f.message}\nhelp: {f.help}\ndocs: {f.docs}"
                    for f in mine
                )
            cases.append(
                JUnitCase(
                    name=m.file,
                    classname=f"schemagate.{FAMILY}",
                    failure_message=message,
                    failure_text=text,
                    time_s=(m.duration_ms or 0) / 1000,
                    # quiet cases carry no output, so the report may fold them (CodeBuild: 500 cases)
                    system_out=output,
                )
            )
        for f in self.findings:  # a failure in the base history is about a file that is not new
            if f.rule == RULE_BASE_FAILED:
                cases.append(
                    JUnitCase(
                        name=f.file or "(base history)",
                        classname=f"schemagate.{FAMILY}",
                        failure_message=f"{f.location} {f.rule}: {f.message}",
                        failure_text=f"{f.message}\nhelp: {f.help}",
                    )
                )
        return FAMILY, cases


MARKDOWN_MAX_PROBES = 50  # lines of the data probe's list in report.md; report.json has all


def _data_probe_markdown(migrations: list[RehearsedMigration]) -> list[str]:
    """What the data probe saw: each data-dependent statement, failing ones first."""
    probed = [(m.file, p) for m in migrations for p in m.data_probes]
    if not probed:
        return []
    order = {"fails": 0, "not probed": 1, "holds": 2}
    shown = sorted(probed, key=lambda fp: order.get(fp[1].status, 3))[:MARKDOWN_MAX_PROBES]
    fails = sum(p.status == "fails" for _, p in probed)
    lines = [
        f"**Data probe**: {len(probed)} data-dependent statement(s) run on a rolled-back copy holding rows "
        f"that break them, {fails} failed:",
        "",
    ]
    for file, p in shown:
        mark = "❌ " if p.status == "fails" else ""
        lines.append(f"- {mark}`{file}` line {p.line} ({p.kind} on `{p.table}`): {_md(p.sentence())}")
    if len(probed) > len(shown):
        lines.append(f"- … {len(probed) - len(shown)} more in report.json")
    lines.append("")
    return lines


def _result_cell(m: RehearsedMigration) -> str:
    if m.status == "failed":
        return "❌ failed"
    if m.status != "applied":
        return "not rehearsed"
    mark = "⚠️ " if m.flagged or m.rewritten else ""
    return f"{mark}applied" + ("" if m.transactional else " (non-transactional)")


def _took(m: RehearsedMigration) -> str:
    return f"{m.duration_ms} ms" if m.duration_ms is not None else "–"


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _junit_output(m: RehearsedMigration) -> str:
    lines = [m.headline()]
    if m.note:
        lines.append(m.note)
    for li in m.locks:
        new = "" if li.existed_before else " (created by this migration)"
        rewritten = ", rewritten" if li.relation in m.rewritten else ""
        lines.append(f"  {li.mode:<22} {li.relation} ({li.kind}{new}{rewritten})")
    return "\n".join(lines)
