"""Every reporter renders the same data: one list of findings (docs/architecture.md).

``write_reports(data, DIR)`` writes

* ``junit.xml`` -- for a CodeBuild report group of type JUNITXML.  One ``<testsuite>`` per check
  family that ran (naming, order, syntax, lint, safety, rehearsal, integrity), one ``<testcase>``
  per file and family (name = the file, classname = ``schemagate.<family>``).  A case *fails*
  when the file has a *blocking* finding of that family (severity ``error``, or also ``warning``
  when ``blocking_severity = "warning"``): ``<failure message="file:line:col rule: message">``
  with every blocking finding, its help and docs link in the body.  Non-blocking warnings keep the
  case passing (the build passes, so the report must too) and are listed in the case's
  ``<system-out>``; they are always in report.md and report.json.  A CodeBuild report holds at
  most 500 test cases, so when there would be more, each suite's passing cases without output are
  folded into one case ("N files without findings"); failing and warning cases are never folded.
  A finding about the whole run (no file) is a case named ``(all files)``.  A section (e.g. the
  rehearsal) may supply its own suite; it then replaces the one built from findings of that name.
* ``report.md`` -- ready to paste as a PR comment: verdict, counts per family, the findings
  table (location, rule, message, help), every inline suppression with its reason (so the
  approver sees what was waved through), the bundle hash, then each section's own Markdown.
* ``report.json`` -- ``{"summary": {"files", "errors", "warnings", "judged", "accepted_history",
  "down_scripts"}, "findings": [...]}`` plus ``passed``, ``blocking_severity``, ``checks``,
  ``suppressions``, ``bundle``, ``sections``, ``timings`` and ``tool``.

Lint, the safety rules and the rehearsal judge only some files (``ReportData.judged``: what changed
since the base ref, or what lies above ``accepted_history``); their JUnit suites have a case per
judged file and one passing case that counts the accepted history, and the console summary and
report.md say how many files were judged.

The console reporter (``console_lines``) prints each finding (``error: file:line:col rule: message``,
the severity in words, then its help and docs link), a summary and where the reports are;
``schemagate.console`` adds colour where the terminal has it.  ``render_github`` writes GitHub
Actions workflow commands (annotations), ``validator.sarif`` the SARIF log; both name the files
relative to the repository root (``RepositoryPaths``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from validator.findings import ERROR, FAMILIES, WARNING, Finding, JSONObject, count_by_severity, is_blocking

if TYPE_CHECKING:
    from validator.safety.suppressions import Suppression


JUNIT_FILE = "junit.xml"
MARKDOWN_FILE = "report.md"
JSON_FILE = "report.json"
CODEBUILD_MAX_CASES = 500  # "A test report can have a maximum of 500 test case results"
MARKDOWN_MAX_ROWS = 200  # findings listed in report.md; the rest are in report.json
MARKDOWN_MAX_CHARS = 60_000  # GitHub refuses comments over 65,536 characters
WHOLE_RUN = "(all files)"
# the review checks: their suites have a case per judged file only (the rehearsal builds its own)
JUDGED_FAMILIES = ("lint", "safety")


@dataclass(frozen=True)
class JUnitCase:
    name: str
    classname: str
    failure_message: str | None = None
    failure_text: str | None = None
    time_s: float = 0.0
    system_out: str | None = None


@runtime_checkable
class ReportSection(Protocol):
    """A part of the report owned by another check (the rehearsal implements it)."""

    title: str

    def markdown(self) -> str: ...

    def to_json(self) -> JSONObject: ...

    def junit_suite(self) -> tuple[str, list[JUnitCase]]: ...


@dataclass
class BundleInfo:
    path: str
    bundle_sha256: str
    migrations: int
    signed_with: str | None = None  # KMS key id when the manifest carries a signature

    def to_json(self) -> JSONObject:
        return dataclasses.asdict(self)


@dataclass
class ReportData:
    files: list[str]  # every migration file checked, relative to the migrations directory
    findings: list[Finding]
    checks: list[str] = field(default_factory=lambda: ["naming", "order", "syntax", "integrity"])
    suppressions: list[Suppression] = field(default_factory=list)
    sections: list[ReportSection] = field(default_factory=list)
    blocking_severity: str = ERROR
    bundle: BundleInfo | None = None
    bundle_note: str | None = None  # why no bundle was written, when one was asked for
    timings: dict[str, float] = field(default_factory=dict)  # seconds per check family
    migrations_dir: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # one-line remarks for the console (e.g. lint cache use)
    # what the review checks (lint, safety, rehearsal) judged; None: every file
    judged: list[str] | None = None
    accepted_history: list[str] = field(default_factory=list)  # checked structurally only
    down_scripts: list[str] = field(default_factory=list)  # parsed and bundled, never judged
    accepted_basis: str | None = None  # "unchanged since origin/main", "accepted_history = 040"
    # accepted history with BEGIN / COMMIT of its own, bundled to run as written (own_transactions)
    as_written: list[str] = field(default_factory=list)

    def judged_files(self) -> list[str]:
        return list(self.files) if self.judged is None else list(self.judged)

    def summary(self) -> dict[str, int]:
        counts = count_by_severity(self.findings)
        return {
            "files": len(self.files),
            "errors": counts[ERROR],
            "warnings": counts[WARNING],
            "judged": len(self.judged_files()),
            "accepted_history": len(self.accepted_history),
            "down_scripts": len(self.down_scripts),
        }

    def judged_clause(self) -> str | None:
        """How many files were judged, when not all of them were: '1 judged, 40 accepted history
        (unchanged since main)'."""
        if not self.accepted_history and not self.down_scripts:
            return None
        text = f"{len(self.judged_files())} judged"
        if self.accepted_history:
            basis = f" ({self.accepted_basis})" if self.accepted_basis else ""
            text += f", {len(self.accepted_history)} accepted history{basis}"
        if self.down_scripts:
            text += f", {_count(len(self.down_scripts), 'down script')} not judged"
        return text

    def as_written_note(self) -> str | None:
        """The files of ``as_written`` in one line: what a database that lacks them does with them."""
        files = self.as_written
        if not files:
            return None
        one = len(files) == 1
        shown = ", ".join(files[:3]) + (", ..." if len(files) > 3 else "")
        return (
            f"{_count(len(files), 'file')} of accepted history with BEGIN and COMMIT of "
            f"{'its' if one else 'their'} own ({shown}): a database that lacks "
            f"{'it runs it' if one else 'them runs them'} as written, statement by statement, not in one "
            "transaction of schemagate's"
        )

    def is_blocking(self, finding: Finding) -> bool:
        return is_blocking(finding, self.blocking_severity)

    @property
    def blocking(self) -> list[Finding]:
        return [f for f in self.findings if self.is_blocking(f)]

    @property
    def passed(self) -> bool:
        return not self.blocking

    def sorted_findings(self) -> list[Finding]:
        return sorted(self.findings, key=lambda f: (0 if f.severity == ERROR else 1, *f.sort_key()))


def tool_version() -> str:
    try:
        return metadata.version("schemagate")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def finding_line(f: Finding) -> str:
    """``file:line:col rule message`` -- the one-line form used by the console and JUnit."""
    return f"{f.location} {f.rule} {f.message}"


def suppression_dict(s: object) -> JSONObject:
    """A suppression as report.json writes it: ``Suppression.to_dict()`` and the rules it actually
    silenced (``used_rules``, a sorted list), which the Markdown's destructive-changes section reads."""
    to_dict = getattr(s, "to_dict", None)
    if callable(to_dict):
        data = dict(to_dict())
        data["used_rules"] = sorted(getattr(s, "used_rules", ()) or ())
    elif dataclasses.is_dataclass(s) and not isinstance(s, type):
        data = dataclasses.asdict(s)
    elif isinstance(s, dict):
        data = dict(s)
    else:
        data = {k: getattr(s, k, None) for k in ("file", "line", "rules", "reason", "used")}
    rules = data.get("rules")
    if rules is not None and not isinstance(rules, list):
        data["rules"] = sorted(rules) if isinstance(rules, set | frozenset) else list(rules)
    return data


# ---------------------------------------------------------------------------------------------
# JUnit


def _case_for(family: str, name: str, findings: list[Finding], data: ReportData) -> JUnitCase:
    blocking = [f for f in findings if data.is_blocking(f)]
    other = [f for f in findings if not data.is_blocking(f)]
    message = text = out = None
    if blocking:
        first = blocking[0]
        message = f"{first.location} {first.rule}: {first.message}"
        if len(blocking) > 1:
            message += f" (and {len(blocking) - 1} more)"
        text = "\n\n".join(_finding_block(f) for f in blocking)
    if other:
        out = "\n\n".join(_finding_block(f) for f in other)
    return JUnitCase(
        name=name,
        classname=f"schemagate.{family}",
        failure_message=message,
        failure_text=text,
        system_out=out,
    )


def _not_judged_cases(family: str, data: ReportData) -> list[JUnitCase]:
    """Passing cases that say how many files the family did not judge, and why (with output, so
    that a report folded to CodeBuild's case limit keeps them)."""
    cases = []
    if data.accepted_history:
        basis = f" ({data.accepted_basis})" if data.accepted_basis else ""
        cases.append(
            JUnitCase(
                name=f"{len(data.accepted_history)} files of accepted history{basis}, not judged",
                classname=f"schemagate.{family}",
                system_out="accepted history is checked for naming, order, syntax and integrity only:\n"
                + "\n".join(data.accepted_history),
            )
        )
    if data.down_scripts:
        cases.append(
            JUnitCase(
                name=f"{_count(len(data.down_scripts), 'down script')}, not judged",
                classname=f"schemagate.{family}",
                system_out="down scripts are parsed and bundled; they run only on `schemagate undo`:\n"
                + "\n".join(data.down_scripts),
            )
        )
    return cases


def _finding_block(f: Finding) -> str:
    lines = [f"{f.severity}: {f.location} {f.rule}: {f.message}"]
    if f.help:
        lines.append(f"help: {f.help}")
    if f.docs:
        lines.append(f"docs: {f.docs}")
    return "\n".join(lines)


def junit_suites(
    data: ReportData, max_cases: int = CODEBUILD_MAX_CASES
) -> list[tuple[str, list[JUnitCase], float]]:
    """(suite name, cases, seconds) for every check that ran, in FAMILIES order."""
    by_section: dict[str, list[JUnitCase]] = {}
    for section in data.sections:
        name, cases = section.junit_suite()
        by_section[name] = list(cases)
    families = [f for f in FAMILIES if f in data.checks or f in by_section]
    families += [n for n in by_section if n not in families]
    # findings of a family that was not listed as run still get a suite: nothing is hidden
    families += [f for f in FAMILIES if f not in families and any(x.family == f for x in data.findings)]
    suites: list[tuple[str, list[JUnitCase], float]] = []
    for family in families:
        if family in by_section:
            cases = by_section[family]
        else:
            names = data.judged_files() if family in JUDGED_FAMILIES else data.files
            per_file: dict[str, list[Finding]] = {name: [] for name in names}
            for f in data.findings:
                if f.family == family:
                    per_file.setdefault(f.file or WHOLE_RUN, []).append(f)
            cases = [
                _case_for(family, name, sorted(fs, key=Finding.sort_key), data)
                for name, fs in per_file.items()
            ]
            if family in JUDGED_FAMILIES:
                cases += _not_judged_cases(family, data)
        suites.append((family, cases, float(data.timings.get(family, 0.0))))
    total = sum(len(c) for _, c, _ in suites)
    if total > max_cases:
        folded = []
        for name, cases, seconds in suites:
            quiet = [c for c in cases if c.failure_message is None and c.system_out is None]
            loud = [c for c in cases if c.failure_message is not None or c.system_out is not None]
            if len(quiet) > 1:
                loud.append(
                    JUnitCase(
                        name=f"{len(quiet)} files without findings",
                        classname=f"schemagate.{name}",
                        time_s=sum(c.time_s for c in quiet),
                    )
                )
            else:
                loud.extend(quiet)
            folded.append((name, loud, seconds))
        suites = folded
    return suites


# characters XML 1.0 cannot carry at all (a finding may quote a file's stray control characters)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def render_junit(data: ReportData, max_cases: int = CODEBUILD_MAX_CASES) -> bytes:
    # the JUnit schema's timestamp: ISO 8601 without a zone (it is UTC)
    timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    root = ET.Element("testsuites", name="schemagate validate")
    all_tests = all_failures = 0
    all_time = 0.0
    for name, cases, seconds in junit_suites(data, max_cases):
        failures = sum(1 for c in cases if c.failure_message is not None)
        case_time = sum(c.time_s for c in cases)
        suite_time = seconds or case_time
        per_case = (suite_time / len(cases)) if cases and not case_time else None
        suite = ET.SubElement(
            root,
            "testsuite",
            name=name,
            tests=str(len(cases)),
            failures=str(failures),
            errors="0",
            skipped="0",
            time=f"{suite_time:.3f}",
            timestamp=timestamp,
        )
        for case in cases:
            el = ET.SubElement(
                suite,
                "testcase",
                name=_xml(case.name),
                classname=_xml(case.classname),
                time=f"{per_case if per_case is not None else case.time_s:.3f}",
            )
            if case.failure_message is not None:
                failure = ET.SubElement(el, "failure", message=_xml(case.failure_message), type=name)
                failure.text = _xml(case.failure_text or case.failure_message)
            if case.system_out:
                ET.SubElement(el, "system-out").text = _xml(case.system_out)
        all_tests += len(cases)
        all_failures += failures
        all_time += suite_time
    root.set("tests", str(all_tests))
    root.set("failures", str(all_failures))
    root.set("errors", "0")
    root.set("time", f"{all_time:.3f}")
    ET.indent(root)
    document: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return document + b"\n"


# ---------------------------------------------------------------------------------------------
# JSON


def render_json(data: ReportData) -> JSONObject:
    return {
        "summary": data.summary(),
        "findings": [f.to_dict() for f in sorted(data.findings, key=Finding.sort_key)],
        "passed": data.passed,
        "blocking_severity": data.blocking_severity,
        "checks": [f for f in FAMILIES if f in data.checks],
        "suppressions": [suppression_dict(s) for s in data.suppressions],
        "bundle": data.bundle.to_json() if data.bundle else None,
        "bundle_note": data.bundle_note,
        "sections": [{"title": s.title, "data": s.to_json()} for s in data.sections],
        "as_written": list(data.as_written),
        "source": data.source,
        "timings": {k: round(v, 3) for k, v in data.timings.items()},
        "tool": {"name": "schemagate", "version": tool_version()},
    }


# ---------------------------------------------------------------------------------------------
# Markdown


def _cell(text: object) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


SEVERITY_MARK = {ERROR: "❌ error", WARNING: "⚠️ warning"}


def _destructive_changes(data: ReportData) -> list[str]:
    """Statements that destroy data (dropped tables, columns, schemas, TRUNCATE ... CASCADE), found or
    waived by a suppression, in one table at the top: the reviewer sees them first."""
    if not any(f.family == "safety" for f in data.findings) and not data.suppressions:
        return []
    from validator.safety import DESTRUCTIVE_RULES  # already imported when safety rules ran

    rows = [
        (f"`{_cell(f.location)}`", f"`{f.rule}`", _cell(f.message), SEVERITY_MARK[f.severity])
        for f in sorted(data.findings, key=Finding.sort_key)
        if f.family == "safety" and f.rule in DESTRUCTIVE_RULES
    ]
    for sup in data.suppressions:
        d = suppression_dict(sup)
        for rule in sorted(set(d.get("used_rules") or ()) & DESTRUCTIVE_RULES):
            loc = f"{d.get('file') or '-'}" + (f":{d['line']}" if d.get("line") else "")
            rows.append((f"`{_cell(loc)}`", f"`{rule}`", "(suppressed)", f"waived: {_cell(d.get('reason'))}"))
    if not rows:
        return []
    return [
        f"### Destructive changes ({len(rows)}): review these first",
        "",
        "These statements destroy data that no rollback of the application brings back.",
        "",
        "| location | rule | what | status |",
        "|---|---|---|---|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def render_markdown(data: ReportData) -> str:
    s = data.summary()
    verdict = "✅ passed" if data.passed else "❌ failed"
    out = [
        f"## schemagate validate: {verdict}",
        "",
        f"**{s['files']}** migration files checked: **{s['errors']}** errors, **{s['warnings']}** warnings"
        + (' (warnings block: `blocking_severity = "warning"`)' if data.blocking_severity == WARNING else "")
        + ".",
        "",
    ]
    if data.judged_clause() is not None:
        basis = f" ({data.accepted_basis})" if data.accepted_basis else ""
        judged = (
            f"**{s['judged']}** judged by lint, safety rules and rehearsal; **{s['accepted_history']}** "
            f"accepted history{basis}, checked for naming, order, syntax and integrity only"
        )
        if data.down_scripts:
            judged += f"; **{s['down_scripts']}** down scripts, parsed and bundled but not judged"
        out += [judged + ".", ""]
    note = data.as_written_note()
    if note:
        out += [note[0].upper() + note[1:] + ".", ""]
    if data.source:
        described = ", ".join(
            f"{k} `{v}`" for k, v in data.source.items() if k in ("repository", "branch", "commit") and v
        )
        if described:
            out += [f"Source: {described}.", ""]
    checks = [f for f in FAMILIES if f in data.checks or any(x.family == f for x in data.findings)]
    out += ["| check | errors | warnings |", "|---|---:|---:|"]
    for family in checks:
        fam = [f for f in data.findings if f.family == family]
        counts = count_by_severity(fam)
        out.append(f"| {family} | {counts[ERROR]} | {counts[WARNING]} |")
    out.append("")

    out += _destructive_changes(data)
    findings = data.sorted_findings()
    out += [f"### Findings ({len(findings)})", ""]
    if not findings:
        out += ["No findings.", ""]
    else:
        out += ["| severity | location | rule | message | what to do |", "|---|---|---|---|---|"]
        for f in findings[:MARKDOWN_MAX_ROWS]:
            rule = f"[`{f.rule}`]({f.docs})" if f.docs else f"`{f.rule}`"
            where = f"`{_cell(f.location)}`"
            cells = (SEVERITY_MARK[f.severity], where, rule, _cell(f.message), _cell(f.help))
            out.append("| " + " | ".join(cells) + " |")
        if len(findings) > MARKDOWN_MAX_ROWS:
            out.append(
                f"\n… and {len(findings) - MARKDOWN_MAX_ROWS} more findings: see report.json or junit.xml."
            )
        out.append("")

    if data.suppressions:
        out += [
            f"### Suppressions ({len(data.suppressions)})",
            "",
            "Inline ignores in these migrations; each one waves a rule through, for the reason given.",
            "",
            "| location | rules | reason | used |",
            "|---|---|---|---|",
        ]
        for sup in data.suppressions:
            d = suppression_dict(sup)
            loc = f"{d.get('file') or '-'}" + (f":{d['line']}" if d.get("line") else "")
            rules = ", ".join(f"`{r}`" for r in d.get("rules") or [])
            used = "yes" if d.get("used") else "**no: suppresses nothing**"
            out.append(
                f"| `{_cell(loc)}` | {rules} | {_cell(d.get('reason') or '(no reason given)')} | {used} |"
            )
        out.append("")

    out += ["### Bundle", ""]
    if data.bundle is not None:
        b = data.bundle
        signed = f", signed with KMS key `{b.signed_with}`" if b.signed_with else ""
        out += [
            f"`bundle_sha256`: `{b.bundle_sha256}`",
            "",
            f"{b.migrations} migrations written to `{b.path}`{signed}. The approver compares this "
            "hash with the one shown at the approval gate.",
            "",
        ]
    else:
        out += [data.bundle_note or "No bundle was requested (`--bundle DIR`).", ""]

    for section in data.sections:
        body = section.markdown().strip()
        heading = [] if body.startswith("#") else [f"### {section.title}", ""]
        out += [*heading, body, ""]
    text = "\n".join(out).rstrip() + "\n"
    if len(text) > MARKDOWN_MAX_CHARS:
        text = (
            text[:MARKDOWN_MAX_CHARS].rsplit("\n", 1)[0]
            + "\n\n… (truncated: the full report is report.json)\n"
        )
    return text


# ---------------------------------------------------------------------------------------------
# console


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def console_lines(
    data: ReportData, report_paths: dict[str, Path] | None = None, *, relative_to: Path | None = None
) -> list[tuple[str, str | None]]:
    """(text, severity or None) lines for the terminal: each finding with its severity in words, its
    help and docs link under it; a summary; where the reports are.  ``relative_to``: show the files
    relative to this directory (the working directory), so that a terminal or editor opens them."""
    lines: list[tuple[str, str | None]] = []
    where = _console_prefix(data, relative_to)
    for f in sorted(data.findings, key=Finding.sort_key):
        word = f.severity if not (f.severity == WARNING and data.is_blocking(f)) else "warning (blocking)"
        location = (where + f.location) if f.file else f.location
        lines.append((f"{word}: {location} {f.rule}: {f.message}", f.severity))
        if f.help:
            lines.append((f"  help: {f.help}", None))
        if f.docs:
            lines.append((f"  docs: {f.docs}", None))
    lines.append((summary_line(data), ERROR if not data.passed else "ok"))
    lines += [(note, None) for note in data.notes]
    as_written = data.as_written_note()
    if as_written:
        lines.append((as_written, None))
    unused = [d for d in map(suppression_dict, data.suppressions) if not d.get("used")]
    if data.suppressions:
        lines.append(
            (f"{len(data.suppressions)} suppressions ({len(unused)} unused), listed in report.md", None)
        )
    if data.bundle is not None:
        lines.append((f"bundle: {data.bundle.path} (bundle_sha256 {data.bundle.bundle_sha256})", None))
    elif data.bundle_note:
        lines.append((data.bundle_note, ERROR if not data.passed else None))
    if report_paths:
        lines.append(("reports: " + ", ".join(str(p) for p in report_paths.values()), None))
    return lines


def summary_line(data: ReportData) -> str:
    """``10 files checked (naming, ...): 0 errors, 0 warnings -- passed``."""
    s = data.summary()
    verdict = "passed" if data.passed else "failed"
    judged = data.judged_clause()
    return (
        f"{s['files']} files checked ({', '.join(c for c in FAMILIES if c in data.checks)})"
        + (f", {judged}; " if judged else ": ")
        + f"{_count(s['errors'], 'error')}, {_count(s['warnings'], 'warning')} -- {verdict}"
    )


def _console_prefix(data: ReportData, relative_to: Path | None) -> str:
    if relative_to is None or data.migrations_dir is None:
        return ""
    try:
        rel = Path(os.path.relpath(Path(data.migrations_dir).resolve(), Path(relative_to).resolve()))
    except ValueError:  # another drive (Windows)
        return ""
    return "" if str(rel) == "." else f"{rel.as_posix()}/"


# ---------------------------------------------------------------------------------------------
# paths relative to the repository (SARIF, GitHub annotations)


def repository_root(start: Path) -> Path | None:
    """The top of the git work tree holding ``start`` (the nearest directory with a ``.git``), or None."""
    start = Path(start).resolve()
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


@dataclass(frozen=True)
class RepositoryPaths:
    """Maps a finding to a path relative to the repository root, as code scanning and workflow
    annotations want it: ``db/migrations/V2__x.sql`` for ``V2__x.sql`` under ``db/migrations``.

    A finding about the whole run is placed on the project's configuration file (``config_file``:
    pyproject.toml or schemagate.toml, where the gate's configuration lives), else on the migrations
    directory.  ``root``: the repository root, else the project root (a source zip has no ``.git``).
    """

    root: Path
    migrations_dir: Path
    config_file: Path | None = None

    @classmethod
    def for_project(
        cls, migrations_dir: Path, project_root: Path, config_file: Path | None
    ) -> RepositoryPaths:
        migrations_dir = Path(migrations_dir).resolve()
        root = repository_root(migrations_dir) or Path(project_root).resolve()
        return cls(root=root, migrations_dir=migrations_dir, config_file=config_file)

    def relative(self, path: Path) -> str:
        path = Path(path).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return Path(os.path.relpath(path, self.root)).as_posix()

    def path_of(self, finding: Finding) -> str:
        if finding.file:
            return self.relative(self.migrations_dir / finding.file)
        if self.config_file is not None:
            return self.relative(self.config_file)
        return self.relative(self.migrations_dir) + "/"


# ---------------------------------------------------------------------------------------------
# GitHub Actions workflow commands


def _escape_data(text: str) -> str:
    """A workflow command's message, escaped the way the Actions runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(data: ReportData, paths: RepositoryPaths) -> str:
    """``::error file=...,line=...,col=...,title=<rule>::<message>`` (``::warning`` for findings that
    do not block) per finding, the help and docs link on the message's next lines, then the summary
    as a plain line.  GitHub shows at most 10 errors and 10 warnings of a step on the pull request
    (50 per job); every finding is still in the log, and the SARIF upload has them all."""
    out = []
    for f in data.sorted_findings():
        command = "error" if data.is_blocking(f) else "warning"
        props = []
        if f.file is not None:
            props.append(f"file={_escape_property(paths.path_of(f))}")
            if f.line is not None:
                props.append(f"line={f.line}")
                if f.column is not None:
                    props.append(f"col={f.column}")
        props.append(f"title={_escape_property(f.rule)}")
        message = f.message
        if f.help:
            message += f"\nhelp: {f.help}"
        if f.docs:
            message += f"\ndocs: {f.docs}"
        out.append(f"::{command} {','.join(props)}::{_escape_data(message)}")
    out.append(f"schemagate: {summary_line(data)}")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------


def write_reports(data: ReportData, directory: str | Path) -> dict[str, Path]:
    """Write junit.xml, report.md and report.json into ``directory``; returns their paths."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    paths = {"junit": root / JUNIT_FILE, "markdown": root / MARKDOWN_FILE, "json": root / JSON_FILE}
    paths["junit"].write_bytes(render_junit(data))
    paths["markdown"].write_text(render_markdown(data), encoding="utf-8")
    paths["json"].write_text(
        json.dumps(render_json(data), indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )
    return paths
