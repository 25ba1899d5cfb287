"""The rehearsal's findings: a migration that fails (error), a write-blocking lock on a table that
existed before or a rewrite (warnings, unless ``[tool.schemagate.rules]`` says otherwise)."""

from __future__ import annotations

from executor.errors import SchemagateError
from validator.findings import ERROR, WARNING, Finding, docs_link
from validator.rehearsal.locks import lock_effect
from validator.rehearsal.outcome import DataProbeResult, FailureDetail, RehearsedMigration

FAMILY = "rehearsal"
RULE_FAILED = "rehearsal-failed"
RULE_BASE_FAILED = "rehearsal-base-failed"
RULE_BLOCKING_LOCK = "rehearsal-blocking-lock"
RULE_REWRITE = "rehearsal-table-rewrite"
RULE_DATA_DEPENDENT = "rehearsal-data-dependent"

_DATA_REMEDY = {
    "unique": "look for duplicates in production first (SELECT <key>, count(*) ... GROUP BY <key> "
    "HAVING count(*) > 1) and clean them up in this migration or an earlier one, before the index",
    "not-null": "backfill first (UPDATE ... SET <column> = ... WHERE <column> IS NULL, in batches on a big "
    "table), or add CHECK (<column> IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL",
    "check": "fix the rows that break it first, or add it NOT VALID (new rows are checked at once) and "
    "VALIDATE CONSTRAINT after the clean-up",
    "foreign-key": "delete or repair the orphan rows first, or add it NOT VALID and VALIDATE CONSTRAINT "
    "after the clean-up",
    "validate": "fix the rows that break the constraint before validating it (the NOT VALID constraint "
    "already keeps new rows right)",
    "type-change": "find the values the new type refuses first and fix them, or change the type through "
    "a new column filled in batches",
}


def failure_finding(
    err: SchemagateError, file: str, *, rule: str, base: bool
) -> tuple[Finding, FailureDetail]:
    """An error finding at the file and line PostgreSQL (or the executor) named."""
    ctx = err.context
    sqlstate = ctx.get("sqlstate")
    if sqlstate:
        message = f"{ctx.get('message') or err.message} (SQLSTATE {sqlstate})"
        for label in ("detail", "hint"):
            if ctx.get(label):
                message += f"; {label}: {' '.join(str(ctx[label]).split())}"
        if err.line is not None and err.column is None and ctx.get("where"):
            message += f"; context: {' '.join(str(ctx['where']).split())}"
    else:  # a refusal of the executor (e.g. BEGIN/COMMIT in the file), or a connection failure
        message = err.message
    detail: FailureDetail = {
        "sqlstate": sqlstate,
        "message": ctx.get("message") or err.message,
        "line": err.line,
        "column": err.column,
        "category": err.category.value,
    }
    if base:
        message += " (while applying the existing history to an empty database)"
        help_text = (
            "the history on the base ref does not apply to an empty PostgreSQL, so the new migrations could "
            "not be rehearsed: make it reproducible (create the roles/extensions it relies on in a migration)"
        )
    else:
        help_text = (
            "this migration fails on a database built from every earlier migration, so it would fail in "
            "production too: fix it at this line"
        )
        if err.remedy and not sqlstate:
            help_text = err.remedy
    finding = Finding(
        rule=rule,
        family=FAMILY,
        severity=ERROR,
        file=err.file or file or None,
        line=err.line,
        column=err.column,
        message=message,
        help=help_text,
        docs=docs_link("rehearsal.md", rule),
    )
    return finding, detail


def lock_findings(m: RehearsedMigration) -> list[Finding]:
    """A warning per table the migration rewrote, and per other write-blocking lock on a table that
    existed before it (a rewritten table's lock is part of its rewrite warning)."""
    findings = []
    flagged = {li.relation: li for li in m.flagged}
    for rel in m.rewritten:
        lock = flagged.pop(rel, None)
        mode = lock.mode if lock else "ACCESS EXCLUSIVE"
        findings.append(
            _whole_file_warning(
                RULE_REWRITE,
                m,
                f"{m.file} takes {mode} on {rel} and rewrites it: reads and writes wait for a full "
                f"copy of the table and its indexes (took {m.duration_ms} ms on the rehearsal data)",
                "avoid the rewrite (add the column without a volatile default and backfill in batches; "
                "change types compatibly), or schedule it in a maintenance window",
            )
        )
    for li in flagged.values():
        findings.append(
            _whole_file_warning(
                RULE_BLOCKING_LOCK,
                m,
                f"{m.file} takes {li.mode} on {li.relation}, which existed before: it "
                f"{lock_effect(li.mode)} on the table until the migration "
                + ("commits" if m.transactional else "ends")
                + (f" ({m.duration_ms} ms on the rehearsal data)" if m.duration_ms is not None else ""),
                "use the non-blocking form where there is one (CREATE INDEX CONCURRENTLY, "
                "ADD CONSTRAINT ... NOT VALID then VALIDATE CONSTRAINT), keep the migration short, "
                "and rely on lock_timeout",
            )
        )
    return findings


def data_probe_findings(file: str, probes: list[DataProbeResult]) -> list[Finding]:
    """A warning per data-dependent statement that failed on the probe's rows."""
    return [
        Finding(
            rule=RULE_DATA_DEPENDENT,
            family=FAMILY,
            severity=WARNING,
            file=file,
            line=p.line,
            column=None,
            message=p.sentence() + " (on a copy of the rehearsal database holding rows like production's)",
            help=_DATA_REMEDY.get(p.kind, "fix the rows first"),
            docs=docs_link("rehearsal.md", RULE_DATA_DEPENDENT),
        )
        for p in probes
        if p.status == "fails"
    ]


def _whole_file_warning(rule: str, m: RehearsedMigration, message: str, help_text: str) -> Finding:
    return Finding(
        rule=rule,
        family=FAMILY,
        severity=WARNING,
        file=m.file,
        line=None,
        column=None,
        message=message,
        help=help_text,
        docs=docs_link("rehearsal.md", rule),
    )


def with_configured_levels(findings: list[Finding], rules: dict[str, str]) -> list[Finding]:
    """``[tool.schemagate.rules]`` applies to the rehearsal's rules too: "off", "warning", "error"."""
    out = []
    for f in findings:
        level = rules.get(f.rule)
        if level == "off":
            continue
        out.append(f.with_severity(level) if level in (ERROR, WARNING) else f)
    return out
