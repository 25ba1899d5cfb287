"""``schemagate validate`` as a function: structural checks -> lint -> safety -> (rehearsal) ->
bundle -> reports.  The CLI (``schemagate.cmd_validate``) and ``schemagate run`` are thin callers.

**Judged and accepted history.**  Every file is discovered, checksummed, parsed and checked for
naming, order and immutability.  The review checks (safety rules, lint, rehearsal) judge only the
migrations this change adds or edits: with a base ref, those that differ from it; without one,
those above ``accepted_history`` (every versioned migration up to that version, and the down
scripts of those versions, are accepted history); with neither, all of them.  Down scripts (kind
``undo``) are parsed and bundled but never judged: the forward rules would flag what they are
meant to do (drop what the up script created), and the rehearsal never applies them
(``judgement``).  The safety rules still read the accepted history, so that what it created is
known (a table's column types, its validated constraints), but report nothing about it.

**The gate's own configuration.**  With a base ref the gate keys (``validator.config.GATE_KEYS``:
rule levels, blocking severity, accepted history, lint settings, target PostgreSQL, out of order)
and the project's sqlfluff configuration files come from the base ref, not from the working tree,
so a pull request cannot switch off the checks it is judged by.  A change to them is listed in
the report; together with a change to the migrations it is a blocking ``gate-config-changed``
finding: the configuration change has to be merged on its own first (``gate_configuration``).

sqlfluff is by far the slowest check, so it is *started* first: uncached files go to worker
processes before the structural checks run, and their findings are collected after the safety
rules (keeping only files that parsed: a file with a syntax error reports that error alone).

A configuration problem (no migrations directory, no migration files, a bad setting) raises
``ConfigurationError`` (exit code 2); problems *in* the migrations are findings, and the result's
``exit_code`` is 1 when any of them blocks (``blocking_severity``), else 0.  The bundle is built
(in memory, and written when ``bundle_dir`` is given) only when nothing blocks; otherwise a bundle
left in ``bundle_dir`` by an earlier run is removed, so a failed build never ships a stale one.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from executor.bundle import Bundle, make_bundle, write_bundle
from executor.errors import ConfigurationError
from executor.manifest import MANIFEST_FILE, MIGRATIONS_DIR, Manifest
from executor.naming import UNDO
from validator.config import ValidatorConfig
from validator.findings import Finding, blocking_findings, count_by_severity, has_errors
from validator.gate_config import GateConfiguration, gate_configuration
from validator.judgement import Judgement, judgement
from validator.reports import BundleInfo, ReportData, ReportSection, write_reports
from validator.source import detect_source

if TYPE_CHECKING:  # the checks are imported where they run: a run without lint never loads sqlfluff
    from validator.database_check import DatabaseCheck
    from validator.discovery import MigrationFile
    from validator.lint import LintJob, LintStats
    from validator.safety.suppressions import Suppression
    from validator.structural import StructuralResult

STRUCTURAL_FAMILIES = ("naming", "order", "syntax", "integrity")


@dataclass
class ValidationResult:
    files: list[MigrationFile]
    findings: list[Finding]
    suppressions: list[Suppression] = field(default_factory=list)
    sections: list[ReportSection] = field(default_factory=list)
    manifest: Manifest | None = None
    bundle_path: Path | None = None  # the directory written, when one was
    exit_code: int = 0
    bundle: Bundle | None = None  # the sealed in-memory bundle (None when findings block)
    report: ReportData | None = None
    report_paths: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    lint_stats: LintStats | None = None  # when lint ran
    structural: StructuralResult | None = None
    judgement: Judgement | None = None  # what the review checks judged
    config: ValidatorConfig | None = None  # the configuration in effect (the base ref's gate keys)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _require_migrations_dir(config: ValidatorConfig) -> None:
    mig = config.migrations
    if not mig.exists():
        raise ConfigurationError(
            f"migrations directory {mig} does not exist",
            remedy="pass --migrations DIR, set [tool.schemagate] migrations in pyproject.toml, "
            "or create the first migration with `schemagate new <description>`",
            file=str(mig),
        )
    if not mig.is_dir():
        raise ConfigurationError(f"{mig} is not a directory", remedy="pass --migrations DIR", file=str(mig))


def _remove_stale_bundle(directory: Path) -> bool:
    """Delete a bundle an earlier run wrote into ``directory`` (only if it is one). True if removed."""
    manifest = directory / MANIFEST_FILE
    if not manifest.is_file():
        return False
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(data, dict) or "bundle_sha256" not in data or "migrations" not in data:
        return False
    manifest.unlink()
    shutil.rmtree(directory / MIGRATIONS_DIR, ignore_errors=True)
    return True


def _safety_config(config: ValidatorConfig) -> ValidatorConfig:
    """``config`` as the safety rules take it: [tool.schemagate.rules] also sets the rehearsal's
    rules (every id was checked by load_config), which the safety registry does not know."""
    from validator.safety.registry import REGISTRY

    return dataclasses.replace(config, rules={k: v for k, v in config.rules.items() if k in REGISTRY})


def _start_lint(
    config: ValidatorConfig, files: list[MigrationFile], judged: frozenset[str]
) -> LintJob | None:
    """Start sqlfluff on the judged files *before* the structural checks: its workers run while
    this process parses and applies the safety rules (sqlfluff is the slow part).  None when
    nothing is judged: then no worker starts and sqlfluff is not even looked for."""
    from validator.lint import LintTarget, start_lint

    targets = [
        LintTarget(rel=f.rel, text=f.text, checksum=f.checksum)
        for f in files
        if f.text is not None and f.rel in judged
    ]
    if not targets:
        return None

    try:
        from validator.safety import sqlfluff_overlap

        skip = sqlfluff_overlap(_safety_config(config))
    except ImportError:  # safety rules not installed: nothing to de-duplicate against
        skip = set()
    return start_lint(config, targets, skip_codes=skip)


def _lint_findings(job: LintJob, structural: StructuralResult, findings: list[Finding]) -> list[Finding]:
    """The job's findings for files that parsed (a file with a syntax error gets that error only)."""
    parsed = {p.rel for p in structural.parsed}
    broken = {f.file for f in findings if f.family == "syntax" and f.severity == "error"}
    return [f for f in job.result().findings if f.file in parsed and f.file not in broken]


def _review_checks(
    config: ValidatorConfig,
    structural: StructuralResult,
    judged: Judgement,
    findings: list[Finding],
    timings: dict[str, float],
    checks: list[str],
    rehearse: bool,
    rehearsal_database_url: str | None,
    progress: Callable[[str], None] = lambda stage: None,
) -> tuple[list[Suppression], list[ReportSection]]:
    """Safety rules and the rehearsal on the judged files; appends to ``findings``, ``timings``
    and ``checks``."""
    suppressions: list[Suppression] = []
    try:
        from validator.safety import check_safety
    except ImportError:  # pglast is not installed: no safety rules
        check_safety = None  # type: ignore[assignment]
    if check_safety is not None:
        progress(f"safety rules on {_count(len(judged.judged), 'file')}")
        started = time.perf_counter()
        # every forward migration goes through the rules, in order, so that what the accepted
        # history created is known; only the judged files' findings and suppressions are kept
        forward = [p for p in structural.parsed if p.file.name.kind != UNDO]
        from validator.parse_cache import parse_cache_directory
        from validator.safety.catalog_cache import CatalogCache, catalog_cache_directory

        catalogs = CatalogCache(
            catalog_cache_directory(parse_cache_directory(config.project_root, config.lint))
        )
        safety = (
            check_safety(forward, _safety_config(config), judged=judged.judged, catalog_cache=catalogs)
            if judged.judged
            else None
        )
        if safety is not None:
            findings += [f for f in safety.findings if f.file in judged.judged]
            suppressions = [s for s in safety.suppressions if s.file in judged.judged]
        timings["safety"] = time.perf_counter() - started
        checks.append("safety")

    sections: list[ReportSection] = []
    if rehearse:
        from validator.rehearsal import rehearse as run_rehearsal

        progress(f"rehearsing {_count(len(judged.judged), 'migration')} on a throwaway PostgreSQL")
        started = time.perf_counter()
        rehearsal = run_rehearsal(
            config, structural, new=set(judged.judged), database_url=rehearsal_database_url
        )
        findings += rehearsal.findings
        sections.append(rehearsal)
        timings["rehearsal"] = time.perf_counter() - started
        checks.append("rehearsal")
    return suppressions, sections


def run_validation(
    config: ValidatorConfig,
    *,
    base_ref: str | None = None,
    lint: bool = True,
    rehearse: bool = False,
    rehearsal_database_url: str | None = None,
    sign_with_kms: str | None = None,
    bundle_dir: str | Path | None = None,
    reports_dir: str | Path | None = None,
    database_check: Callable[[StructuralResult], DatabaseCheck] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ValidationResult:
    """``database_check(structural)``: compares the files with a database (``validate --database-url``,
    see validator.database_check) and returns a report section with ``findings``; they are judged
    like every other finding (a drifted file blocks the bundle).  ``progress(stage)`` is told when
    each stage starts ("parsing 412 files", "rehearsing 1 migration", ...): the CLI shows it on a
    terminal."""
    with ExitStack() as stack:
        return _run_validation(
            config,
            stack,
            base_ref=base_ref,
            lint=lint,
            rehearse=rehearse,
            rehearsal_database_url=rehearsal_database_url,
            sign_with_kms=sign_with_kms,
            bundle_dir=bundle_dir,
            reports_dir=reports_dir,
            database_check=database_check,
            progress=progress or (lambda stage: None),
        )


def _run_validation(
    config: ValidatorConfig,
    stack: ExitStack,
    *,
    base_ref: str | None,
    lint: bool,
    rehearse: bool,
    rehearsal_database_url: str | None,
    sign_with_kms: str | None,
    bundle_dir: str | Path | None,
    reports_dir: str | Path | None,
    database_check: Callable[[StructuralResult], DatabaseCheck] | None = None,
    progress: Callable[[str], None] = lambda stage: None,
) -> ValidationResult:
    from validator.gitref import one_run, resolve_base_ref
    from validator.structural import check_structure, discover_migrations, manifest_extra

    stack.enter_context(one_run())  # git's answers hold for the whole run

    _require_migrations_dir(config)
    if sign_with_kms and bundle_dir is None:
        raise ConfigurationError(
            "--sign-with-kms signs the bundle, but no bundle was asked for", remedy="add --bundle DIR"
        )
    base_ref = resolve_base_ref(base_ref)
    timings: dict[str, float] = {}
    checks = list(STRUCTURAL_FAMILIES)

    # the files are read once: lint, the structural checks and the bundle all see the same bytes
    started = time.perf_counter()
    discovered = discover_migrations(config)
    gate: GateConfiguration | None = None
    if base_ref is not None:
        config, gate = gate_configuration(config, discovered.files, base_ref, stack)
    judged = judgement(config, discovered.files, base_ref)
    if gate is not None:
        gate.blocking = bool(gate.changes) and judged.changes is not None and judged.changes.any
    discovery_seconds = time.perf_counter() - started
    lint_on = lint and config.lint.get("enabled", True)
    lint_job = _start_lint(config, discovered.files, judged.judged) if lint_on else None
    try:
        progress(f"parsing {_count(len(discovered.files), 'file')}")
        started = time.perf_counter()
        from validator.parse_cache import ParseCache, parse_cache_directory

        # trees built when a check needs them (validator.parsed.ensure_trees): the judged files' for
        # the safety rules, the accepted history's only when its safety catalog is not cached
        parse_cache = ParseCache(
            parse_cache_directory(config.project_root, config.lint), config.migrations, trees="lazy"
        )
        structural = check_structure(
            config,
            base_ref=base_ref,
            discovered=discovered,
            parse_cache=parse_cache,
            accepted=judged.accepted,
        )
        timings["structural"] = discovery_seconds + time.perf_counter() - started
        if not structural.files and not structural.findings:
            raise ConfigurationError(
                f"no migration files in {config.migrations}",
                remedy="add one with `schemagate new <description>`, "
                "or point --migrations at the directory that holds them",
                file=str(config.migrations),
            )
        findings: list[Finding] = list(structural.findings)
        if gate is not None:
            findings += gate.findings()
        suppressions, sections = _review_checks(
            config, structural, judged, findings, timings, checks, rehearse, rehearsal_database_url, progress
        )
        if gate is not None:
            sections.insert(0, gate)
        if database_check is not None:
            progress("comparing the files with the database's history")
            checked = database_check(structural)
            findings += checked.findings
            sections.append(checked)
        lint_stats = None
        if lint_job is not None:
            progress(f"linting {_count(len(judged.judged), 'file')} (sqlfluff)")
            started = time.perf_counter()
            findings += _lint_findings(lint_job, structural, findings)
            lint_stats = lint_job.stats
            timings["lint"] = lint_stats.seconds
            timings["lint_wait"] = time.perf_counter() - started
        if lint_on:
            checks.append("lint")
    finally:
        if lint_job is not None:
            lint_job.close()

    findings.sort(key=Finding.sort_key)
    blocking = has_errors(findings, config.blocking_severity)
    counts = count_by_severity(findings)
    source = detect_source(config.migrations, base_ref=base_ref)

    bundle: Bundle | None = None
    bundle_path: Path | None = None
    bundle_info: BundleInfo | None = None
    bundle_note: str | None = None
    if not blocking:
        bundle = make_bundle(
            structural.manifest_entries(),
            source=source,
            findings=counts,
            origin=str(config.migrations),
            layout=structural.layout,
            extra=manifest_extra(config),
        )
        if "safety" in checks or "rehearsal" in checks:
            # what each migration locks (validator.impact): the plan shows it with the target's sizes
            from executor.impact import IMPACT_KEY
            from validator.impact import lock_impact

            bundle.manifest.extra[IMPACT_KEY] = lock_impact(structural, findings, sections)
            bundle.manifest.seal()
        if sign_with_kms:
            from executor.signing import sign_manifest

            sign_manifest(bundle.manifest, sign_with_kms)
        if bundle_dir is not None:
            bundle_path = Path(bundle_dir)
            write_bundle(bundle, bundle_path)
            bundle_info = BundleInfo(
                path=str(bundle_path),
                bundle_sha256=bundle.bundle_sha256,
                migrations=len(bundle.manifest.migrations),
                signed_with=sign_with_kms if bundle.manifest.signature else None,
            )
    elif bundle_dir is not None:
        n = len(blocking_findings(findings, config.blocking_severity))
        removed = _remove_stale_bundle(Path(bundle_dir))
        bundle_note = f"bundle not written: {n} blocking finding{'s' if n != 1 else ''}" + (
            f" (the earlier bundle in {bundle_dir} was removed)" if removed else ""
        )

    notes = []
    if lint_stats is not None:
        notes.append(
            f"lint: {lint_stats.linted} files linted, {lint_stats.cached} from the cache "
            f"({lint_stats.seconds:.1f} s)"
        )
    elif lint_on:
        notes.append("lint: no file to lint (none is judged)")
    gate_note = gate.console_note() if gate is not None else None
    if gate_note:
        notes.append(gate_note)
    in_order = [f.rel for f in structural.files]
    report = ReportData(
        files=in_order,
        findings=findings,
        checks=checks,
        suppressions=suppressions,
        sections=sections,
        blocking_severity=config.blocking_severity,
        bundle=bundle_info,
        bundle_note=bundle_note,
        timings=timings,
        migrations_dir=str(config.migrations),
        source=source,
        notes=notes,
        judged=[rel for rel in in_order if rel in judged.judged],
        accepted_history=[rel for rel in in_order if rel in judged.accepted],
        down_scripts=[rel for rel in in_order if rel in judged.down_scripts],
        accepted_basis=judged.basis,
        as_written=[p.rel for p in structural.parsed if p.own_transactions],
    )
    report_paths = write_reports(report, reports_dir) if reports_dir is not None else {}
    return ValidationResult(
        files=list(structural.files),
        findings=findings,
        suppressions=suppressions,
        sections=sections,
        manifest=bundle.manifest if bundle else None,
        bundle_path=bundle_path,
        exit_code=1 if blocking else 0,
        bundle=bundle,
        report=report,
        report_paths=report_paths,
        timings=timings,
        lint_stats=lint_stats,
        structural=structural,
        judgement=judged,
        config=config,
    )
